package sign_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
)

// testCA is a throwaway certificate authority made in Go, standing in for the bank's.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string // the root certificate, as --roots and sign.verify's roots take it
}

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test Bank"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue makes a signing certificate for pub with the given subject.
func (ca *testCA) issue(t testing.TB, pub crypto.PublicKey, subject pkix.Name) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(12 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// openOne opens the single initialised token p has.
func openOne(t testing.TB, p token.Provider) token.Token {
	t.Helper()
	ctx := context.Background()
	sel, err := token.Select(ctx, p, token.SelectOptions{})
	require.NoError(t, err)
	info, err := sel.One()
	require.NoError(t, err)
	tok, err := p.Open(ctx, info)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tok.Close() })
	return tok
}

// softWithPayments is a software token logged in, holding the P-256 key "payments" and
// its certificate "ACME LLP" from a new test CA.
func softWithPayments(t testing.TB) (token.Provider, token.Token, *testCA) {
	t.Helper()
	p, err := soft.Open(soft.Options{}, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	tok := openOne(t, p)
	require.NoError(t, tok.Login(context.Background(), token.User, "12345678"))
	ca := newTestCA(t, "Test Root")
	enroll(t, tok, ca, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "payments"}, "ACME LLP")
	return p, tok, ca
}

// enroll generates a key on tok (logged in) with our token layer and stores a certificate
// from ca for it with the key's id, as an enrollment would.
func enroll(t testing.TB, tok token.Token, ca *testCA, req token.KeyRequest, cn string) (*token.Key, *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	key, err := tok.GenerateKey(ctx, req)
	require.NoError(t, err)
	cert := ca.issue(t, key.Public, pkix.Name{CommonName: cn, Organization: []string{"Test Company"}, Country: []string{"KZ"}})
	_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: cert.Raw, ID: key.ID, Label: req.Label})
	require.NoError(t, err)
	return key, cert
}

// runLua runs src with the token and sign modules over p; args become ctx.args.
func runLua(t testing.TB, p token.Provider, src string, args map[string]any) ([]any, error) {
	t.Helper()
	b := bindtoken.New(bindtoken.Config{Provider: p, Poll: time.Millisecond})
	t.Cleanup(func() { _ = b.Close() })
	reg := runtime.NewRegistry()
	require.NoError(t, reg.Add(b.Module()))
	require.NoError(t, reg.Add(bindsign.Module()))
	s, err := runtime.Compile("t.lua", []byte(src))
	require.NoError(t, err)
	res, err := runtime.Run(context.Background(), s, runtime.RunOptions{
		Registry: reg, Timeout: time.Minute, Args: args,
	})
	if err != nil {
		return nil, err
	}
	return res.Values, nil
}

// opensslVerify checks sig with OpenSSL, a verifier we did not write. content is the
// document for a detached signature, nil for an attached one, whose embedded document it
// returns.
func opensslVerify(t testing.TB, sig, content []byte, caPEM string) []byte {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		p11test.Unavailable(t, "openssl not found: apt-get install openssl")
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	out := filepath.Join(dir, "out")
	args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", write("sig.p7s", sig),
		"-CAfile", write("ca.pem", []byte(caPEM)), "-purpose", "any", "-out", out}
	if content != nil {
		args = append(args, "-content", write("doc", content))
	}
	msg, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "openssl cms -verify: %s", msg)
	require.Contains(t, string(msg), "Verification successful")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	return got
}
