package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

const newPIN = "Kx7mQ9pz"

// enrollAnswers are a complete enrollment's answers.
func enrollAnswers(ca *enrollCA) map[string]any {
	return map[string]any{"validity": "1y", "user_id": enrollUser, "otp_pin": enrollOTP, "key_file": ca.keyFile,
		"pin_is_password": true, "profile_name": "Main", "new_pin": newPIN, "new_pin_confirm": newPIN, "confirm": true}
}

// softToken makes a software token and returns its directory and serial.
func softToken(t *testing.T) (dir, serial string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "tok")
	r := tokenrun(t, "", "tokens", "--json", "--soft", dir)
	require.Equal(t, exitOK, r.code, r.err)
	var infos []token.Info
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &infos))
	require.Len(t, infos, 1)
	return dir, infos[0].Serial
}

// objects counts the key pairs and certificates on a software token, logged in with pin.
func objects(t *testing.T, dir, pin string) (keys, certs int) {
	t.Helper()
	script := writeFile(t, filepath.Join(t.TempDir(), "count.lua"), `
local token = require("token")
local ui = require("ui")
local tok = assert(token.wait { timeout = 5 })
assert(tok:login(ui.secret { id = "current_pin", label = "pin" }))
ui.say(("objects: %d keys, %d certs"):format(#tok:keys(), #tok:certificates()))
`)
	r := tokenrun(t, "", "run", script, "--soft", dir, "--answers", writeAnswers(t, map[string]any{"current_pin": pin}))
	require.Equal(t, exitOK, r.code, r.err)
	_, err := fmt.Sscanf(r.err[strings.Index(r.err, "objects:"):], "objects: %d keys, %d certs", &keys, &certs)
	require.NoError(t, err, r.err)
	return keys, certs
}

// enrollJSON runs enroll on the software token in dir through the JSON front-end; extra
// are more flags (--set ca.timeout=3s).
func enrollJSON(t *testing.T, dir string, ca *enrollCA, extra ...string) (string, int) {
	t.Helper()
	args := append([]string{"enroll", "--soft", dir, "--lang", "en", "--ui", "json"}, ca.args()...)
	args = append(args, extra...)
	tr, code, stdout, stderr := driveJSON(t, args, enrollAnswers(ca))
	assertNoSecrets(t, enrollAnswers(ca), stdout+stderr)
	return strings.Join(tr, "\n") + "\n" + stderr, code
}

