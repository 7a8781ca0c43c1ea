package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

const td = "../../testdata/"

type result struct {
	code        int
	stdout, err string
}

func tokenrun(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runMain(append([]string{"tokenrun"}, args...), strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), err: errOut.String()}
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		want   []string // in stdout+stderr
		absent []string
	}{
		{name: "no token source", args: []string{"run", "tour"}, code: exitUsage, want: []string{"no token source: give --module PATH"}},
		{name: "both sources", args: []string{"tokens", "--soft", tok, "--module", "/x.so"}, code: exitUsage, want: []string{"either --module or --soft"}},
		{name: "missing module", args: []string{"tokens", "--module", "/nonexistent/libkaz.so"}, code: exitUsage, want: []string{"/nonexistent/libkaz.so"}},
		{name: "bad URI", args: []string{"tokens", "--soft", tok, "--token", "token=A"}, code: exitUsage, want: []string{`must start with "pkcs11:"`}},
		{name: "missing script", args: []string{"run", "--soft", tok, "nothere.lua"}, code: exitUsage, want: []string{"nothere.lua"}},
		{name: "two scripts", args: []string{"run", "--soft", tok, "a.lua", "b.lua"}, code: exitUsage, want: []string{"run takes one script"}},
		{name: "unknown flag", args: []string{"run", "--sfot", tok, "tour"}, code: exitUsage, want: []string{"sfot"}},
		{name: "flags after the script", args: []string{"run", "tour", "--soft", tok, "--answers", td + "answers/tour.yaml"}, code: exitOK,
			want: []string{"tour 1.0.0: done", "made on the token"}, absent: []string{"12345678"}},
		{name: "pin from a pipe", stdin: "12345678\n", args: []string{"run", "--soft", tok, "tour"}, code: exitOK,
			want: []string{"tour 1.0.0: done"}, absent: []string{"12345678"}},
		{name: "wrong PIN is a token error", args: []string{"run", "--soft", tok, "--answers", td + "answers/tour-wrong-pin.yaml", "tour"}, code: exitToken,
			want: []string{"PIN incorrect", "tries left"}, absent: []string{"31415926"}},
		{name: "answers typo warned", args: []string{"run", "--soft", tok, "--answers", td + "answers/tour-typo.yaml", "tour"}, code: exitOK,
			want: []string{"curent_pin", "misspelt"}},
		{name: "input closed", args: []string{"run", "--soft", tok, "tour"}, code: exitUsage, want: []string{"current_pin"}},
		{name: "json front-end", stdin: `{"id":"current_pin","value":"12345678"}` + "\n", args: []string{"run", "--soft", tok, "--ui", "json", "tour"}, code: exitOK,
			want: []string{`"type":"ask"`, `"id":"current_pin"`}, absent: []string{"12345678"}},
		{name: "bad ui", args: []string{"run", "--soft", tok, "--ui", "web", "tour"}, code: exitUsage, want: []string{`--ui "web"`}},
		{name: "deadline stops a runaway script", args: []string{"run", "--soft", tok, "--timeout", "200ms", td + "scripts/spin.lua"}, code: exitCancelled,
			want: []string{"timed out after 200ms", "spin.lua:2"}},
		{name: "negative timeout", args: []string{"run", "--soft", tok, "--timeout", "-5s", td + "scripts/spin.lua"}, code: exitUsage,
			want: []string{"--timeout -5s: a duration cannot be negative"}},
		{name: "negative replay timeout", args: []string{"replay", "--timeout", "-1m", "nothere.jsonl"}, code: exitUsage,
			want: []string{"--timeout -1m0s: a duration cannot be negative"}},
		{name: "region memory over the ceiling", args: []string{"change-pin", "--soft", tok, "--set", "sandbox.memory_mib=2000"}, code: exitUsage,
			want: []string{"sandbox.memory_mib: 2000 is out of range: give 1 to 1024 MiB"}},
		{name: "script bug", args: []string{"run", "--soft", tok, td + "scripts/bug.lua"}, code: exitScript, want: []string{"bug.lua:3:"}, absent: []string{"goroutine", ".go:"}},
		{name: "sandbox escape", args: []string{"run", "--soft", tok, td + "scripts/escape.lua"}, code: exitScript, want: []string{"escape.lua:2: os is not available"}},
		{name: "api too new", args: []string{"run", "--soft", tok, td + "scripts/too_new.lua"}, code: exitScript, want: []string{"99", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tokenrun(t, tt.stdin, tt.args...)
			all := r.stdout + r.err
			assert.Equal(t, tt.code, r.code, all)
			for _, w := range tt.want {
				assert.Contains(t, all, w)
			}
			for _, a := range tt.absent {
				assert.NotContains(t, all, a)
			}
		})
	}
}

