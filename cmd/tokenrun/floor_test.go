package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/floor"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
)

// floorBackend is a token the safety floor is tested on, and how to check it from outside.
type floorBackend struct {
	args           []string // --module M or --soft DIR
	label          string
	userPIN, soPIN string
	// works logs in with pin as role outside tokenrun: the token is not locked.
	works func(t *testing.T, role token.Role, pin string) error
}

// silentSoftFloor is a software token that reports no PIN counters or flags at all and
// locks after 3 wrong tries, as TPM-backed modules do.
func silentSoftFloor(t *testing.T) floorBackend {
	dir := filepath.Join(t.TempDir(), "tok")
	p, err := soft.Open(soft.Options{NoPINInfo: true, UserMaxTries: 3, SOMaxTries: 3}, dir)
	require.NoError(t, err)
	require.NoError(t, p.Close())
	return floorBackend{args: []string{"--soft", dir}, label: "KAZTOKEN", userPIN: "12345678", soPIN: "87654321",
		works: func(t *testing.T, role token.Role, pin string) error {
			p, err := soft.Open(soft.Options{}, dir)
			require.NoError(t, err)
			defer p.Close()
			ctx := context.Background()
			infos, err := p.Tokens(ctx)
			require.NoError(t, err)
			tok, err := p.Open(ctx, infos[0])
			require.NoError(t, err)
			defer tok.Close()
			return tok.Login(ctx, role, pin)
		}}
}

func softHSMFloor(t *testing.T) floorBackend {
	p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
	return pkcs11Floor(t, tk)
}

func openCryptokiFloor(t *testing.T) floorBackend {
	return pkcs11Floor(t, p11test.OpenCryptoki(t))
}

// pkcs11Floor checks a module's token with pkcs11-tool, a tool we did not write.
func pkcs11Floor(t *testing.T, tk p11test.Token) floorBackend {
	tool := p11test.PKCS11Tool(t)
	return floorBackend{args: []string{"--module", tk.Module}, label: tk.Label, userPIN: tk.UserPIN, soPIN: tk.SOPIN,
		works: func(t *testing.T, role token.Role, pin string) error {
			args := []string{"--module", tk.Module, "--token-label", tk.Label, "--login", "--pin", pin, "--list-objects"}
			if role == token.SO {
				// An SO login needs a read-write session: set the user PIN it already has.
				args = []string{"--module", tk.Module, "--token-label", tk.Label, "--login", "--login-type", "so", "--so-pin", pin,
					"--init-pin", "--new-pin", tk.UserPIN}
			}
			out, err := exec.Command(tool, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("pkcs11-tool: %v: %s", err, out)
			}
			return nil
		}}
}

// TestWrongPINsFromFilesNeverLock: on every module, 20 runs in a row of each procedure and
// of sign with a wrong PIN from a file never lock the token (user or administrator PIN),
// and the right PIN works afterwards.
func TestWrongPINsFromFilesNeverLock(t *testing.T) {
	backends := []struct {
		name string
		make func(t *testing.T) floorBackend
	}{
		{"soft-reports-nothing", silentSoftFloor},
		{"softhsm2", softHSMFloor},
		{"opencryptoki", openCryptokiFloor},
	}
	const wrong = "00000000"
	procs := []struct {
		name string
		role token.Role
		args func(t *testing.T, b floorBackend, ca *enrollCA) []string
	}{
		{"change-pin", token.User, func(t *testing.T, b floorBackend, _ *enrollCA) []string {
			return []string{"change-pin", "--answers", writeAnswers(t, map[string]any{"current_pin": wrong, "new_pin": newPIN, "new_pin_confirm": newPIN})}
		}},
		{"enroll", token.User, func(t *testing.T, b floorBackend, ca *enrollCA) []string {
			ans := enrollAnswers(ca)
			ans["current_pin"] = wrong
			return append([]string{"enroll", "--answers", writeAnswers(t, ans), "--yes"}, ca.Args()...)
		}},
		{"unblock", token.SO, func(t *testing.T, b floorBackend, _ *enrollCA) []string {
			return []string{"unblock", "--answers", writeAnswers(t, map[string]any{"so_pin": wrong, "new_pin": newPIN, "new_pin_confirm": newPIN})}
		}},
		// A script that ignores the counters and logs in again and again: the floor, not the
		// script, keeps the tries.
		{"careless-script", token.User, func(t *testing.T, b floorBackend, _ *enrollCA) []string {
			return []string{"run", writeFile(t, filepath.Join(t.TempDir(), "careless.lua"), `
local token = require("token")
local tok = assert(token.wait { timeout = 5 })
for _ = 1, 5 do tok:login("`+wrong+`") end
for _ = 1, 5 do tok:login("`+wrong+`", { so = true }) end
return nil, { code = "PIN_INCORRECT", message = "still not in" }
`)}
		}},
		{"sign", token.User, func(t *testing.T, b floorBackend, _ *enrollCA) []string {
			return []string{"sign", "--token", "pkcs11:token=" + b.label + ";object=payments",
				"--pin-file", writeFile(t, filepath.Join(t.TempDir(), "pin"), wrong), "--out-dir", t.TempDir(), documents(t, 1)[0]}
		}},
	}
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	for _, be := range backends {
		for _, proc := range procs {
			t.Run(be.name+"/"+proc.name, func(t *testing.T) {
				t.Setenv("TOKENRUN_HOME", t.TempDir())
				b := be.make(t)
				args := append(proc.args(t, b, ca), b.args...)
				if proc.name != "sign" && proc.name != "careless-script" {
					args = append(args, "--lang", "en")
				}
				codes := map[int]int{}
				for i := range 20 {
					r := tokenrun(t, "", args...)
					codes[r.code]++
					require.Contains(t, []int{runner.ExitToken, runner.ExitRefused}, r.code, "run %d: %s", i+1, r.err)
					assert.NotContains(t, r.stdout+r.err, wrong)
				}
				if proc.name != "careless-script" { // it ends with its own code whatever happened
					assert.Positive(t, codes[runner.ExitRefused], "the floor kept the last tries: %v", codes)
				}
				pin := b.userPIN
				if proc.role == token.SO {
					pin = b.soPIN
				}
				require.NoError(t, b.works(t, proc.role, pin), "the right PIN works afterwards (exit codes %v)", codes)
				if proc.name == "careless-script" {
					require.NoError(t, b.works(t, token.SO, b.soPIN), "the right administrator PIN works afterwards")
				}
			})
		}
	}
}