// TestEnrollResumesAfterCAOutage: the CA is down (nothing listens), then up; the rerun says
// it continues, reuses the key and stores the certificate.
func TestEnrollResumesAfterCAOutage(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	addr := ca.ln.Addr().String()
	ca.down(t)
	dir, _ := softToken(t)
	out, code := enrollJSON(t, dir, ca)
	require.Equal(t, exitCA, code, out)
	assert.Contains(t, out, "cannot be reached")
	assert.Contains(t, out, "Never format the token")

	var err error
	ca.ln, err = netListen(addr)
	require.NoError(t, err)
	ca.start(t, devca.ServerOptions{})
	out, code = enrollJSON(t, dir, ca)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "Continuing the registration")
	assert.Contains(t, out, "no new key is made")
	assert.NotContains(t, out, "progress generate_key")
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestEnrollPendingThenIssued: the CA answers 202 first, asking to wait longer than
// ca.timeout leaves; the run records the pending step and tells the person to come back; the
// rerun re-sends and stores the certificate.
func TestEnrollPendingThenIssued(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{PendingFirst: 1})
	dir, serial := softToken(t)
	out, code := enrollJSON(t, dir, ca, "--set", "ca.timeout=1s")
	require.Equal(t, exitCA, code, out)
	assert.Contains(t, out, "has not issued the certificate yet")
	j, err := os.ReadFile(filepath.Join(os.Getenv("TOKENRUN_HOME"), "journal", serial+".json"))
	require.NoError(t, err)
	assert.Contains(t, string(j), `"pending"`)

	out, code = enrollJSON(t, dir, ca)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "Continuing the registration")
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestEnrollTokenPulled: the token is unplugged (its directory moved away) while the request
// is at the CA; plugged back in, the next run continues with the same key and keeps the
// certificate the CA issued.
func TestEnrollTokenPulled(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	pulled := dir + ".pulled"
	code := runEnrollBinary(t, home, dir, ca, func(line string) bool {
		if strings.Contains(line, `"type":"progress","id":"request_certificate"`) {
			require.NoError(t, os.Rename(dir, pulled))
		}
		return false
	})
	require.NoError(t, os.Rename(pulled, dir))
	out, rerun := enrollJSON(t, dir, ca)
	require.Equal(t, exitOK, rerun, out)
	if code != exitOK {
		assert.Contains(t, out, "Continuing the registration")
	}
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// runEnrollBinary runs the real binary (this test binary as tokenrun) with --ui json,
// answering its prompts; stop(line) returning true kills it with SIGKILL at once.
func runEnrollBinary(t *testing.T, home, dir string, ca *enrollCA, stop func(line string) bool) int {
	t.Helper()
	ans := enrollAnswers(ca)
	args := append([]string{"enroll", "--soft", dir, "--lang", "en", "--ui", "json"}, ca.args()...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TOKENRUN_TEST_AS_MAIN=1", "TOKENRUN_HOME="+home)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if stop(line) {
			require.NoError(t, cmd.Process.Kill())
			killed = true
			break
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["type"] == "ask" {
			b, _ := json.Marshal(map[string]any{"id": m["id"], "value": answerText(ans[m["id"].(string)], m["kind"].(string))})
			_, err := stdin.Write(append(b, '\n'))
			require.NoError(t, err)
		}
	}
	_ = cmd.Wait()
	if killed {
		return -1
	}
	return cmd.ProcessState.ExitCode()
}

// TestEnrollKilledAndResumed runs the real binary, SIGKILLs it when the JSON stream shows a
// step, and reruns: one key, the certificate stored, the person told it continues.
func TestEnrollKilledAndResumed(t *testing.T) {
	for _, tc := range []struct{ name, at string }{
		{"generating", `"type":"progress","id":"generate_key"`},
		{"key_generated", `"type":"progress_done","id":"generate_key"`},
		{"issued", `"type":"progress_done","id":"request_certificate"`},
		{"stored", `"type":"progress_done","id":"store_certificate"`},
		{"verified", `"type":"progress_done","id":"verify"`},
	} {
		at := tc.at
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("TOKENRUN_HOME", home)
			ca := newEnrollCA(t)
			ca.start(t, devca.ServerOptions{})
			dir, _ := softToken(t)
			code := runEnrollBinary(t, home, dir, ca, func(line string) bool { return strings.Contains(line, at) })
			require.Equal(t, -1, code, "the run never reached %s", at)

			out, code := enrollJSON(t, dir, ca)
			require.Equal(t, exitOK, code, out)
			assert.Contains(t, out, "Continuing the registration")
			keys, certs := objects(t, dir, newPIN)
			assert.Equal(t, 1, keys, "exactly one key")
			assert.Equal(t, 1, certs, "the certificate stored")
		})
	}
}

// TestEnrollThenSign: the new profile signs with the new password; tokenrun verify and
// OpenSSL accept the signature.
func TestEnrollThenSign(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	out, code := enrollJSON(t, dir, ca)
	require.Equal(t, exitOK, code, out)

	doc := writeFile(t, filepath.Join(t.TempDir(), "order.txt"), "payment order 42\n")
	pin := writeFile(t, filepath.Join(t.TempDir(), "pin"), newPIN)
	r := tokenrun(t, "", "sign", "--soft", dir, "--token", "pkcs11:token=KAZTOKEN;object=Main", "--pin-file", pin, "--in", doc)
	require.Equal(t, exitOK, r.code, r.err)
	assert.NotContains(t, r.stdout+r.err, newPIN)
	r = tokenrun(t, "", "verify", "--in", doc+".p7s", "--roots", ca.roots)
	require.Equal(t, exitOK, r.code, r.stdout+r.err)
	assert.Contains(t, r.stdout+r.err, enrollUser)
	assert.Equal(t, "payment order 42\n", string(opensslVerify(t, doc+".p7s", "", ca.roots)))

	// The old default password no longer opens the token.
	r = tokenrun(t, "", "sign", "--soft", dir, "--token", "pkcs11:token=KAZTOKEN;object=Main",
		"--pin-file", writeFile(t, filepath.Join(t.TempDir(), "old"), "12345678"), "--force", "--in", doc)
	assert.Equal(t, exitToken, r.code, r.err)
}

