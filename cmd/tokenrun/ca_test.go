package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

const (
	userID = "qq111111_qwertyui"
	otpPIN = "AB1CD0EFG2H"
)

// devCA makes a CA with one user through the CLI and serves it on loopback.
func devCA(t testing.TB, opts devca.ServerOptions) (dir, url, keyFile string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "ca")
	r := tokenrun(t, "", "ca", "init", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	keyFile = filepath.Join(t.TempDir(), "Key.pfx")
	r = tokenrun(t, "", "ca", "add-user", "--dir", dir, "--user-id", userID, "--pin", otpPIN, "--out", keyFile)
	require.Equal(t, runner.ExitOK, r.code, r.err)

	a, err := devca.Open(dir)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(ctx, ln, opts) }()
	t.Cleanup(func() { cancel(); <-done })
	return dir, "https://" + ln.Addr().String(), keyFile
}

func answers(t testing.TB, kv map[string]string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "answers.yaml")
	var b []byte
	for k, v := range kv {
		b = fmt.Appendf(b, "%s: %q\n", k, v)
	}
	require.NoError(t, os.WriteFile(f, b, 0o600))
	return f
}

func TestEnrollOnSoftHSM2AgainstDevCA(t *testing.T) {
	for _, keyType := range []string{"ec", "rsa"} {
		t.Run(keyType, func(t *testing.T) {
			dir, url, keyFile := devCA(t, devca.ServerOptions{})
			p11test.SoftHSM(t)
			tk := p11test.SoftHSMToken(t, "ENROLL", "87654321", "12345678")
			ans := answers(t, map[string]string{
				"key_file": keyFile, "otp_pin": otpPIN, "current_pin": tk.UserPIN, "key_type": keyType,
				"ca_url": url, "ca_roots": filepath.Join(dir, devca.RootCertFile),
			})
			r := tokenrun(t, "", "run", td+"scripts/enroll_min.lua", "--module", tk.Module, "--answers", ans)
			require.Equal(t, runner.ExitOK, r.code, r.stdout+r.err)
			assert.Contains(t, r.err, "enrolled CN="+userID)
			assert.NotContains(t, r.stdout+r.err, otpPIN)

			// What a client we did not write sees: the key and its certificate, one id.
			objs := p11test.ListObjects(t, tk)
			assert.Contains(t, objs, "Certificate Object")
			assert.Contains(t, objs, "subject:    DN: C=KZ, CN="+userID)

			// OpenSSL checks the stored certificate against the CA's root.
			out, err := exec.Command(p11test.PKCS11Tool(t), "--module", tk.Module, "--token-label", tk.Label,
				"--read-object", "--type", "cert", "--label", "profile").Output()
			require.NoError(t, err)
			certFile := filepath.Join(t.TempDir(), "cert.der")
			require.NoError(t, os.WriteFile(certFile, out, 0o644))
			v, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, devca.RootCertFile),
				"-inform", "DER", certFile).CombinedOutput()
			if err != nil {
				// openssl verify wants PEM before 3.x; convert.
				pemFile := certFile + ".pem"
				require.NoError(t, exec.Command("openssl", "x509", "-inform", "DER", "-in", certFile, "-out", pemFile).Run())
				v, err = exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, devca.RootCertFile), pemFile).CombinedOutput()
			}
			require.NoError(t, err, "%s", v)
			assert.Contains(t, string(v), "OK")

			// Renewal with the token's own certificate and key.
			r = tokenrun(t, "", "run", td+"scripts/reenroll_min.lua", "--module", tk.Module, "--answers", ans)
			require.Equal(t, runner.ExitOK, r.code, r.stdout+r.err)
			assert.Contains(t, r.err, "renewed: serial")
		})
	}
}