// TestConcurrentEnrollsLeaveOneProfile: two enrollments started at once on one token, ten
// times on the software token and on SoftHSM2: one key and one certificate for it in every
// trial; the second run waited for the first, was told so, and found the profile.
func TestConcurrentEnrollsLeaveOneProfile(t *testing.T) {
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	for _, be := range []string{"soft", "softhsm2"} {
		t.Run(be, func(t *testing.T) {
			waited := 0
			for trial := range 10 {
				home := t.TempDir()
				var args []string
				var count func() (keys int, certs []*x509.Certificate, keyPubs []any)
				if be == "soft" {
					dir := filepath.Join(t.TempDir(), "tok")
					args = []string{"--soft", dir}
					require.Equal(t, runner.ExitOK, tokenrun(t, "", "tokens", "--soft", dir).code)
					count = func() (int, []*x509.Certificate, []any) {
						p, err := soft.Open(soft.Options{}, dir)
						require.NoError(t, err)
						return tokenObjects(t, p, newPIN)
					}
				} else {
					p11test.SoftHSM(t)
					tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
					args = []string{"--module", tk.Module}
					count = func() (int, []*x509.Certificate, []any) {
						return pkcs11Objects(t, tk, newPIN)
					}
				}
				answers := writeAnswers(t, enrollAnswers(ca))
				full := append(append([]string{"enroll", "--lang", "en", "--answers", answers, "--yes", "--lock-wait", "5m", "--set", "token.wait=5m"}, ca.Args()...), args...)
				outs := make([]string, 2)
				codes := make([]int, 2)
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						cmd := exec.Command(os.Args[0], full...)
						cmd.Env = append(os.Environ(), "TOKENRUN_TEST_AS_MAIN=1", "TOKENRUN_HOME="+home)
						out, _ := cmd.CombinedOutput()
						outs[i], codes[i] = string(out), cmd.ProcessState.ExitCode()
					}()
				}
				wg.Wait()
				for i := range 2 {
					require.Equal(t, runner.ExitOK, codes[i], "trial %d run %d:\n%s", trial, i, outs[i])
				}
				keys, certs, pubs := count()
				require.Equal(t, 1, keys, "trial %d: keys on the token\n%s\n%s", trial, outs[0], outs[1])
				require.Len(t, certs, 1, "trial %d: certificates on the token", trial)
				assert.Equal(t, pubs[0], certs[0].PublicKey, "trial %d: the certificate is the key's", trial)
				joined := outs[0] + outs[1]
				if strings.Contains(joined, "is in use by") {
					assert.Contains(t, joined, "is in use by tokenrun enroll (pid ", "the waiting run is told what holds the token")
					waited++
					assert.Contains(t, joined, "already holds a registered profile", "the second run found the first one's profile")
				}
			}
			t.Logf("%s: the second enrollment waited for the first in %d of 10 trials", be, waited)
		})
	}
}

