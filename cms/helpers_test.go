package cms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// opaqueSigner exposes a key only as crypto.Signer, as a token does: nothing in the package
// can type-assert its way to the private key.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, digest, opts)
}

// Key kinds used across the tests.
const (
	kindRSA2048 = "rsa2048"
	kindP256    = "p256"
	kindP384    = "p384"
	kindP521    = "p521"
	kindP224    = "p224"
	kindEd25519 = "ed25519"
)

var (
	keyMu    sync.Mutex
	keyCache = map[string]crypto.Signer{}
)

// rawKey returns a Go private key of a kind, made once per process per name (RSA generation
// is slow); name lets a test ask for a second, different key of the same kind.
func rawKey(t testing.TB, kind, name string) crypto.Signer {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[kind+"/"+name]; ok {
		return k
	}
	var k crypto.Signer
	var err error
	switch kind {
	case kindRSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case kindP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case kindP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case kindP521:
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case kindP224:
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case kindEd25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	require.NoError(t, err)
	keyCache[kind+"/"+name] = k
	return k
}

// tokenKey is rawKey behind opaqueSigner.
func tokenKey(t testing.TB, kind, name string) crypto.Signer {
	return opaqueSigner{rawKey(t, kind, name)}
}

// testPKI is a root CA and an intermediate under it, as a bank's PKI has.
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	roots             *x509.CertPool
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 1000}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	now := time.Now()
	p := &testPKI{rootKey: rawKey(t, kindP256, name+"-root"), interKey: rawKey(t, kindP256, name+"-inter")}
	p.root = makeCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: name + " Root CA", Country: []string{"KZ"}},
		NotBefore: now.Add(-10 * 365 * 24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, p.rootKey.Public(), p.rootKey)
	p.inter = makeCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: name + " Issuing CA", Country: []string{"KZ"}},
		NotBefore: now.Add(-5 * 365 * 24 * time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, p.root, p.interKey.Public(), p.rootKey)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	return p
}

// issue makes an end-entity signing certificate for pub, valid from notBefore to notAfter.
func (p *testPKI) issue(t testing.TB, pub crypto.PublicKey, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	skid := sha256.Sum256(spki)
	return makeCert(t, &x509.Certificate{
		// CreateCertificate adds a subject key identifier to CA certificates only; signing
		// by key identifier (openssl cms -keyid) needs one.
		SubjectKeyId: skid[:20],
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"ТОО Тест"}, Country: []string{"KZ"}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, p.inter, pub, p.interKey)
}

// issueNow issues a certificate valid from an hour ago for a day.
func (p *testPKI) issueNow(t testing.TB, pub crypto.PublicKey, cn string) *x509.Certificate {
	now := time.Now()
	return p.issue(t, pub, cn, now.Add(-time.Hour), now.Add(24*time.Hour))
}

func makeCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl.SerialNumber = nextSerial()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

// opensslPath finds OpenSSL: missing under CI=true fails the test, elsewhere skips it.
func opensslPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required under CI=true: %v", err)
		}
		t.Skip("openssl not installed")
	}
	return p
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
