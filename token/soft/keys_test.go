package soft

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

func TestSignVerify(t *testing.T) {
	msg := []byte("payment order no. 17")
	d256 := sha256.Sum256(msg)
	d384 := sha512.Sum384(msg)
	cases := []struct {
		name   string
		req    token.KeyRequest
		bits   int
		curve  string
		digest []byte
		opts   crypto.SignerOpts
		slow   bool
	}{
		{"rsa-2048 pkcs1", token.KeyRequest{Type: token.RSA, Bits: 2048}, 2048, "", d256[:], crypto.SHA256, false},
		{"rsa default bits", token.KeyRequest{Type: token.RSA}, 2048, "", d256[:], crypto.SHA256, false},
		{"rsa-2048 pss auto salt", token.KeyRequest{Type: token.RSA}, 2048, "", d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}, false},
		{"rsa-2048 pss salt 20", token.KeyRequest{Type: token.RSA}, 2048, "", d256[:], &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 20}, false},
		{"rsa-3072", token.KeyRequest{Type: token.RSA, Bits: 3072}, 3072, "", d384[:], crypto.SHA384, true},
		{"rsa-4096", token.KeyRequest{Type: token.RSA, Bits: 4096}, 4096, "", d256[:], crypto.SHA256, true},
		{"ec default curve", token.KeyRequest{Type: token.EC}, 256, "P-256", d256[:], crypto.SHA256, false},
		{"ec P-384", token.KeyRequest{Type: token.EC, Curve: "P-384"}, 384, "P-384", d384[:], crypto.SHA384, false},
		{"ed25519", token.KeyRequest{Type: token.Ed25519}, 256, "", msg, crypto.Hash(0), false},
	}
	_, _, tk := loggedIn(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow && testing.Short() {
				t.Skip("slow key generation")
			}
			tc.req.Label = tc.name
			k, s := genKey(t, tk, tc.req)
			assert.Equal(t, token.PrivateKey, k.Class)
			assert.Len(t, k.ID, 20, "a random 20-byte id by default")
			assert.Equal(t, tc.name, k.Label)
			assert.Equal(t, tc.req.Type, k.Type)
			assert.Equal(t, tc.bits, k.Bits)
			assert.Equal(t, tc.curve, k.Curve)
			assert.Equal(t, k.Public, s.Public())

			sig, err := s.Sign(nil, tc.digest, tc.opts)
			require.NoError(t, err)
			switch pub := k.Public.(type) {
			case *rsa.PublicKey:
				assert.Equal(t, tc.bits, pub.N.BitLen())
				if pss, ok := tc.opts.(*rsa.PSSOptions); ok {
					want := *pss
					if want.SaltLength == rsa.PSSSaltLengthAuto {
						// What PKCS#11 tokens do: a salt as long as the hash.
						want.SaltLength = rsa.PSSSaltLengthEqualsHash
					}
					require.NoError(t, rsa.VerifyPSS(pub, tc.opts.HashFunc(), tc.digest, sig, &want))
				} else {
					require.NoError(t, rsa.VerifyPKCS1v15(pub, tc.opts.HashFunc(), tc.digest, sig))
				}
			case *ecdsa.PublicKey:
				assert.Equal(t, tc.bits, pub.Curve.Params().BitSize)
				assert.True(t, ecdsa.VerifyASN1(pub, tc.digest, sig))
			case ed25519.PublicKey:
				assert.True(t, ed25519.Verify(pub, tc.digest, sig))
			default:
				t.Fatalf("public key %T", pub)
			}

			// And something a tool we did not write checks: a certificate signed with it.
			cert, err := x509.ParseCertificate(selfSigned(t, s, tc.name))
			require.NoError(t, err)
			require.NoError(t, cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature))
		})
	}
}

func TestGenerateKeyErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		req  token.KeyRequest
		code token.ReturnCode
		cond error
		msg  string
	}{
		{"vendor type", token.KeyRequest{Type: token.Vendor}, token.CKR_MECHANISM_INVALID, token.ErrUnsupported, "the software token has no vendor mechanisms"},
		{"vendor mechanism", token.KeyRequest{Type: token.RSA, Vendor: &token.VendorMechanism{Mechanism: 0x80000001}}, token.CKR_MECHANISM_INVALID, token.ErrUnsupported, "no vendor mechanisms"},
		{"rsa 1024", token.KeyRequest{Type: token.RSA, Bits: 1024}, token.CKR_OK, token.ErrUnsupported, "RSA keys of 1024 bits"},
		{"P-521", token.KeyRequest{Type: token.EC, Curve: "P-521"}, token.CKR_OK, token.ErrUnsupported, `EC curve "P-521"`},
		{"unknown type", token.KeyRequest{Type: "dsa"}, token.CKR_MECHANISM_INVALID, token.ErrUnsupported, `key type "dsa"`},
		{"no type", token.KeyRequest{}, token.CKR_ARGUMENTS_BAD, token.ErrInvalidInput, "no key type"},
	}
	_, _, tk := loggedIn(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tk.GenerateKey(ctx, tc.req)
			requireCode(t, err, tc.code, tc.cond)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
	keys, err := tk.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)

	t.Run("duplicate id", func(t *testing.T) {
		_, err := tk.GenerateKey(ctx, token.KeyRequest{Type: token.EC, ID: []byte("profile")})
		require.NoError(t, err)
		_, err = tk.GenerateKey(ctx, token.KeyRequest{Type: token.Ed25519, ID: []byte("profile")})
		require.ErrorIs(t, err, token.ErrAlreadyExists)
		keys, err := tk.Keys(ctx)
		require.NoError(t, err)
		assert.Len(t, keys, 1)
	})
	t.Run("login", func(t *testing.T) {
		_, _, fresh := newToken(t, Options{})
		_, err := fresh.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
		require.NoError(t, fresh.Login(ctx, token.SO, soPIN))
		_, err = fresh.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
}

func TestVisibility(t *testing.T) {
	ctx := context.Background()
	_, _, tk := loggedIn(t)
	k, s := genKey(t, tk, token.KeyRequest{Type: token.EC})
	_, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: selfSigned(t, s, "c"), ID: k.ID})
	require.NoError(t, err)
	require.NoError(t, tk.Logout(ctx))

	keys, err := tk.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "private objects are hidden without a login")
	certs, err := tk.Certificates(ctx)
	require.NoError(t, err)
	assert.Len(t, certs, 1, "certificates are public")
	_, err = tk.Signer(ctx, k)
	requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
}