// TestConcurrentWrongPINSignsNeverLock: five sign processes at once with a wrong PIN from a
// file, two tries left: the token is never locked (20 trials on the software token, which
// counts exactly, and on openCryptoki, which gives flags).
func TestConcurrentWrongPINSignsNeverLock(t *testing.T) {
	for _, be := range []string{"soft", "opencryptoki"} {
		t.Run(be, func(t *testing.T) {
			var args []string
			var prepare func()
			var locked func() bool
			label := "KAZTOKEN"
			if be == "soft" {
				dir := filepath.Join(t.TempDir(), "tok")
				require.Equal(t, runner.ExitOK, tokenrun(t, "", "tokens", "--soft", dir).code)
				args = []string{"--soft", dir}
				prepare = func() { require.NoError(t, soft.SetTries(dir, token.User, 2)) }
				locked = func() bool {
					r := tokenrun(t, "", "tokens", "--soft", dir)
					return strings.Contains(r.stdout, "LOCKED")
				}
			} else {
				tk := p11test.OpenCryptoki(t)
				b := pkcs11Floor(t, tk)
				label = tk.Label
				args = []string{"--module", tk.Module}
				prepare = func() {
					require.NoError(t, b.works(t, token.User, tk.UserPIN)) // counters back to full
					require.Error(t, b.works(t, token.User, "00000000"))   // 2 of 3 left
				}
				locked = func() bool { return b.works(t, token.User, tk.UserPIN) != nil }
			}
			pin := writeFile(t, filepath.Join(t.TempDir(), "pin"), "99999999")
			doc := documents(t, 1)[0]
			for trial := range 20 {
				prepare()
				home := t.TempDir()
				var wg sync.WaitGroup
				codes := make([]int, 5)
				for i := range 5 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						cmd := exec.Command(os.Args[0], append([]string{"sign", "--token", "pkcs11:token=" + label + ";object=payments",
							"--pin-file", pin, "--out-dir", t.TempDir(), doc}, args...)...)
						cmd.Env = append(os.Environ(), "TOKENRUN_TEST_AS_MAIN=1", "TOKENRUN_HOME="+home)
						_ = cmd.Run()
						codes[i] = cmd.ProcessState.ExitCode()
					}()
				}
				wg.Wait()
				require.False(t, locked(), "trial %d locked the token (exit codes %v)", trial, codes)
				for _, c := range codes {
					require.Contains(t, []int{runner.ExitToken, runner.ExitRefused}, c, "trial %d: %v", trial, codes)
				}
			}
		})
	}
}

// tokenObjects counts the key pairs on a token and returns its certificates and the keys'
// public keys, logged in with pin.
func tokenObjects(t *testing.T, p token.Provider, pin string) (int, []*x509.Certificate, []any) {
	t.Helper()
	var keys []*token.Key
	var certs []*token.Cert
	prepareToken(t, p, pin, func(tok token.Token) {
		var err error
		keys, err = tok.Keys(context.Background())
		require.NoError(t, err)
		certs, err = tok.Certificates(context.Background())
		require.NoError(t, err)
	})
	var xs []*x509.Certificate
	for _, c := range certs {
		xs = append(xs, c.X509)
	}
	var pubs []any
	for _, k := range keys {
		pubs = append(pubs, k.Public)
	}
	return len(keys), xs, pubs
}

// pkcs11Objects is tokenObjects over pkcs11-tool's view of a module's token: the keys and
// certificates it lists, read back as DER.
func pkcs11Objects(t *testing.T, tk p11test.Token, pin string) (int, []*x509.Certificate, []any) {
	t.Helper()
	tool := p11test.PKCS11Tool(t)
	out, err := exec.Command(tool, "--module", tk.Module, "--token-label", tk.Label, "--login", "--pin", pin, "--list-objects").CombinedOutput()
	require.NoError(t, err, "%s", out)
	keys := strings.Count(string(out), "Private Key Object")
	var certs []*x509.Certificate
	var pubs []any
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	var ids []string
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "ID:") {
			ids = append(ids, strings.TrimSpace(strings.TrimPrefix(line, "ID:")))
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, typ := range []string{"cert", "pubkey"} {
			f := filepath.Join(t.TempDir(), typ)
			b, err := exec.Command(tool, "--module", tk.Module, "--token-label", tk.Label, "--login", "--pin", pin,
				"--read-object", "--type", typ, "--id", id, "-o", f).CombinedOutput()
			if err != nil {
				continue // no object of that type with this id
			}
			der, err := os.ReadFile(f)
			require.NoError(t, err, "%s", b)
			if typ == "cert" {
				c, err := x509.ParseCertificate(der)
				require.NoError(t, err)
				certs = append(certs, c)
			} else {
				pub, err := x509.ParsePKIXPublicKey(der)
				require.NoError(t, err)
				pubs = append(pubs, pub)
			}
		}
	}
	return keys, certs, pubs
}

