package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/diagnose"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/transcript"
)

// readTranscript parses a transcript file into its header, calls and footer.
func readTranscript(t *testing.T, path string) (h transcript.Header, calls []transcript.Call, f transcript.Footer, raw []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	ls := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	require.GreaterOrEqual(t, len(ls), 2, "header and footer at least")
	require.NoError(t, json.Unmarshal(ls[0], &h))
	require.NoError(t, json.Unmarshal(ls[len(ls)-1], &f))
	for _, l := range ls[1 : len(ls)-1] {
		var c transcript.Call
		require.NoError(t, json.Unmarshal(l, &c))
		calls = append(calls, c)
	}
	return h, calls, f, raw
}

func findCall(calls []transcript.Call, name string) *transcript.Call {
	for i := range calls {
		if calls[i].Name == name {
			return &calls[i]
		}
	}
	return nil
}

// checkTranscript asserts what every procedure transcript holds, and that no secret the
// test typed appears in it.
func checkTranscript(t *testing.T, path, command, module string, secrets ...string) ([]transcript.Call, transcript.Footer) {
	t.Helper()
	h, calls, f, raw := readTranscript(t, path)
	assert.Equal(t, transcript.KindHeader, h.Kind)
	assert.Equal(t, command, h.Command)
	assert.NotEmpty(t, h.Version, "the procedure's version")
	assert.Equal(t, "embedded", h.ScriptsSource)
	assert.NotEmpty(t, h.ScriptsVersion)
	assert.Equal(t, "default", h.Region)
	assert.Equal(t, "en", h.Language)
	assert.Equal(t, module, h.Module)
	require.NotEmpty(t, h.Tokens)
	assert.NotEmpty(t, h.OS)
	assert.False(t, h.Start.IsZero())
	require.NotEmpty(t, calls)
	for i, c := range calls {
		assert.Equal(t, uint64(i+1), c.Seq, "every call, in order")
		assert.GreaterOrEqual(t, c.OffsetUS, int64(0))
	}
	assert.Equal(t, transcript.KindFooter, f.Kind)
	assert.Equal(t, len(calls), f.Calls)
	for _, s := range secrets {
		assert.NotContains(t, string(raw), s, "a secret the test typed")
	}
	return calls, f
}

func TestTranscriptOfChangePin(t *testing.T) {
	const oldPIN, newPIN2 = "12345678", "Rv3nT8wq"
	ans := map[string]any{"current_pin": oldPIN, "new_pin": newPIN2, "new_pin_confirm": newPIN2}

	softhsm := func(t *testing.T) ([]string, string) {
		p11test.SoftHSM(t)
		tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", oldPIN)
		return []string{"--module", tk.Module}, tk.Module
	}
	soft := func(t *testing.T) ([]string, string) {
		dir, _ := softToken(t)
		return []string{"--soft", dir}, "software token"
	}
	for name, backend := range map[string]func(*testing.T) ([]string, string){"software token": soft, "softhsm2": softhsm} {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("TOKENRUN_HOME", home)
			source, module := backend(t)
			file := filepath.Join(t.TempDir(), "run.jsonl")
			args := append([]string{"change-pin", "--answers", writeAnswers(t, ans), "--yes", "--lang", "en", "--transcript", file}, source...)
			r := tokenrun(t, "", args...)
			require.Equal(t, runner.ExitOK, r.code, r.err)

			calls, f := checkTranscript(t, file, "change-pin", module, oldPIN, newPIN2)
			assert.Equal(t, "ok", f.Outcome)
			assert.Equal(t, "ok", f.ExitClass)

			// The prompts, with their secret answers redacted, before the PIN change.
			var prompts []string
			for _, c := range calls {
				if c.Prompt != nil {
					prompts = append(prompts, c.Prompt.ID)
					if c.Prompt.Kind == "secret" {
						assert.Equal(t, "<secret>", c.Prompt.Answer, c.Prompt.ID)
					}
				}
			}
			assert.Subset(t, prompts, []string{"current_pin", "new_pin", "new_pin_confirm"})
			set := findCall(calls, "token.Token:set_pin")
			require.NotNil(t, set, "the PIN change is recorded")
			assert.Equal(t, []any{"<secret>", "<secret>"}, set.Args)
			assert.Equal(t, []any{true}, set.Results)

			// The kept copy is the same transcript.
			sums, err := transcript.List(filepath.Join(home, "transcripts"))
			require.NoError(t, err)
			require.Len(t, sums, 1)
			assert.Equal(t, "change_pin", sums[0].Procedure)
			assert.Equal(t, "ok", sums[0].Outcome)
			kept, err := os.ReadFile(filepath.Join(home, "transcripts", sums[0].Name))
			require.NoError(t, err)
			written, err := os.ReadFile(file)
			require.NoError(t, err)
			assert.Equal(t, string(written), string(kept))
		})
	}
}

func TestTranscriptOfFailedRunAndNoTranscript(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	dir, _ := softToken(t)
	ans := writeAnswers(t, map[string]any{"current_pin": "11112222", "new_pin": "Rv3nT8wq", "new_pin_confirm": "Rv3nT8wq"})
	file := filepath.Join(t.TempDir(), "run.jsonl")
	r := tokenrun(t, "", "change-pin", "--soft", dir, "--answers", ans, "--yes", "--lang", "en", "--transcript", file, "--no-transcript")
	require.Equal(t, runner.ExitToken, r.code, r.err)

	calls, f := checkTranscript(t, file, "change-pin", "software token", "11112222", "Rv3nT8wq")
	assert.Equal(t, "error", f.Outcome)
	assert.Equal(t, "PIN_INCORRECT", f.Code)
	assert.Equal(t, runner.ExitToken, f.Exit)
	assert.Equal(t, "token", f.ExitClass)
	login := findCall(calls, "token.Token:login")
	require.NotNil(t, login)
	assert.Equal(t, "<secret>", login.Args[0])
	assert.Nil(t, login.Results[0], "the expected failure: nil, err")

	_, err := os.Stat(filepath.Join(home, "transcripts"))
	assert.True(t, os.IsNotExist(err), "--no-transcript keeps no copy")
}

