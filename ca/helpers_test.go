package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
)

const (
	testPIN  = "A1B2C3D4E5F"
	testUser = "qq111111_qwertyui"
)

// requireTool finds an external tool; under CI=true a missing one is a failure.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install %s)", name, name)
		}
		t.Skipf("%s is not installed (apt-get install %s)", name, name)
	}
	return p
}

// tokenSigner hides the concrete key type, as a token key's crypto.Signer does: only Public
// and Sign are reachable.
type tokenSigner struct{ s crypto.Signer }

func (k tokenSigner) Public() crypto.PublicKey { return k.s.Public() }
func (k tokenSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return k.s.Sign(r, d, o)
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// devCA is a development CA with one user whose initial key is loaded.
type devCA struct {
	ca      *devca.CA
	initial *Identity
	pfx     string
}

func newDevCA(t testing.TB) devCA {
	t.Helper()
	c, err := devca.Init(t.TempDir())
	require.NoError(t, err)
	pfx := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, c.AddUser(testUser, testPIN, pfx))
	id, err := LoadPKCS12(pfx, testPIN)
	require.NoError(t, err)
	return devCA{ca: c, initial: id, pfx: pfx}
}

// serve runs the development CA's EST server on a loopback port and returns its URL.
func (d devCA) serve(t testing.TB, opts devca.ServerOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.ca.ServeListener(ctx, ln, opts) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "https://" + ln.Addr().String()
}

// quietLog swallows the TLS handshake noise of servers that refuse clients on purpose.
var quietLog = log.New(io.Discard, "", 0)

// tlsServer is an httptest TLS server on loopback with the pool that trusts it.
func tlsServer(t testing.TB, h http.Handler) (string, *x509.CertPool) {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = quietLog
	ts.StartTLS()
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return ts.URL, pool
}

func newClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func csrFor(t testing.TB, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := CSR(key, CSRRequest{Subject: pkix.Name{CommonName: cn, Country: []string{"KZ"}}})
	require.NoError(t, err)
	return der
}

// testPKI is a small CA hierarchy made in memory: root -> intermediate -> leaves.
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
}

func newTestPKI(t testing.TB, interNotAfter time.Time) testPKI {
	t.Helper()
	var p testPKI
	p.rootKey, p.interKey = newECKey(t), newECKey(t)
	now := time.Now()
	p.root = issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test root"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, p.rootKey.Public(), p.rootKey)
	p.inter = issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test intermediate"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: interNotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, p.root, p.interKey.Public(), p.rootKey)
	return p
}

func (p testPKI) leaf(t testing.TB, pub crypto.PublicKey, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: testUser}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, p.inter, pub, p.interKey)
}

func (p testPKI) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

var serial int64 = 1000

func issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}