func TestStoreCertificate(t *testing.T) {
	ctx := context.Background()
	_, _, tk := loggedIn(t)
	k, s := genKey(t, tk, token.KeyRequest{Type: token.Ed25519})
	der := selfSigned(t, s, "first")

	_, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: []byte("not a certificate"), ID: k.ID})
	require.ErrorIs(t, err, token.ErrInvalidInput)
	certs, err := tk.Certificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs, "nothing stored")

	c, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: k.ID, Label: "profile"})
	require.NoError(t, err)
	assert.Equal(t, token.Certificate, c.Class)
	assert.Equal(t, k.ID, c.ID)
	assert.Equal(t, "profile", c.Label)
	assert.Equal(t, "first", c.X509.Subject.CommonName)

	_, err = tk.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: k.ID, Label: "again"})
	require.ErrorIs(t, err, token.ErrAlreadyExists)
	// A renewed certificate for the same key is another certificate.
	_, err = tk.StoreCertificate(ctx, token.CertificateRequest{DER: selfSigned(t, s, "renewed"), ID: k.ID})
	require.NoError(t, err)
	certs, err = tk.Certificates(ctx)
	require.NoError(t, err)
	require.Len(t, certs, 2)
	assert.Equal(t, der, certs[0].DER)

	third := selfSigned(t, s, "third")
	require.NoError(t, tk.Logout(ctx))
	_, err = tk.StoreCertificate(ctx, token.CertificateRequest{DER: third, ID: k.ID})
	requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		obj       func(k *token.Key) token.Object
		cond      error
		keys      int
		certs     int
		notLogged bool
	}{
		{"private key removes the pair", func(k *token.Key) token.Object { return token.Object{Class: token.PrivateKey, ID: k.ID} }, nil, 0, 1, false},
		{"with matching label", func(k *token.Key) token.Object {
			return token.Object{Class: token.PrivateKey, ID: k.ID, Label: "profile"}
		}, nil, 0, 1, false},
		{"label mismatch", func(k *token.Key) token.Object {
			return token.Object{Class: token.PrivateKey, ID: k.ID, Label: "other"}
		}, token.ErrNotFound, 1, 1, false},
		{"public half alone", func(k *token.Key) token.Object { return token.Object{Class: token.PublicKey, ID: k.ID} }, token.ErrUnsupported, 1, 1, false},
		{"public key not there", func(*token.Key) token.Object { return token.Object{Class: token.PublicKey, ID: []byte{9}} }, token.ErrNotFound, 1, 1, false},
		{"certificate", func(k *token.Key) token.Object { return token.Object{Class: token.Certificate, ID: k.ID} }, nil, 1, 0, false},
		{"unknown id", func(*token.Key) token.Object { return token.Object{Class: token.Certificate, ID: []byte{9}} }, token.ErrNotFound, 1, 1, false},
		{"bad class", func(k *token.Key) token.Object { return token.Object{Class: "secret-key", ID: k.ID} }, token.ErrInvalidInput, 1, 1, false},
		{"not logged in", func(k *token.Key) token.Object { return token.Object{Class: token.Certificate, ID: k.ID} }, token.ErrNotLoggedIn, 1, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, tk := loggedIn(t)
			k, s := genKey(t, tk, token.KeyRequest{Type: token.Ed25519, Label: "profile"})
			_, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: selfSigned(t, s, "c"), ID: k.ID, Label: "profile"})
			require.NoError(t, err)
			if tc.notLogged {
				require.NoError(t, tk.Logout(ctx))
			}
			err = tk.Delete(ctx, tc.obj(k))
			if tc.cond == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.cond)
			}
			if tc.notLogged {
				require.NoError(t, tk.Login(ctx, token.User, userPIN))
			}
			keys, err := tk.Keys(ctx)
			require.NoError(t, err)
			assert.Len(t, keys, tc.keys)
			certs, err := tk.Certificates(ctx)
			require.NoError(t, err)
			assert.Len(t, certs, tc.certs)
		})
	}
}

