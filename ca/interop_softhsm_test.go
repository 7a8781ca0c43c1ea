package ca

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// TestInteropESTServerWithSoftHSM2Key enrolls a key generated on a real PKCS#11 module
// (SoftHSM2), authenticated by an initial key, against an EST server we did not write.
func TestInteropESTServerWithSoftHSM2Key(t *testing.T) {
	if testing.Short() {
		t.Skip("builds estserver: skipped with -short")
	}
	bin := estserverBinary(t)
	d := newDevCA(t)
	mock := newTestPKI(t, time.Now().AddDate(5, 0, 0))
	url, serverRoots := startESTServer(t, bin, mock, d.ca.Root(), mock.root)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "EST", "87654321", "12345678")
	p, err := pkcs11.Open(tk.Module)
	require.NoError(t, err)
	defer p.Close()
	sel, err := token.Select(ctx, p, token.SelectOptions{URI: &token.URI{Token: "EST"}})
	require.NoError(t, err)
	info, err := sel.One()
	require.NoError(t, err)
	tok, err := p.Open(ctx, info)
	require.NoError(t, err)
	defer tok.Close()
	require.NoError(t, tok.Login(ctx, token.User, tk.UserPIN))

	for _, req := range []token.KeyRequest{
		{Type: token.EC, Curve: "P-256", Label: "est-ec"},
		{Type: token.RSA, Bits: 2048, Label: "est-rsa"},
	} {
		t.Run(req.Label, func(t *testing.T) {
			key, err := tok.GenerateKey(ctx, req)
			require.NoError(t, err)
			signer, err := tok.Signer(ctx, key)
			require.NoError(t, err)
			c := newClient(t, ClientConfig{URL: url, Roots: serverRoots, Identity: d.initial, Timeout: 10 * time.Second})
			e, err := c.Enroll(ctx, csrFor(t, signer, testUser))
			require.NoError(t, err)
			require.NoError(t, CheckIssued(e.Certificate, []*x509.Certificate{mock.inter}, key.Public, mock.roots(), 0))
			assert.Equal(t, testUser, e.Certificate.Subject.CommonName)
			_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: e.Certificate.Raw, ID: key.ID, Label: req.Label})
			require.NoError(t, err)
		})
	}
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Len(t, certs, 2)
}
