package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The interoperability test enrolls against globalsign's estserver: an EST server we did not
// write, with its own framing and its own mock CA.

const estserverModule = "github.com/globalsign/est/cmd/estserver@v1.0.7"

// estserverBinary builds estserver once per machine into
// $TMPDIR/tokenrun-estserver-v1.0.7/estserver, in a scratch module so that our go.mod is not
// touched. Under CI=true a failed build fails the test; elsewhere (no module proxy, no
// network) it skips with the reason.
func estserverBinary(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "tokenrun-estserver-v1.0.7")
	bin := filepath.Join(dir, "estserver")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o100 != 0 {
		return bin
	}
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf("cannot build %s: ", estserverModule) + fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail("%v", err)
	}
	scratch, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		fail("%v", err)
	}
	defer os.RemoveAll(scratch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// GOPROXY and the module cache come from the environment; -mod=mod lets `go get` write
	// the scratch go.mod, GOWORK=off keeps any workspace out.
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on")
	tmpBin := filepath.Join(scratch, "estserver")
	for _, args := range [][]string{
		{"mod", "init", "tokenrun.test/estserver"},
		{"get", estserverModule},
		{"build", "-o", tmpBin, "github.com/globalsign/est/cmd/estserver"},
	} {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = scratch
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			fail("go %s: %v\n%s", strings.Join(args, " "), err, lastLines(string(out), 20))
		}
	}
	// Rename is atomic: a concurrent test run sees no binary or a whole one.
	if err := os.Rename(tmpBin, bin); err != nil {
		fail("%v", err)
	}
	return bin
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writePEMFile(t *testing.T, path string, blocks ...*pem.Block) string {
	t.Helper()
	var b bytes.Buffer
	for _, blk := range blocks {
		require.NoError(t, pem.Encode(&b, blk))
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

func keyBlock(t *testing.T, key crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func certBlock(c *x509.Certificate) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw} }

// startESTServer writes estserver's configuration and starts it on a free loopback port.
// clientCAs are the issuers whose client certificates it accepts.
func startESTServer(t *testing.T, bin string, mock testPKI, clientCAs ...*x509.Certificate) (url string, serverRoots *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	// The server's own TLS certificate, from a PKI of its own.
	tlsPKI := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	serverKey := newECKey(t)
	serverCert := issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "estserver"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, tlsPKI.inter, serverKey.Public(), tlsPKI.interKey)
	var clientCAFiles []string
	for i, c := range clientCAs {
		clientCAFiles = append(clientCAFiles, writePEMFile(t, filepath.Join(dir, fmt.Sprintf("client-ca-%d.pem", i)), certBlock(c)))
	}
	logFile := filepath.Join(dir, "estserver.log")
	for attempt := 0; attempt < 3; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		cfg := map[string]any{
			"mock_ca": map[string]any{
				// The issuing CA first, the root last, as mockca.NewFromFiles wants.
				"certificates": writePEMFile(t, filepath.Join(dir, "mock-ca.pem"), certBlock(mock.inter), certBlock(mock.root)),
				"private_key":  writePEMFile(t, filepath.Join(dir, "mock-ca.key"), keyBlock(t, mock.interKey)),
			},
			"tls": map[string]any{
				"listen_address": addr,
				"certificates":   writePEMFile(t, filepath.Join(dir, "server.pem"), certBlock(serverCert), certBlock(tlsPKI.inter)),
				"private_key":    writePEMFile(t, filepath.Join(dir, "server.key"), keyBlock(t, serverKey)),
				"client_cas":     clientCAFiles,
			},
			"healthcheck_password": "",
			"rate_limit":           0,
			"timeout":              30,
			"log_file":             logFile,
		}
		b, err := json.MarshalIndent(cfg, "", "  ")
		require.NoError(t, err)
		cfgPath := filepath.Join(dir, "config.json")
		require.NoError(t, os.WriteFile(cfgPath, b, 0o600))

		cmd := exec.Command(bin, "-config", cfgPath)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		up := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !up; {
			select {
			case err := <-exited:
				t.Logf("estserver exited (%v), retrying on another port: %s", err, stderr.String())
				deadline = time.Now()
				continue
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !up {
			cmd.Process.Kill()
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				log, _ := os.ReadFile(logFile)
				t.Logf("estserver stderr:\n%s\nestserver log:\n%s", stderr.String(), lastLines(string(log), 40))
			}
		})
		return "https://" + addr, tlsPKI.roots()
	}
	t.Fatal("estserver did not start on a free loopback port in 3 attempts")
	return "", nil
}

func TestInteropGlobalSignESTServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds estserver: skipped with -short")
	}
	bin := estserverBinary(t)
	d := newDevCA(t)
	mock := newTestPKI(t, time.Now().AddDate(5, 0, 0))
	// Go's TLS client, by default, offers a client certificate only when the server names its
	// issuer; ours sends it regardless, but estserver verifies what it gets, so both the
	// initial key's CA and the mock CA (for re-enrollment) are listed.
	url, serverRoots := startESTServer(t, bin, mock, d.ca.Root(), mock.root)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := newClient(t, ClientConfig{URL: url, Roots: serverRoots, Identity: d.initial, Timeout: 10 * time.Second})
	cacerts, err := c.CACerts(ctx)
	require.NoError(t, err)
	require.Len(t, cacerts, 2)
	assert.True(t, cacerts[0].Equal(mock.inter))
	assert.True(t, cacerts[1].Equal(mock.root))

	token := tokenSigner{newECKey(t)}
	e, err := c.Enroll(ctx, csrFor(t, token, testUser))
	require.NoError(t, err)
	// The mock CA issues for 90 days.
	require.NoError(t, CheckIssued(e.Certificate, cacerts, token.Public(), mock.roots(), 90*24*time.Hour))
	assert.Equal(t, testUser, e.Certificate.Subject.CommonName)
	err = CheckIssued(e.Certificate, cacerts, token.Public(), mock.roots(), Year)
	assert.ErrorIs(t, err, ErrValidityMismatch)
	err = CheckIssued(e.Certificate, cacerts, newECKey(t).Public(), mock.roots(), 0)
	assert.ErrorIs(t, err, ErrWrongKey)
	err = CheckIssued(e.Certificate, cacerts, token.Public(), d.ca.RootPool(), 0)
	assert.ErrorIs(t, err, ErrUntrustedChain)

	// Re-enrollment with the issued certificate and the token key, over TLS 1.2 and 1.3.
	for _, version := range []uint16{0x0303, 0x0304} {
		rc := newClient(t, ClientConfig{URL: url, Roots: serverRoots, MaxTLSVersion: version})
		re, err := rc.Reenroll(ctx, csrFor(t, token, testUser), &Identity{Certificate: e.Certificate, Chain: []*x509.Certificate{mock.inter}, Key: token})
		require.NoError(t, err)
		assert.NoError(t, CheckIssued(re.Certificate, cacerts, token.Public(), mock.roots(), 90*24*time.Hour))
	}

	// estserver's mock CA can be told to answer 202 or 403 (label "triggererrors").
	tc := newClient(t, ClientConfig{URL: url, Label: "triggererrors", Roots: serverRoots, Identity: d.initial,
		Retries: 1, Backoff: 50 * time.Millisecond})
	_, err = tc.Enroll(ctx, csrFor(t, token, "Trigger Error Deferred"))
	var pe *PendingError
	require.ErrorAs(t, err, &pe, "%v", err)
	assert.Equal(t, 600*time.Second, pe.RetryAfter)
	_, err = tc.Enroll(ctx, csrFor(t, token, "Trigger Error Forbidden"))
	require.ErrorIs(t, err, ErrRefused)
	var ee *Error
	require.True(t, errors.As(err, &ee))
	assert.Equal(t, http.StatusForbidden, ee.Status)
	assert.Contains(t, err.Error(), "triggered forbidden response")
	_, err = tc.Enroll(ctx, csrFor(t, token, "Trigger Error Unknown"))
	require.ErrorIs(t, err, ErrUnavailable, "a 500, retried, then given up")
	require.True(t, errors.As(err, &ee))
	assert.Equal(t, 2, ee.Attempts)
}