func TestSigner(t *testing.T) {
	ctx := context.Background()
	_, _, tk := loggedIn(t)
	k, s := genKey(t, tk, token.KeyRequest{Type: token.EC})
	digest := sha256.Sum256([]byte("x"))

	t.Run("login at sign time", func(t *testing.T) {
		require.NoError(t, tk.Logout(ctx))
		_, err := s.Sign(nil, digest[:], crypto.SHA256)
		requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
		require.NoError(t, tk.Login(ctx, token.User, userPIN))
		_, err = s.Sign(nil, digest[:], crypto.SHA256)
		require.NoError(t, err)
	})
	t.Run("digest length", func(t *testing.T) {
		_, err := s.Sign(nil, digest[:20], crypto.SHA256)
		require.ErrorIs(t, err, token.ErrInvalidInput)
	})
	t.Run("ed25519 with a hash", func(t *testing.T) {
		_, es := genKey(t, tk, token.KeyRequest{Type: token.Ed25519})
		d := sha512.Sum512([]byte("x"))
		_, err := es.Sign(nil, d[:], crypto.SHA512)
		require.ErrorIs(t, err, token.ErrUnsupported)
	})
	t.Run("key given by another public key", func(t *testing.T) {
		_, other := genKey(t, tk, token.KeyRequest{Type: token.EC})
		_, err := tk.Signer(ctx, &token.Key{Object: token.Object{ID: k.ID}, Public: other.Public()})
		require.ErrorIs(t, err, token.ErrNotFound)
		_, err = tk.Signer(ctx, &token.Key{Object: token.Object{ID: []byte("nope")}})
		requireCode(t, err, token.CKR_OBJECT_HANDLE_INVALID, token.ErrNotFound)
		_, err = tk.Signer(ctx, nil)
		require.ErrorIs(t, err, token.ErrInvalidInput)
	})
	t.Run("deleted key", func(t *testing.T) {
		require.NoError(t, tk.Delete(ctx, token.Object{Class: token.PrivateKey, ID: k.ID}))
		_, err := s.Sign(nil, digest[:], crypto.SHA256)
		requireCode(t, err, token.CKR_OBJECT_HANDLE_INVALID, token.ErrNotFound)
		// A new key under the old id is not the signer's key.
		_, err = tk.GenerateKey(ctx, token.KeyRequest{Type: token.EC, ID: k.ID})
		require.NoError(t, err)
		_, err = s.Sign(nil, digest[:], crypto.SHA256)
		require.ErrorIs(t, err, token.ErrNotFound)
	})
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	calls := func(tk token.Token, s crypto.Signer, k *token.Key, der []byte) map[string]error {
		_, infoErr := tk.Info(ctx)
		_, genErr := tk.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		_, keysErr := tk.Keys(ctx)
		_, certsErr := tk.Certificates(ctx)
		_, storeErr := tk.StoreCertificate(ctx, token.CertificateRequest{DER: der})
		_, signerErr := tk.Signer(ctx, k)
		_, signErr := s.Sign(nil, make([]byte, 32), nil)
		return map[string]error{
			"Info": infoErr, "Login": tk.Login(ctx, token.User, userPIN), "Logout": tk.Logout(ctx),
			"SetPIN": tk.SetPIN(ctx, userPIN, "abcdefgh"), "InitPIN": tk.InitPIN(ctx, "abcdefgh"),
			"Format": tk.Format(ctx, soPIN, ""), "GenerateKey": genErr, "Keys": keysErr,
			"Certificates": certsErr, "StoreCertificate": storeErr,
			"Delete": tk.Delete(ctx, token.Object{Class: token.PrivateKey, ID: k.ID}),
			"Signer": signerErr, "Sign": signErr,
		}
	}
	t.Run("token", func(t *testing.T) {
		_, _, tk := loggedIn(t)
		k, s := genKey(t, tk, token.KeyRequest{Type: token.EC})
		der := selfSigned(t, s, "x")
		require.NoError(t, tk.Close())
		require.NoError(t, tk.Close(), "closing twice is harmless")
		for name, err := range calls(tk, s, k, der) {
			assert.ErrorIs(t, err, token.ErrClosed, name)
		}
	})
	t.Run("provider", func(t *testing.T) {
		_, p, tk := loggedIn(t)
		k, s := genKey(t, tk, token.KeyRequest{Type: token.EC})
		der := selfSigned(t, s, "x")
		require.NoError(t, p.Close())
		require.NoError(t, p.Close())
		_, err := p.Tokens(ctx)
		assert.ErrorIs(t, err, token.ErrClosed)
		_, err = p.Open(ctx, token.Info{Serial: "0123456789abcdef"})
		assert.ErrorIs(t, err, token.ErrClosed)
		for name, err := range calls(tk, s, k, der) {
			assert.ErrorIs(t, err, token.ErrClosed, name)
		}
	})
}

func TestContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, _, tk := newToken(t, Options{})
	cancel()
	err := tk.Login(ctx, token.User, userPIN)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 10, info(t, tk).UserPIN.RetriesLeft, "a cancelled login costs no try")
}
