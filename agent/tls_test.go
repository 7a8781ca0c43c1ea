package agent_test

import (
	"context"
	"crypto"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent"
)

// The local CA is made once, with private keys only the user reads; the server certificate
// is for 127.0.0.1 and localhost and is issued again near its end; the CA can vouch for
// nothing but loopback.
func TestLocalTLS(t *testing.T) {
	files := agent.TLSDir(t.TempDir())
	now := time.Now()
	cfg, made, err := files.Ensure(now)
	require.NoError(t, err)
	require.Len(t, made, 2)
	for _, k := range []string{"ca-key.pem", "key.pem"} {
		fi, err := os.Stat(filepath.Join(files.Dir, k))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), k)
	}
	_, made, err = files.Ensure(now.Add(time.Hour))
	require.NoError(t, err)
	assert.Empty(t, made, "made once")
	_, made, err = files.Ensure(now.Add(380 * 24 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(files.Dir, "cert.pem")}, made, "the server certificate is renewed, the CA kept")

	ca, err := files.CA()
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	leaf := cfg.Certificates[0].Leaf
	for _, name := range []string{"127.0.0.1", "localhost", "::1"} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name})
		assert.NoError(t, err, name)
	}
	// A certificate for a bank's site, signed with the CA's key, is refused by its name
	// constraints.
	caKey := loadKey(t, filepath.Join(files.Dir, "ca-key.pem"))
	der, err := x509.CreateCertificate(cryptorand.Reader, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "ib.bank.kz"},
		DNSNames: []string{"ib.bank.kz"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		ca, leaf.PublicKey, caKey)
	require.NoError(t, err)
	forged, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	_, err = forged.Verify(x509.VerifyOptions{Roots: roots, DNSName: "ib.bank.kz"})
	assert.ErrorContains(t, err, "not permitted")

	// A key others may read is refused.
	require.NoError(t, os.Chmod(filepath.Join(files.Dir, "key.pem"), 0o644))
	_, _, err = files.Ensure(now)
	assert.ErrorContains(t, err, "can be read by other users")
}

// The agent over wss:// with its certificate: a client trusting the CA gets the hello.
func TestServeTLS(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	files := agent.TLSDir(t.TempDir())
	cfg, _, err := files.Ensure(time.Now())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(f.srv.Handler(ln.Addr().(*net.TCPAddr).Port))
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()
	ca, err := files.CA()
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+ln.Addr().String(), &websocket.DialOptions{HTTPClient: client, HTTPHeader: http.Header{"Origin": {bankOrigin}}})
	require.NoError(t, err)
	defer c.CloseNow()
	assert.Equal(t, map[string]any{"result": map[string]any{"version": "1.4.0"}}, read(t, c))
}

// install-cert and uninstall-cert against a real NSS database with NSS's certutil: the CA is
// added trusted for servers, found again, and removed.
func TestTrustNSS(t *testing.T) {
	bin, err := agent.FindCertutil()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: %v", err)
		}
		t.Skip(err)
	}
	files := agent.TLSDir(t.TempDir())
	_, _, err = files.Ensure(time.Now())
	require.NoError(t, err)
	ca, err := files.CA()
	require.NoError(t, err)
	db := filepath.Join(t.TempDir(), "nssdb")
	stores := agent.Stores(t.TempDir(), []string{db})
	ctx := context.Background()
	changes := agent.Install(ctx, bin, stores, ca, files.CAPath())
	require.Len(t, changes, 1)
	require.NoError(t, changes[0].Err)
	assert.Equal(t, "added", changes[0].Done)
	assert.Contains(t, changes[0].Undo, "-D -n")
	out, err := exec.Command(bin, "-L", "-d", "sql:"+db).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, agent.Nickname(ca)+`\s+C,,`, string(out))
	assert.Equal(t, "already there", agent.Install(ctx, bin, stores, ca, files.CAPath())[0].Done)

	changes = agent.Uninstall(ctx, bin, stores, ca, files.CAPath())
	require.NoError(t, changes[0].Err)
	assert.Equal(t, "removed", changes[0].Done)
	out, err = exec.Command(bin, "-L", "-d", "sql:"+db).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), agent.Nickname(ca))
	assert.Equal(t, "not there", agent.Uninstall(ctx, bin, stores, ca, files.CAPath())[0].Done)
}

// The stores found for a user: Chromium's database, and each Firefox profile with one.
func TestStoresFound(t *testing.T) {
	home := t.TempDir()
	profile := filepath.Join(home, ".mozilla", "firefox", "abcd.default-release")
	require.NoError(t, os.MkdirAll(profile, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(profile, "cert9.db"), nil, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".mozilla", "firefox", "empty.profile"), 0o700))
	stores := agent.Stores(home, nil)
	require.Len(t, stores, 2)
	assert.Equal(t, filepath.Join(home, ".pki", "nssdb"), stores[0].Path)
	assert.True(t, stores[0].Create, "Chromium's database is made when Chromium never ran")
	assert.Equal(t, profile, stores[1].Path)
	assert.Equal(t, "Firefox profile abcd.default-release", stores[1].For)
}

func loadKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	return k.(crypto.Signer)
}