func TestEnrollRefusals(t *testing.T) {
	dir, url, keyFile := devCA(t, devca.ServerOptions{})
	_, _, foreignKey := devCA(t, devca.ServerOptions{}) // an initial key from another CA
	roots := filepath.Join(dir, devca.RootCertFile)
	tests := []struct {
		name string
		kv   map[string]string
		code int
		want string
	}{
		{name: "wrong OTP PIN", kv: map[string]string{"key_file": keyFile, "otp_pin": "ZZ1CD0EFG2H"}, code: runner.ExitCA, want: "the password does not open the key container"},
		{name: "damaged container", kv: map[string]string{"key_file": roots, "otp_pin": otpPIN}, code: runner.ExitCA, want: "damaged"},
		{name: "initial key of another CA", kv: map[string]string{"key_file": foreignKey, "otp_pin": otpPIN}, code: runner.ExitCA, want: "refused"},
		{name: "untrusted CA server", kv: map[string]string{"key_file": keyFile, "otp_pin": otpPIN, "ca_roots": foreignRoots(t)}, code: runner.ExitCA, want: "not trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			soft := filepath.Join(t.TempDir(), "tok")
			kv := map[string]string{"current_pin": "12345678", "ca_url": url, "ca_roots": roots}
			for k, v := range tt.kv {
				kv[k] = v
			}
			r := tokenrun(t, "", "run", td+"scripts/enroll_min.lua", "--soft", soft, "--answers", answers(t, kv))
			assert.Equal(t, tt.code, r.code, r.err)
			assert.Contains(t, r.err, tt.want)
			assert.NotContains(t, r.err, otpPIN)
			// No certificate reached the token.
			r = tokenrun(t, "", "run", td+"scripts/count_certs.lua", "--soft", soft)
			require.Equal(t, runner.ExitOK, r.code, r.err)
			assert.Contains(t, r.err, "certificates: 0")
		})
	}
}

func foreignRoots(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "other")
	r := tokenrun(t, "", "ca", "init", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	return filepath.Join(dir, devca.RootCertFile)
}

func TestCAInitRefusesExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	require.Equal(t, runner.ExitOK, tokenrun(t, "", "ca", "init", dir).code)
	before, err := os.ReadFile(filepath.Join(dir, devca.RootCertFile))
	require.NoError(t, err)
	r := tokenrun(t, "", "ca", "init", dir)
	assert.Equal(t, runner.ExitUsage, r.code)
	after, err := os.ReadFile(filepath.Join(dir, devca.RootCertFile))
	require.NoError(t, err)
	assert.Equal(t, before, after, "nothing is ever lost")
}

// TestAddUserPINFile: the OTP PIN for a development user comes from a file read as strictly as
// tokenrun sign reads its PIN file, and never reaches the output.
func TestAddUserPINFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	require.Equal(t, runner.ExitOK, tokenrun(t, "", "ca", "init", dir).code)
	tmp := t.TempDir()
	good := filepath.Join(tmp, "otp.txt")
	require.NoError(t, os.WriteFile(good, []byte(otpPIN+"\r\n"), 0o600))
	twoLines := filepath.Join(tmp, "two.txt")
	require.NoError(t, os.WriteFile(twoLines, []byte(otpPIN+"\nextra\n"), 0o600))
	open := filepath.Join(tmp, "open.txt")
	require.NoError(t, os.WriteFile(open, []byte(otpPIN+"\n"), 0o644))

	r := tokenrun(t, "", "ca", "add-user", "--dir", dir, "--user-id", userID, "--pin-file", good, "--out", filepath.Join(tmp, "a.pfx"))
	require.Equal(t, runner.ExitOK, r.code, r.err)
	r = tokenrun(t, "", "ca", "add-user", "--dir", dir, "--user-id", "qq222222_qwertyui", "--pin-file", twoLines, "--out", filepath.Join(tmp, "b.pfx"))
	assert.Equal(t, runner.ExitUsage, r.code)
	assert.Contains(t, r.err, "more than one line")
	r = tokenrun(t, "", "ca", "add-user", "--dir", dir, "--user-id", "qq333333_qwertyui", "--pin-file", open, "--out", filepath.Join(tmp, "c.pfx"))
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.err, "can be read by other users")
	for _, out := range []string{r.stdout, r.err} {
		assert.NotContains(t, out, otpPIN)
	}
	// The container opens with the PIN as written in the file, without the line ending.
	_, err := exec.Command("openssl", "pkcs12", "-in", filepath.Join(tmp, "a.pfx"), "-passin", "pass:"+otpPIN, "-nokeys", "-out", os.DevNull).CombinedOutput()
	require.NoError(t, err)
}
