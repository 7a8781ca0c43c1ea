package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/bindings/replay/reproduce"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/transcript"
)

// openRepro opens the reproduction token in dir and returns its info and token.
func openRepro(t *testing.T, dir string) (token.Info, token.Token) {
	t.Helper()
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	infos, err := p.Tokens(context.Background())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	tok, err := p.Open(context.Background(), infos[0])
	require.NoError(t, err)
	t.Cleanup(func() { tok.Close() })
	return infos[0], tok
}

// TestReplaySoftChangePin reproduces a client's password change on a software token set
// up as the client's was: stand-ins that do what the client's passwords did reproduce it;
// a stand-in the token refuses where the client's was accepted is the divergence, at the
// login step, and the reproduction is left as that run left it.
func TestReplaySoftChangePin(t *testing.T) {
	file, code := recordChangePin(t, "12345678")
	require.Equal(t, runner.ExitOK, code)
	h, _, _, _ := readTranscript(t, file)
	require.Len(t, h.Tokens, 1)
	client := h.Tokens[0]

	const standIn = "Ab3dE5gh"
	tests := []struct {
		name      string
		answers   map[string]any
		wantCode  int
		wantOut   []string
		loginPIN  string // the reproduction's user PIN afterwards
		triesLeft int
	}{
		{name: "stand-ins that do the same", answers: map[string]any{"current_pin": "12345678", "new_pin": standIn},
			wantCode: runner.ExitOK, wantOut: []string{"reproduced on the software token", "change_pin 1.0.0", "outcome ok"},
			loginPIN: standIn, triesLeft: 10},
		{name: "the reproduction's own PIN chosen by support", answers: map[string]any{reproduce.UserPINID: "Zz9yX8wv", "current_pin": "Zz9yX8wv", "new_pin": standIn},
			wantCode: runner.ExitOK, wantOut: []string{"outcome ok"}, loginPIN: standIn, triesLeft: 10},
		{name: "a stand-in the token refuses", answers: map[string]any{"current_pin": "11112222", "new_pin": standIn},
			wantCode: runner.ExitDiverged, wantOut: []string{"step ", "token.Token:login", "the client's token gave [true]", "PIN_INCORRECT", "left as the diverging replay left it"},
			loginPIN: "12345678", triesLeft: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repro")
			r := tokenrun(t, "", "replay", "--soft", dir, "--answers", writeAnswers(t, tt.answers), file)
			require.Equal(t, tt.wantCode, r.code, "%s%s", r.stdout, r.err)
			for _, w := range tt.wantOut {
				assert.Contains(t, r.stdout+r.err, w)
			}
			assertNoSecrets(t, tt.answers, r.stdout+r.err)

			info, tok := openRepro(t, dir)
			assert.Equal(t, client.Serial, info.Serial, "the reproduction shows the client's serial")
			assert.Equal(t, client.Label, info.Label)
			assert.Equal(t, tt.triesLeft, info.UserPIN.RetriesLeft, "the tries the reproduced run left")
			require.NoError(t, tok.Login(context.Background(), token.User, tt.loginPIN))
		})
	}
}

// TestReplaySoftStartingTries: a client's token with one password try left. The
// reproduction starts there too, and the procedure decides as it did for the client:
// it does not spend the final try from an answers file.
func TestReplaySoftStartingTries(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	dir, _ := softToken(t)
	require.NoError(t, soft.SetTries(dir, token.User, 1))
	file := filepath.Join(t.TempDir(), "run.jsonl")
	ans := map[string]any{"current_pin": "11112222", "new_pin": "Rv3nT8wq", "new_pin_confirm": "Rv3nT8wq"}
	r := tokenrun(t, "", "change-pin", "--soft", dir, "--yes", "--lang", "en", "--transcript", file, "--answers", writeAnswers(t, ans))
	require.NotEqual(t, runner.ExitOK, r.code, "the final try is not spent from a file")
	recorded := r.code

	h, _, footer, _ := readTranscript(t, file)
	require.Len(t, h.Tokens, 1)
	assert.True(t, h.Tokens[0].UserPIN.FinalTry)

	repro := filepath.Join(t.TempDir(), "repro")
	r = tokenrun(t, "", "replay", "--soft", repro, "--answers", writeAnswers(t, map[string]any{"current_pin": "11112222", "new_pin": "Rv3nT8wq"}), file)
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	require.NotEmpty(t, footer.Code, "the recorded refusal has a code")
	assert.Contains(t, r.stdout, "error "+footer.Code, "the same refusal (exit %d when recorded)", recorded)
	info, _ := openRepro(t, repro)
	assert.True(t, info.UserPIN.FinalTry, "the reproduction still has its final try")
	assert.Equal(t, 1, info.UserPIN.RetriesLeft)
}