func TestSeveralTokensRefused(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	r := tokenrun(t, "", "run", "--soft", a, "--soft", b, "--answers", td+"answers/tour.yaml", "tour")
	assert.Equal(t, exitToken, r.code)
	assert.Contains(t, r.err, "2 tokens are present")

	// --token narrows to one of them.
	var infos []token.Info
	r = tokenrun(t, "", "tokens", "--soft", a, "--json")
	require.Equal(t, exitOK, r.code, r.err)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &infos))
	require.Len(t, infos, 1)
	r = tokenrun(t, "", "run", "--soft", a, "--soft", b, "--token", "pkcs11:serial="+infos[0].Serial, "--answers", td+"answers/tour.yaml", "tour")
	assert.Equal(t, exitOK, r.code, r.err)
}

func TestEnvironmentMirrorsFlags(t *testing.T) {
	t.Setenv("TOKENRUN_SOFT", filepath.Join(t.TempDir(), "tok"))
	t.Setenv("TOKENRUN_ANSWERS", td+"answers/tour.yaml")
	r := tokenrun(t, "", "run", "tour")
	assert.Equal(t, exitOK, r.code, r.err)
}

// TestSoftHSM2 runs the CLI against a real PKCS#11 module.
func TestSoftHSM2(t *testing.T) {
	p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "CLI", "87654321", "12345678")
	r := tokenrun(t, "", "tokens", "--module", tk.Module)
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "CLI")
	assert.Contains(t, r.stdout, "(uninitialised)", "SoftHSM2's spare slot is listed")

	r = tokenrun(t, "", "run", "tour", "--module", tk.Module, "--answers", td+"answers/tour.yaml")
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "SoftHSM")

	// pkcs11-tool, which we did not write, sees the key the tour made.
	out := p11test.ListObjects(t, tk)
	assert.Contains(t, out, "tokenrun tour")
}

// TestOpenCryptokiNeverLockedByABatch: on the module that really locks (after 3 wrong
// tries), a batch of wrong PINs from an answers file stops at the final try instead of
// locking the token.
func TestOpenCryptokiNeverLockedByABatch(t *testing.T) {
	tk := p11test.OpenCryptoki(t)
	ans := filepath.Join(t.TempDir(), "wrong.yaml")
	require.NoError(t, os.WriteFile(ans, []byte("current_pin: \"87870000\"\n"), 0o600))
	for range 2 {
		r := tokenrun(t, "", "run", "tour", "--module", tk.Module, "--answers", ans)
		require.Equal(t, exitToken, r.code, r.err)
		assert.NotContains(t, r.err, "87870000")
	}
	for range 3 {
		r := tokenrun(t, "", "run", "tour", "--module", tk.Module, "--answers", ans)
		require.Equal(t, exitRefused, r.code, r.err)
		assert.Contains(t, r.err, "one password try is left")
	}
	r := tokenrun(t, "", "tokens", "--module", tk.Module)
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "final try")
	assert.NotContains(t, r.stdout, "LOCKED")
}

// TestDemo runs the README's main job as a new user would, and checks that none of the
// demo's secrets reach the screen.
func TestDemo(t *testing.T) {
	r := tokenrun(t, "", "demo")
	all := r.stdout + r.err
	require.Equal(t, exitOK, r.code, all)
	for _, want := range []string{"$ tokenrun enroll", "$ tokenrun change-pin", "$ tokenrun sign", "$ tokenrun verify", "Done in"} {
		assert.Contains(t, all, want)
	}
	for _, secret := range []string{demoOTPPIN, "ab1cd0efg2h", "Kz7mWq9x", demoPIN} {
		assert.NotContains(t, all, secret)
	}
}

// region cannot import runtime (it has no Lua), so it keeps its own copy of the ceiling.
func TestSandboxMemoryCeilingAgrees(t *testing.T) {
	assert.Equal(t, int64(runtime.MaxMemoryLimit), int64(region.MaxSandboxMemoryMiB)<<20)
}

// TOKENRUN_TIMEOUT is checked like the flag.
func TestNegativeTimeoutFromEnvironment(t *testing.T) {
	t.Setenv("TOKENRUN_TIMEOUT", "-5s")
	r := tokenrun(t, "", "run", "--soft", filepath.Join(t.TempDir(), "tok"), td+"scripts/spin.lua")
	assert.Equal(t, exitUsage, r.code, r.err)
	assert.Contains(t, r.err, "--timeout -5s: a duration cannot be negative")
}
