//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// calls is every method of token.Token, for the after-Close and cancelled-context tests.
func calls(tok token.Token, key *token.Key, der []byte, pin string) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"Info":    func(ctx context.Context) error { _, err := tok.Info(ctx); return err },
		"Login":   func(ctx context.Context) error { return tok.Login(ctx, token.User, pin) },
		"Logout":  func(ctx context.Context) error { return tok.Logout(ctx) },
		"SetPIN":  func(ctx context.Context) error { return tok.SetPIN(ctx, pin, "13572468") },
		"InitPIN": func(ctx context.Context) error { return tok.InitPIN(ctx, "13572468") },
		"Format":  func(ctx context.Context) error { return tok.Format(ctx, shSOPIN, "x") },
		"GenerateKey": func(ctx context.Context) error {
			_, err := tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
			return err
		},
		"Keys":         func(ctx context.Context) error { _, err := tok.Keys(ctx); return err },
		"Certificates": func(ctx context.Context) error { _, err := tok.Certificates(ctx); return err },
		"StoreCertificate": func(ctx context.Context) error {
			_, err := tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID})
			return err
		},
		"Delete": func(ctx context.Context) error { return tok.Delete(ctx, key.Object) },
		"Signer": func(ctx context.Context) error { _, err := tok.Signer(ctx, key); return err },
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Label: "k"})
	require.NoError(t, err)
	der := selfSignedDER(t, f.tok, key) // valid, so StoreCertificate gets past parsing
	s, err := f.tok.Signer(ctx, key)
	require.NoError(t, err)

	require.NoError(t, f.tok.Close())
	for name, call := range calls(f.tok, key, der, shUserPIN) {
		assert.ErrorIs(t, call(ctx), token.ErrClosed, name)
	}
	assert.ErrorIs(t, f.tok.Close(), token.ErrClosed, "second Close")
	_, err = s.Sign(rand.Reader, digestOf(crypto.SHA256), crypto.SHA256)
	assert.ErrorIs(t, err, token.ErrClosed, "a signer of a closed token")

	info, err := f.tok.Info(ctx)
	assert.Error(t, err)
	require.NoError(t, f.p.Close())
	_, err = f.p.Tokens(ctx)
	assert.ErrorIs(t, err, token.ErrClosed)
	_, err = f.p.Open(ctx, info)
	assert.ErrorIs(t, err, token.ErrClosed)
	assert.ErrorIs(t, f.p.Close(), token.ErrClosed)
}

func TestCancelledContext(t *testing.T) {
	f := softhsmFixture(t)
	f.login(t)
	key, err := f.tok.GenerateKey(context.Background(), token.KeyRequest{Type: token.EC})
	require.NoError(t, err)
	der := selfSignedDER(t, f.tok, key)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range calls(f.tok, key, der, shUserPIN) {
		assert.ErrorIs(t, call(ctx), context.Canceled, name)
	}
	_, err = f.p.Tokens(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	keys, err := f.tok.Keys(context.Background())
	require.NoError(t, err, "nothing was changed and the token still works")
	assert.Len(t, keys, 1)
}