func TestTranscriptOfEnroll(t *testing.T) {
	_, file := recordEnroll(t)

	calls, f := checkTranscript(t, file, "enroll", "software token", golden.EnrollOTP, newPIN)
	assert.Equal(t, "ok", f.Outcome)
	load := findCall(calls, "ca.load_pkcs12")
	require.NotNil(t, load)
	assert.Equal(t, "<secret>", load.Args[1], "the initial key's password")
	enroll := findCall(calls, "ca.enroll")
	require.NotNil(t, enroll, "the enrollment is recorded")
	assert.Contains(t, mustJSON(t, enroll.Results), "-----BEGIN CERTIFICATE-----", "certificates are kept")
	otp := false
	for _, c := range calls {
		if c.Prompt != nil && c.Prompt.ID == "otp_pin" {
			otp = true
			assert.Equal(t, "<secret>", c.Prompt.Answer)
		}
	}
	assert.True(t, otp, "the OTP PIN prompt is recorded")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestLeakingScriptWritesNoTranscript: a script that shows a secret it was given (ui.say's
// text is no secret parameter) makes the write fail, naming the prompt, never the secret.
func TestLeakingScriptWritesNoTranscript(t *testing.T) {
	const secret = "Zq8wLp3x"
	script := writeFile(t, filepath.Join(t.TempDir(), "leak.lua"), `
local ui = require("ui")
local s = ui.secret { id = "otp_pin", label = "OTP PIN" }
ui.say("you typed " .. s)
`)
	dir, _ := softToken(t)
	outDir := t.TempDir()
	file := filepath.Join(outDir, "leak.jsonl")
	r := tokenrun(t, "", "run", script, "--soft", dir, "--answers", writeAnswers(t, map[string]any{"otp_pin": secret}), "--transcript", file)
	assert.Equal(t, runner.ExitScript, r.code, r.err)
	assert.Contains(t, r.err, "transcript not written")
	assert.Contains(t, r.err, `secret prompt "otp_pin"`)
	assert.Contains(t, r.err, "ui.say")
	assert.NotContains(t, r.err+r.stdout, "transcript not written: "+secret)
	entries, err := os.ReadDir(outDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no transcript and no temporary file left")
}

func TestDiagnose(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	dir, serial := softToken(t)
	// A finished change of PIN leaves a transcript; a pending enrollment a journal.
	const pin = "Rv3nT8wq"
	r := tokenrun(t, "", "change-pin", "--soft", dir, "--yes", "--lang", "en", "--answers",
		writeAnswers(t, map[string]any{"current_pin": "12345678", "new_pin": pin, "new_pin_confirm": pin}))
	require.Equal(t, runner.ExitOK, r.code, r.err)
	st, err := journal.Open(filepath.Join(home, "journal"))
	require.NoError(t, err)
	_, err = st.Record(serial, "enroll", "key_generated", map[string]any{"key_id": "0a0b"})
	require.NoError(t, err)

	r = tokenrun(t, "", "diagnose", "--probe=false", "--soft", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	var d diagnose.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)

	tests := []struct {
		name string
		ok   bool
	}{
		{"runtime", d.RuntimeVersion != "" && d.APILevel > 0 && d.OS != ""},
		{"software token with its flags", len(d.Modules) == 1 && len(d.Modules[0].Tokens) == 1 &&
			d.Modules[0].Tokens[0].Serial == serial && d.Modules[0].Tokens[0].UserPIN.RetriesLeft > 0},
		{"embedded scripts", len(d.Scripts) == 1 && d.Scripts[0].Source == "embedded" && d.Scripts[0].Version != ""},
		{"pending journal", len(d.Journals) == 1 && d.Journals[0].Serial == serial && d.Journals[0].Step == "key_generated" &&
			d.Journals[0].Data["key_id"] == "0a0b"},
		{"recent transcript", len(d.Transcripts) == 1 && d.Transcripts[0].Procedure == "change_pin" && d.Transcripts[0].Outcome == "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.True(t, tt.ok, r.stdout) })
	}
	assert.NotContains(t, r.stdout, pin)

	out := filepath.Join(t.TempDir(), "diag.txt")
	r = tokenrun(t, "", "diagnose", "--probe=false", "--soft", dir, "--text", "--out", out)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	text, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, want := range []string{serial, "key_generated", "change_pin", "embedded"} {
		assert.Contains(t, string(text), want)
	}
	assert.NotContains(t, string(text), pin)

	// A software token directory that does not exist is reported, not created.
	missing := filepath.Join(t.TempDir(), "none")
	r = tokenrun(t, "", "diagnose", "--probe=false", "--soft", missing)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "no software token in")
	_, err = os.Stat(missing)
	assert.True(t, os.IsNotExist(err))
}

// recordEnroll enrolls a new software token against a development CA on loopback, in a
// fresh TOKENRUN_HOME, with a transcript; it returns the token's directory and the
// transcript.
func recordEnroll(t *testing.T) (dir, file string) {
	t.Helper()
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ = softToken(t)
	file = filepath.Join(t.TempDir(), "enroll.jsonl")
	args := append([]string{"enroll", "--soft", dir, "--answers", writeAnswers(t, enrollAnswers(ca)), "--yes", "--lang", "en", "--transcript", file}, ca.Args()...)
	r := tokenrun(t, "", args...)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	return dir, file
}
