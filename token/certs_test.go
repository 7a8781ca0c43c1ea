package token_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

func softToken(t *testing.T) token.Token {
	ctx := context.Background()
	p, err := soft.Open(soft.Options{}, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	tok, err := p.Open(ctx, infos[0])
	require.NoError(t, err)
	require.NoError(t, tok.Login(ctx, token.User, "12345678"))
	return tok
}

func TestFindKey(t *testing.T) {
	ctx := context.Background()
	tok := softToken(t)
	for _, req := range []token.KeyRequest{
		{Type: token.EC, Curve: "P-256", Label: "payments", ID: []byte{1}},
		{Type: token.EC, Curve: "P-256", Label: "twin", ID: []byte{2}},
		{Type: token.EC, Curve: "P-256", Label: "twin", ID: []byte{3}},
	} {
		_, err := tok.GenerateKey(ctx, req)
		require.NoError(t, err)
	}
	tests := []struct {
		name, uri string
		wantID    []byte
		err       error
		msg       string
	}{
		{name: "by label", uri: "pkcs11:object=payments", wantID: []byte{1}},
		{name: "by id", uri: "pkcs11:id=%03", wantID: []byte{3}},
		{name: "label and id", uri: "pkcs11:object=twin;id=%02", wantID: []byte{2}},
		{name: "several", uri: "pkcs11:object=twin", err: token.ErrSeveralKeys, msg: "ids 02, 03"},
		{name: "none names what is there", uri: "pkcs11:object=salary", err: token.ErrNotFound, msg: `labelled "salary"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := token.ParseURI(tt.uri)
			require.NoError(t, err)
			k, err := token.FindKey(ctx, tok, u)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Contains(t, err.Error(), tt.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantID, k.ID)
		})
	}
}

func TestCertificateFor(t *testing.T) {
	ctx := context.Background()
	tok := softToken(t)
	key, err := tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "k"})
	require.NoError(t, err)
	other, err := tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "o"})
	require.NoError(t, err)

	_, err = token.CertificateFor(ctx, tok, key)
	require.ErrorIs(t, err, token.ErrNoCertificate)
	assert.Contains(t, err.Error(), "enroll first")

	selfSigned := func(k *token.Key, id []byte, notAfter time.Time) {
		s, err := tok.Signer(ctx, k)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: k.Label},
			NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
		require.NoError(t, err)
		_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: id, Label: k.Label})
		require.NoError(t, err)
	}
	// A certificate for another key under this key's id is refused by name.
	selfSigned(other, key.ID, time.Now().Add(time.Hour))
	_, err = token.CertificateFor(ctx, tok, key)
	require.ErrorIs(t, err, token.ErrCertificateMismatch)

	// Of the key's own certificates, the one valid now wins over an expired one.
	selfSigned(key, key.ID, time.Now().Add(-time.Hour))
	selfSigned(key, key.ID, time.Now().Add(time.Hour))
	c, err := token.CertificateFor(ctx, tok, key)
	require.NoError(t, err)
	assert.True(t, c.NotAfter.After(time.Now()))
}