// TestBusyTokenFailsAfterTheWait: while another run holds the token, a procedure waits
// --lock-wait, told what holds it, then stops with exit 4 having touched nothing.
func TestBusyTokenFailsAfterTheWait(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	dir, _ := softToken(t)
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	defer p.Close()
	holder := floor.Wrap(p, floor.Options{Dir: filepath.Join(home, "floor"), Command: "tokenrun sign"})
	infos, err := holder.Tokens(context.Background())
	require.NoError(t, err)
	held, err := holder.Open(context.Background(), infos[0])
	require.NoError(t, err)

	ans := writeAnswers(t, map[string]any{"current_pin": "12345678", "new_pin": newPIN, "new_pin_confirm": newPIN})
	r := tokenrun(t, "", "change-pin", "--soft", dir, "--lang", "en", "--answers", ans, "--lock-wait", "1s")
	assert.Equal(t, runner.ExitToken, r.code, r.err)
	assert.Contains(t, r.err, fmt.Sprintf("is in use by tokenrun sign (pid %d, since ", os.Getpid()))
	assert.Contains(t, r.err, "in use by another tokenrun run, which has not finished")
	require.NoError(t, held.Close())

	r = tokenrun(t, "", "change-pin", "--soft", dir, "--lang", "en", "--answers", ans, "--lock-wait", "1s")
	require.Equal(t, runner.ExitOK, r.code, "the old password still opened it: nothing was changed while busy\n%s", r.err)
	r = tokenrun(t, "", "change-pin", "--soft", dir, "--answers", ans, "--lock-wait", "-1s")
	assert.Equal(t, runner.ExitUsage, r.code, r.err)
}

// TestUserPINNotInitializedNamesTheWayOut: a token formatted without a user PIN (a format
// killed half-way on a real module) is named as such, with unblock as the way out, and
// unblock sets one.
func TestUserPINNotInitializedNamesTheWayOut(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	infos, err := p.Tokens(context.Background())
	require.NoError(t, err)
	tok, err := p.Open(context.Background(), infos[0])
	require.NoError(t, err)
	require.NoError(t, tok.Format(context.Background(), "87654321", "KAZTOKEN"))
	require.NoError(t, tok.Close())
	require.NoError(t, p.Close())

	for _, args := range [][]string{
		{"change-pin", "--answers", writeAnswers(t, map[string]any{"current_pin": "12345678", "new_pin": newPIN, "new_pin_confirm": newPIN})},
		append([]string{"enroll", "--answers", writeAnswers(t, enrollAnswers(ca)), "--yes"}, ca.Args()...),
	} {
		r := tokenrun(t, "", append(args, "--soft", dir, "--lang", "en")...)
		assert.Equal(t, runner.ExitToken, r.code, r.err)
		assert.Contains(t, r.err, "has no user password set", args[0])
		assert.Contains(t, r.err, "run tokenrun unblock", args[0])
		assert.NotContains(t, r.err, "CKR_USER_PIN_NOT_INITIALIZED", args[0])
	}
	r := tokenrun(t, "", "unblock", "--soft", dir, "--lang", "en",
		"--answers", writeAnswers(t, map[string]any{"so_pin": "87654321", "new_pin": newPIN, "new_pin_confirm": newPIN}))
	require.Equal(t, runner.ExitOK, r.code, r.err)
	keys, certs := objects(t, dir, newPIN)
	assert.Zero(t, keys+certs)
}

// TestDiagnoseShowsTheFloor: support's diagnosis shows the failed tries tokenrun counted for
// a token, and none once the right password cleared them.
func TestDiagnoseShowsTheFloor(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	dir, serial := softToken(t)
	ans := func(pin string) string {
		return writeAnswers(t, map[string]any{"current_pin": pin, "new_pin": newPIN, "new_pin_confirm": newPIN})
	}
	r := tokenrun(t, "", "change-pin", "--soft", dir, "--lang", "en", "--answers", ans("99999999"))
	require.Equal(t, runner.ExitToken, r.code, r.err)
	out := filepath.Join(t.TempDir(), "d.txt")
	r = tokenrun(t, "", "diagnose", "--probe=false", "--text", "--out", out)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	text, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Regexp(t, `KAZTOKEN \(serial `+serial+`\) at .*: user 1, administrator 0`, string(text))

	r = tokenrun(t, "", "change-pin", "--soft", dir, "--lang", "en", "--answers", ans("12345678"))
	require.Equal(t, runner.ExitOK, r.code, r.err)
	r = tokenrun(t, "", "diagnose", "--probe=false", "--text", "--out", out)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	text, err = os.ReadFile(out)
	require.NoError(t, err)
	assert.NotContains(t, string(text), "user 1, administrator 0")
}