// TestReplaySoftOfEnroll reproduces an enrollment: the token module runs for real on the
// reproduction, the CA's answer comes from the record, re-issued for the reproduction's
// new key, and the profile ends up on the reproduction token as it did on the client's.
func TestReplaySoftOfEnroll(t *testing.T) {
	dir, file := recordEnroll(t)
	clientCert := onlyCert(t, dir, newPIN)

	repro := filepath.Join(t.TempDir(), "repro")
	const standIn = "Qw2eR4ty"
	ans := map[string]any{"new_pin": standIn}
	r := tokenrun(t, "", "replay", "--soft", repro, "--answers", writeAnswers(t, ans), file)
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	assert.Contains(t, r.stdout, "outcome ok")
	assertNoSecrets(t, ans, r.stdout+r.err)

	// The stand-in certificate: the client's subject, serial and validity, for the
	// reproduction's own key, under the same id.
	got := onlyCert(t, repro, standIn)
	assert.Equal(t, clientCert.X509.Subject.String(), got.X509.Subject.String())
	assert.Equal(t, clientCert.X509.SerialNumber, got.X509.SerialNumber)
	assert.Equal(t, clientCert.X509.NotAfter, got.X509.NotAfter)
	assert.Equal(t, clientCert.IDHex(), got.IDHex(), "the key kept the client's id")
	assert.NotEqual(t, clientCert.DER, got.DER)
}

// onlyCert is the one certificate on the software token in dir, checked to be for the
// token's one key.
func onlyCert(t *testing.T, dir, pin string) *token.Cert {
	t.Helper()
	_, tok := openRepro(t, dir)
	ctx := context.Background()
	require.NoError(t, tok.Login(ctx, token.User, pin))
	keys, err := tok.Keys(ctx)
	require.NoError(t, err)
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Len(t, certs, 1)
	pub, ok := certs[0].X509.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	require.True(t, ok)
	assert.True(t, pub.Equal(keys[0].Public), "the certificate is for the token's key")
	assert.Equal(t, keys[0].IDHex(), certs[0].IDHex())
	return certs[0]
}

// TestReplaySoftFromSoftHSM2: a client's token (SoftHSM2, a real PKCS#11 module) holds a
// profile, and format refuses it. Replayed without a token and reproduced on a software
// token, the refusal is the same; the reproduction holds the profile (stand-in certificate
// for a new key), which is why format refused.
func TestReplaySoftFromSoftHSM2(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
	enrollFile := filepath.Join(t.TempDir(), "enroll.jsonl")
	args := append([]string{"enroll", "--module", tk.Module, "--answers", writeAnswers(t, enrollAnswers(ca)), "--yes", "--lang", "en", "--transcript", enrollFile}, ca.Args()...)
	r := tokenrun(t, "", args...)
	require.Equal(t, runner.ExitOK, r.code, r.err)

	// The enrollment itself reproduces on a software token too.
	r = tokenrun(t, "", "replay", "--soft", filepath.Join(t.TempDir(), "enrolled"), "--answers", writeAnswers(t, map[string]any{"new_pin": "Qw2eR4ty"}), enrollFile)
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	assert.Contains(t, r.stdout, "outcome ok")

	file := filepath.Join(t.TempDir(), "format.jsonl")
	r = tokenrun(t, "", "format", "--module", tk.Module, "--yes", "--lang", "en", "--transcript", file,
		"--answers", writeAnswers(t, map[string]any{"confirm": true}))
	require.Equal(t, runner.ExitRefused, r.code, "%s%s", r.stdout, r.err)
	h, _, footer, _ := readTranscript(t, file)
	var client *transcript.Token
	for i := range h.Tokens {
		if h.Tokens[i].Serial == tk.Serial {
			client = &h.Tokens[i]
		}
	}
	require.NotNil(t, client, "the header records the token: %+v", h.Tokens)
	require.Len(t, client.Certificates, 1, "the header records the certificate on the token at the start")
	clientCert, err := x509.ParseCertificate(client.Certificates[0].DER)
	require.NoError(t, err)

	require.NotEmpty(t, footer.Code, "the recorded refusal has a code")
	r = tokenrun(t, "", "replay", file)
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	assert.Contains(t, r.stdout, "error "+footer.Code)

	repro := filepath.Join(t.TempDir(), "repro")
	r = tokenrun(t, "", "replay", "--soft", repro, "--answers", writeAnswers(t, map[string]any{}), file)
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	assert.Contains(t, r.stdout, "reproduced on the software token")
	assert.Contains(t, r.stdout, "error "+footer.Code)

	info, _ := openRepro(t, repro)
	assert.Equal(t, tk.Serial, info.Serial)
	assert.Equal(t, "SoftHSM project", info.Manufacturer, "the reproduction shows the client's manufacturer")
	got := onlyCert(t, repro, "12345678")
	assert.Equal(t, clientCert.Subject.String(), got.X509.Subject.String())
	assert.Equal(t, clientCert.SerialNumber, got.X509.SerialNumber)
}