// TestFormatOverrideLeavesTokenBlank: support formats an enrolled token with a ticket; the
// ticket is in the journal, the token is blank again and enroll works on it.
func TestFormatOverrideLeavesTokenBlank(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, serial := softToken(t)
	_, code := enrollJSON(t, dir, ca)
	require.Equal(t, exitOK, code)

	ans := map[string]any{"so_pin": "87654321", "token_label": "KAZTOKEN", "support_ticket": "SUP-4711"}
	r := tokenrun(t, "", "format", "--soft", dir, "--lang", "en", "--answers", writeAnswers(t, ans), "--yes")
	require.Equal(t, exitRefused, r.code, r.err)
	assert.Contains(t, r.err, "Contact the bank's support")

	r = tokenrun(t, "", "format", "--soft", dir, "--lang", "en", "--answers", writeAnswers(t, ans), "--yes", "--support-override")
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "close the bank's client applet")
	assert.Contains(t, r.err, "SUP-4711")
	assert.NotContains(t, r.err, "87654321")
	logged, err := filepath.Glob(filepath.Join(home, "journal", "done", serial+"-*.json"))
	require.NoError(t, err)
	var all []byte
	for _, f := range logged {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		all = append(all, b...)
	}
	assert.Contains(t, string(all), `"format_override"`, "the override is kept among finished journals")
	assert.Contains(t, string(all), "SUP-4711")

	keys, certs := objects(t, dir, "12345678")
	assert.Zero(t, keys+certs, "blank, user password back to the default")
	out, code := enrollJSON(t, dir, ca)
	require.Equal(t, exitOK, code, out)
	assert.NotContains(t, out, "Continuing")
}

// TestBatchOfWrongPINsNeverLocks: an answers file with a wrong PIN, run again and again,
// stops at the final try instead of locking, for the user and the administrator PIN.
func TestBatchOfWrongPINsNeverLocks(t *testing.T) {
	for _, tc := range []struct {
		proc string
		ans  map[string]any
		role token.Role
	}{
		{"change-pin", map[string]any{"current_pin": "11112222", "new_pin": newPIN, "new_pin_confirm": newPIN}, token.User},
		{"unblock", map[string]any{"so_pin": "11112222", "new_pin": newPIN, "new_pin_confirm": newPIN}, token.SO},
		{"format", map[string]any{"so_pin": "11112222", "token_label": "X"}, token.SO},
	} {
		t.Run(tc.proc, func(t *testing.T) {
			t.Setenv("TOKENRUN_HOME", t.TempDir())
			dir, _ := softToken(t)
			f := writeAnswers(t, tc.ans)
			codes := map[int]int{}
			for range 12 {
				r := tokenrun(t, "", tc.proc, "--soft", dir, "--lang", "en", "--answers", f, "--yes")
				codes[r.code]++
				assert.NotContains(t, r.err, "11112222")
			}
			assert.Equal(t, map[int]int{exitToken: 9, exitRefused: 3}, codes)
			r := tokenrun(t, "", "tokens", "--soft", dir)
			require.Equal(t, exitOK, r.code, r.err)
			assert.NotContains(t, r.stdout, "LOCKED")
		})
	}
}

// TestUnblockOnOpenCryptoki unblocks a user PIN that openCryptoki really locked.
func TestUnblockOnOpenCryptoki(t *testing.T) {
	tk := p11test.OpenCryptoki(t)
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	// tokenrun's safety floor never spends the last try from a script or a file: lock the
	// token with a tool we did not write, as a client's other software might.
	tool := p11test.PKCS11Tool(t)
	for range 3 {
		_ = exec.Command(tool, "--module", tk.Module, "--token-label", tk.Label, "--login", "--pin", "00000000", "--list-objects").Run()
	}
	r := tokenrun(t, "", "tokens", "--module", tk.Module)
	require.Contains(t, r.stdout, "LOCKED", "openCryptoki locks after 3 wrong tries")

	// change-pin names the way out.
	r = tokenrun(t, "", "change-pin", "--module", tk.Module, "--lang", "en",
		"--answers", writeAnswers(t, map[string]any{"current_pin": tk.UserPIN, "new_pin": newPIN, "new_pin_confirm": newPIN}))
	require.Equal(t, exitToken, r.code, r.err)
	assert.Contains(t, r.err, "tokenrun unblock")

	r = tokenrun(t, "", "unblock", "--module", tk.Module, "--lang", "en",
		"--answers", writeAnswers(t, map[string]any{"so_pin": tk.SOPIN, "new_pin": newPIN, "new_pin_confirm": newPIN}))
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "unblocked")
	assert.NotContains(t, r.err, tk.SOPIN)
	assert.NotContains(t, r.err, newPIN)

	// The new password works: change it once more.
	r = tokenrun(t, "", "change-pin", "--module", tk.Module, "--lang", "en",
		"--answers", writeAnswers(t, map[string]any{"current_pin": newPIN, "new_pin": "Zq8wN3vr", "new_pin_confirm": "Zq8wN3vr"}))
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "has been changed")
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
