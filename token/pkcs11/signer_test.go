//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

var message = []byte("payment order 42: 1,000,000.00 KZT")

func digestOf(h crypto.Hash) []byte {
	if h == 0 {
		return message
	}
	d := h.New()
	d.Write(message)
	return d.Sum(nil)
}

// verify checks sig with Go's own verifiers.
func verify(t *testing.T, pub crypto.PublicKey, h crypto.Hash, opts crypto.SignerOpts, sig []byte) {
	t.Helper()
	digest := digestOf(h)
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			require.NoError(t, rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: pss.SaltLength}))
			return
		}
		require.NoError(t, rsa.VerifyPKCS1v15(pub, h, digest, sig))
	case *ecdsa.PublicKey:
		assert.True(t, ecdsa.VerifyASN1(pub, digest, sig), "ECDSA signature verifies")
	case ed25519.PublicKey:
		assert.True(t, ed25519.Verify(pub, message, sig), "Ed25519 signature verifies")
	default:
		t.Fatalf("public key %T", pub)
	}
}

func TestSigner(t *testing.T) {
	type signCase struct {
		name string
		hash crypto.Hash
		opts crypto.SignerOpts
	}
	pkcs1 := func(h crypto.Hash) signCase { return signCase{"pkcs1v15-" + h.String(), h, h} }
	pss := func(h crypto.Hash, salt int, name string) signCase {
		return signCase{"pss-" + h.String() + "-" + name, h, &rsa.PSSOptions{Hash: h, SaltLength: salt}}
	}
	rsaCases := []signCase{
		pkcs1(crypto.SHA1), pkcs1(crypto.SHA224), pkcs1(crypto.SHA256), pkcs1(crypto.SHA384), pkcs1(crypto.SHA512),
		{"pkcs1v15-prehashed-raw", 0, crypto.Hash(0)},
		pss(crypto.SHA256, rsa.PSSSaltLengthEqualsHash, "equals-hash"),
		pss(crypto.SHA256, rsa.PSSSaltLengthAuto, "auto"),
		pss(crypto.SHA384, 20, "salt20"),
		pss(crypto.SHA512, rsa.PSSSaltLengthEqualsHash, "equals-hash"),
	}
	tests := []struct {
		backend string
		req     token.KeyRequest
		cases   []signCase
	}{
		{"softhsm2", token.KeyRequest{Type: token.RSA, Bits: 2048}, rsaCases},
		{"softhsm2", token.KeyRequest{Type: token.EC, Curve: "P-256"}, []signCase{
			{"sha256", crypto.SHA256, crypto.SHA256}, {"sha512-truncated", crypto.SHA512, crypto.SHA512},
		}},
		{"softhsm2", token.KeyRequest{Type: token.EC, Curve: "P-384"}, []signCase{
			{"sha384", crypto.SHA384, crypto.SHA384}, {"sha256", crypto.SHA256, crypto.SHA256},
		}},
		{"softhsm2", token.KeyRequest{Type: token.Ed25519}, []signCase{
			{"pure", 0, crypto.Hash(0)}, {"options", 0, &ed25519.Options{}},
		}},
		{"opencryptoki", token.KeyRequest{Type: token.RSA, Bits: 2048}, rsaCases},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			f.login(t)
			for _, tt := range tests {
				if tt.backend != b.name {
					continue
				}
				t.Run(string(tt.req.Type)+tt.req.Curve, func(t *testing.T) {
					key, err := f.tok.GenerateKey(ctx, tt.req)
					require.NoError(t, err)
					s, err := f.tok.Signer(ctx, key)
					require.NoError(t, err)
					assert.True(t, key.Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()))
					for _, c := range tt.cases {
						t.Run(c.name, func(t *testing.T) {
							sig, err := s.Sign(rand.Reader, digestOf(c.hash), c.opts)
							require.NoError(t, err)
							verify(t, s.Public(), c.hash, c.opts, sig)
						})
					}
					// A certificate signed through the token verifies with crypto/x509.
					der := selfSignedDER(t, f.tok, key)
					cert, err := x509.ParseCertificate(der)
					require.NoError(t, err)
					require.NoError(t, cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature))
				})
			}
		})
	}
}

func TestSignerRefuses(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	rsaKey, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA})
	require.NoError(t, err)
	edKey, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.Ed25519})
	require.NoError(t, err)
	rs, err := f.tok.Signer(ctx, rsaKey)
	require.NoError(t, err)
	es, err := f.tok.Signer(ctx, edKey)
	require.NoError(t, err)

	tests := []struct {
		name   string
		s      crypto.Signer
		digest []byte
		opts   crypto.SignerOpts
		is     error
	}{
		{"digest of the wrong size", rs, []byte("short"), crypto.SHA256, token.ErrInvalidInput},
		{"md5", rs, make([]byte, 16), crypto.MD5, token.ErrUnsupported},
		{"salt too long", rs, digestOf(crypto.SHA256), &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 1000}, token.ErrInvalidInput},
		{"ed25519ph", es, digestOf(crypto.SHA512), crypto.SHA512, token.ErrUnsupported},
		{"ed25519ctx", es, message, &ed25519.Options{Context: "x"}, token.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.s.Sign(rand.Reader, tt.digest, tt.opts)
			require.ErrorIs(t, err, tt.is)
		})
	}

	_, err = f.tok.Signer(ctx, &token.Key{})
	require.ErrorIs(t, err, token.ErrInvalidInput)
	_, err = f.tok.Signer(ctx, &token.Key{Object: token.Object{ID: []byte("nope")}})
	require.ErrorIs(t, err, token.ErrNotFound)
}

// TestSignerAcrossLogin: a signer outlives a logout; it fails while logged out and works
// again after the next login (openCryptoki reloads private objects at login).
func TestSignerAcrossLogin(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			f.login(t)
			key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA})
			require.NoError(t, err)
			s, err := f.tok.Signer(ctx, key)
			require.NoError(t, err)
			require.NoError(t, f.tok.Logout(ctx))
			_, err = s.Sign(rand.Reader, digestOf(crypto.SHA256), crypto.SHA256)
			require.Error(t, err)
			assert.Truef(t, errorsIsAny(err, token.ErrNotLoggedIn, token.ErrNotFound), "%v", err)

			_, err = f.tok.Signer(ctx, key)
			require.ErrorIs(t, err, token.ErrNotFound, "private keys are hidden until login")
			assert.Contains(t, err.Error(), "hidden until the user logs in")

			f.login(t)
			sig, err := s.Sign(rand.Reader, digestOf(crypto.SHA256), crypto.SHA256)
			require.NoError(t, err)
			verify(t, key.Public, crypto.SHA256, crypto.SHA256, sig)
		})
	}
}

func errorsIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// TestSignerConcurrent signs from many goroutines at once: the pool gives each its own
// session. Run with -race.
func TestSignerConcurrent(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
	require.NoError(t, err)
	s, err := f.tok.Signer(ctx, key)
	require.NoError(t, err)
	digest := digestOf(crypto.SHA256)
	var wg sync.WaitGroup
	errs := make(chan error, 16*25)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				sig, err := s.Sign(rand.Reader, digest, crypto.SHA256)
				if err == nil && !ecdsa.VerifyASN1(key.Public.(*ecdsa.PublicKey), digest, sig) {
					err = assert.AnError
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, len(f.tok.quota), poolSize)
	assert.Equal(t, len(f.tok.quota), len(f.tok.idle), "every session went back to the pool")
}