// TestReplaySoftRefusesADirectoryInUse: a replay never overwrites a token or any file.
func TestReplaySoftRefusesADirectoryInUse(t *testing.T) {
	file, code := recordChangePin(t, "12345678")
	require.Equal(t, runner.ExitOK, code)
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(keep, []byte("support notes"), 0o600))
	r := tokenrun(t, "", "replay", "--soft", dir, "--answers", writeAnswers(t, map[string]any{}), file)
	require.Equal(t, runner.ExitUsage, r.code, r.err)
	assert.Contains(t, r.err, "not empty")
	b, err := os.ReadFile(keep)
	require.NoError(t, err)
	assert.Equal(t, "support notes", string(b))

	r = tokenrun(t, "", "replay", "--answers", writeAnswers(t, map[string]any{}), file)
	require.Equal(t, runner.ExitUsage, r.code)
	assert.Contains(t, r.err, "go with --soft")

	r = tokenrun(t, "", "replay", "--soft", filepath.Join(t.TempDir(), "x"), "--max-tries", "-1", "--answers", writeAnswers(t, map[string]any{}), file)
	require.Equal(t, runner.ExitUsage, r.code)
	assert.Contains(t, r.err, "--max-tries -1")
}

// TestReplaySoftFromOpenCryptokiFlags: openCryptoki (a module that really locks) says only
// that password tries were lost, not how many. A client's change of password recorded
// after a wrong try reproduces on a token that has lost one, and support is told so.
func TestReplaySoftFromOpenCryptokiFlags(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	tk := p11test.OpenCryptoki(t)
	const newPass = "Rv3nT8wq"
	wrong := map[string]any{"current_pin": "87870000", "new_pin": newPass, "new_pin_confirm": newPass}
	r := tokenrun(t, "", "change-pin", "--module", tk.Module, "--yes", "--lang", "en", "--no-transcript", "--answers", writeAnswers(t, wrong))
	require.Equal(t, runner.ExitToken, r.code, "%s%s", r.stdout, r.err)

	file := filepath.Join(t.TempDir(), "run.jsonl")
	right := map[string]any{"current_pin": tk.UserPIN, "new_pin": newPass, "new_pin_confirm": newPass}
	r = tokenrun(t, "", "change-pin", "--module", tk.Module, "--yes", "--lang", "en", "--no-transcript", "--transcript", file, "--answers", writeAnswers(t, right))
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	h, _, _, _ := readTranscript(t, file)
	require.Len(t, h.Tokens, 1)
	require.True(t, h.Tokens[0].UserPIN.CountLow, "openCryptoki flags the lost try")
	require.Equal(t, -1, h.Tokens[0].UserPIN.RetriesLeft, "and does not say how many are left")

	repro := filepath.Join(t.TempDir(), "repro")
	ans := map[string]any{"current_pin": "12345678", "new_pin": "Ab3dE5gh"}
	r = tokenrun(t, "", "replay", "--soft", repro, "--answers", writeAnswers(t, ans), file)
	require.Equal(t, runner.ExitOK, r.code, "%s%s", r.stdout, r.err)
	assert.Contains(t, r.err, "the client's module said only that user password tries were lost; the reproduction has 9 of 10 left")

	// Support knows this token locks after 3: the reproduction starts with 2 left.
	repro3 := filepath.Join(t.TempDir(), "repro3")
	r = tokenrun(t, "", "replay", "--soft", repro3, "--max-tries", "3", "--answers", writeAnswers(t, map[string]any{"current_pin": "00000000"}), file)
	require.Equal(t, runner.ExitDiverged, r.code, "a stand-in the token refuses: %s%s", r.stdout, r.err)
	assert.Contains(t, r.err, "has 2 of 3 left")
	info3, _ := openRepro(t, repro3)
	assert.True(t, info3.UserPIN.FinalTry, "2 of 3, one refused: the final try, as the client's token would be")
	assert.Equal(t, -1, info3.UserPIN.RetriesLeft, "the reproduction gives flags only, as the client's module did")
	assertNoSecrets(t, ans, r.stdout+r.err)
	info, tok := openRepro(t, repro)
	assert.Equal(t, tk.Serial, info.Serial)
	assert.Equal(t, tk.Label, info.Label)
	require.NoError(t, tok.Login(context.Background(), token.User, "Ab3dE5gh"), "the reproduction's password is the stand-in")
}
