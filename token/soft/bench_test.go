package soft

import (
	"context"
	"crypto"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// BenchmarkSign is a whole signature as a script sees it: the lock, reading the state,
// opening the sealed key, signing.
func BenchmarkSign(b *testing.B) {
	digest := sha256.Sum256([]byte("payment order"))
	for _, bc := range []struct {
		name   string
		req    token.KeyRequest
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"RSA-2048", token.KeyRequest{Type: token.RSA, Bits: 2048}, digest[:], crypto.SHA256},
		{"P-256", token.KeyRequest{Type: token.EC, Curve: "P-256"}, digest[:], crypto.SHA256},
		{"Ed25519", token.KeyRequest{Type: token.Ed25519}, []byte("payment order"), crypto.Hash(0)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, _, tk := loggedIn(b)
			_, s := genKey(b, tk, bc.req)
			for b.Loop() {
				if _, err := s.Sign(nil, bc.digest, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLogin is a login at the PBKDF2 cost new tokens really get.
func BenchmarkLogin(b *testing.B) {
	saved := kdfIterations
	kdfIterations = 600_000
	defer func() { kdfIterations = saved }()
	_, _, tk := newToken(b, Options{})
	ctx := context.Background()
	for b.Loop() {
		require.NoError(b, tk.Login(ctx, token.User, userPIN))
	}
}
