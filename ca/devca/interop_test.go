package devca

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerWithCurlAndOpenSSL checks the server from outside, with tools we did not write:
// curl fetches /cacerts and enrolls with the initial key exported to PEM by OpenSSL, OpenSSL
// makes the request and reads the PKCS#7 answers. This is what a bank's engineer would do
// against the staging CA.
func TestServerWithCurlAndOpenSSL(t *testing.T) {
	curl := requireTool(t, "curl")
	openssl := requireTool(t, "openssl")
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	const user = "qq111111_qwertyui"
	work := t.TempDir()
	pfx := filepath.Join(work, "Key.pfx")
	require.NoError(t, ca.AddUser(user, testPIN, pfx))
	base := testServer(t, ca, ServerOptions{}) + "/.well-known/est"
	caFile := filepath.Join(ca.Dir(), RootCertFile)
	path := func(name string) string { return filepath.Join(work, name) }
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = work
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%s %s\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), out, stderr.String())
		return string(out)
	}

	// /cacerts: base64 certs-only PKCS#7 holding the root.
	run(curl, "-sS", "--fail-with-body", "--cacert", caFile, "-o", path("cacerts.b64"), base+"/cacerts")
	run(openssl, "base64", "-d", "-in", path("cacerts.b64"), "-out", path("cacerts.der"))
	printed := run(openssl, "pkcs7", "-inform", "DER", "-in", path("cacerts.der"), "-print_certs")
	assert.Contains(t, printed, "CN = "+ca.Root().Subject.CommonName)

	// The initial key, exported to PEM as an engineer would.
	run(openssl, "pkcs12", "-in", pfx, "-passin", "pass:"+testPIN, "-nokeys", "-clcerts", "-out", path("initial.pem"))
	run(openssl, "pkcs12", "-in", pfx, "-passin", "pass:"+testPIN, "-nocerts", "-nodes", "-out", path("initial.key"))

	// A request from OpenSSL (an RSA key this time), sent base64 for three years.
	run(openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path("token.key"),
		"-subj", "/C=KZ/CN="+user, "-outform", "DER", "-out", path("req.der"))
	run(openssl, "base64", "-in", path("req.der"), "-out", path("req.b64"))
	run(curl, "-sS", "--fail-with-body", "--cacert", caFile, "--cert", path("initial.pem"), "--key", path("initial.key"),
		"-H", "Content-Type: application/pkcs10", "--data-binary", "@"+path("req.b64"),
		"-o", path("issued.b64"), base+"/3y/simpleenroll")
	run(openssl, "base64", "-d", "-in", path("issued.b64"), "-out", path("issued.p7"))
	run(openssl, "pkcs7", "-inform", "DER", "-in", path("issued.p7"), "-print_certs", "-out", path("issued.pem"))
	verify := run(openssl, "verify", "-CAfile", caFile, "-purpose", "sslclient", path("issued.pem"))
	assert.Contains(t, verify, "OK")
	subject := run(openssl, "x509", "-in", path("issued.pem"), "-noout", "-subject", "-enddate")
	assert.Contains(t, subject, "CN = "+user)
	for _, line := range strings.Split(subject, "\n") {
		if v, ok := strings.CutPrefix(line, "notAfter="); ok {
			end, err := time.Parse("Jan _2 15:04:05 2006 MST", v)
			require.NoError(t, err, v)
			assert.WithinDuration(t, time.Now().AddDate(3, 0, 0), end, 48*time.Hour, "3y label")
		}
	}
	// The certificate is for OpenSSL's key.
	certPub := run(openssl, "x509", "-in", path("issued.pem"), "-noout", "-pubkey")
	keyPub := run(openssl, "pkey", "-in", path("token.key"), "-pubout")
	assert.Equal(t, keyPub, certPub)

	// Refusals carry reasons curl shows.
	cmd := exec.Command(curl, "-sS", "--cacert", caFile, "-H", "Content-Type: application/pkcs10",
		"--data-binary", "@"+path("req.b64"), "-w", "\n%{http_code}", base+"/simpleenroll")
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "no TLS client certificate")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(string(out)), "401"), "%s", out)

	run(openssl, "req", "-new", "-key", path("token.key"), "-subj", "/CN=somebody_else", "-outform", "DER", "-out", path("other.der"))
	cmd = exec.Command(curl, "-sS", "--cacert", caFile, "--cert", path("initial.pem"), "--key", path("initial.key"),
		"-H", "Content-Type: application/pkcs10", "--data-binary", "@"+path("other.der"), "-w", "\n%{http_code}", base+"/simpleenroll")
	out, err = cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), `names user "somebody_else"`)
	assert.True(t, strings.HasSuffix(strings.TrimSpace(string(out)), "403"), "%s", out)

	log, err := ca.Issued()
	require.NoError(t, err)
	require.Len(t, log, 1)
	assert.Equal(t, user, log[0].User)
	_ = os.Remove(path("initial.key"))
}
