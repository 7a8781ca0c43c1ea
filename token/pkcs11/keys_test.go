//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

func boolAttr(t testing.TB, ctx *p11.Ctx, sh p11.SessionHandle, h p11.ObjectHandle, typ uint) bool {
	t.Helper()
	a, err := ctx.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(typ, nil)})
	require.NoError(t, err, "attribute %s", attrName(typ))
	require.Len(t, a[0].Value, 1)
	return a[0].Value[0] != 0
}

func findRaw(t testing.TB, ctx *p11.Ctx, sh p11.SessionHandle, class uint, id []byte) []p11.ObjectHandle {
	t.Helper()
	require.NoError(t, ctx.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class), p11.NewAttribute(p11.CKA_ID, id)}))
	hs, _, err := ctx.FindObjects(sh, 10)
	require.NoError(t, err)
	require.NoError(t, ctx.FindObjectsFinal(sh))
	return hs
}

// checkKeyObjects reads the generated objects back with raw PKCS#11 calls: the private half
// is a sensitive, non-extractable token object and its secret cannot be read.
func checkKeyObjects(t *testing.T, f fixture, key *token.Key, secret uint) {
	f.raw(t, func(ctx *p11.Ctx, sh p11.SessionHandle) {
		privs := findRaw(t, ctx, sh, p11.CKO_PRIVATE_KEY, key.ID)
		require.Len(t, privs, 1)
		h := privs[0]
		for typ, want := range map[uint]bool{
			p11.CKA_TOKEN: true, p11.CKA_PRIVATE: true, p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false,
			p11.CKA_SIGN: true, p11.CKA_ALWAYS_SENSITIVE: true, p11.CKA_NEVER_EXTRACTABLE: true,
		} {
			assert.Equal(t, want, boolAttr(t, ctx, sh, h, typ), attrName(typ))
		}
		_, err := ctx.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(secret, nil)})
		assert.True(t, isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE), "reading the secret: %v", err)

		pubs := findRaw(t, ctx, sh, p11.CKO_PUBLIC_KEY, key.ID)
		require.Len(t, pubs, 1)
		assert.True(t, boolAttr(t, ctx, sh, pubs[0], p11.CKA_TOKEN))
		assert.False(t, boolAttr(t, ctx, sh, pubs[0], p11.CKA_PRIVATE))
		for _, h := range []p11.ObjectHandle{privs[0], pubs[0]} {
			a, err := ctx.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, nil)})
			require.NoError(t, err)
			assert.Equal(t, key.Label, string(a[0].Value), "both halves carry the label")
		}
	})
}

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		name    string
		req     token.KeyRequest
		bits    int
		curve   string
		secret  uint
		long    bool
		backend []string
	}{
		{"rsa2048", token.KeyRequest{Type: token.RSA, Bits: 2048}, 2048, "", p11.CKA_PRIVATE_EXPONENT, false, []string{"softhsm2", "opencryptoki"}},
		{"rsa-default-bits", token.KeyRequest{Type: token.RSA}, 2048, "", p11.CKA_PRIVATE_EXPONENT, false, []string{"softhsm2"}},
		{"rsa3072", token.KeyRequest{Type: token.RSA, Bits: 3072}, 3072, "", p11.CKA_PRIVATE_EXPONENT, true, []string{"softhsm2"}},
		{"rsa4096", token.KeyRequest{Type: token.RSA, Bits: 4096}, 4096, "", p11.CKA_PRIVATE_EXPONENT, true, []string{"softhsm2"}},
		{"ec-p256", token.KeyRequest{Type: token.EC, Curve: "P-256"}, 256, "P-256", p11.CKA_VALUE, false, []string{"softhsm2"}},
		{"ec-p384", token.KeyRequest{Type: token.EC, Curve: "P-384"}, 384, "P-384", p11.CKA_VALUE, false, []string{"softhsm2"}},
		{"ed25519", token.KeyRequest{Type: token.Ed25519}, 256, "", p11.CKA_VALUE, false, []string{"softhsm2"}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			f.login(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if !contains(tt.backend, b.name) {
						t.Skipf("%s does not offer %s", b.name, tt.name)
					}
					if tt.long && testing.Short() {
						t.Skip("slow key generation (-short)")
					}
					req := tt.req
					req.Label = "key " + tt.name
					req.ID = []byte("id-" + tt.name)
					key, err := f.tok.GenerateKey(ctx, req)
					require.NoError(t, err)
					assert.Equal(t, token.Object{Class: token.PrivateKey, ID: req.ID, Label: req.Label}, key.Object)
					assert.Equal(t, tt.req.Type, key.Type)
					assert.Equal(t, tt.bits, key.Bits)
					assert.Equal(t, tt.curve, key.Curve)
					switch pub := key.Public.(type) {
					case *rsa.PublicKey:
						assert.Equal(t, 65537, pub.E)
						assert.Equal(t, tt.bits, pub.N.BitLen())
					case *ecdsa.PublicKey:
						assert.Equal(t, tt.curve, pub.Curve.Params().Name)
					case ed25519.PublicKey:
						assert.Len(t, pub, ed25519.PublicKeySize)
					default:
						t.Fatalf("public key %T", pub)
					}
					checkKeyObjects(t, f, key, tt.secret)

					listed := findByID(t, f.tok, key.ID)
					require.NotNil(t, listed)
					assert.Equal(t, key, listed)

					_, err = f.tok.GenerateKey(ctx, req)
					require.ErrorIs(t, err, token.ErrAlreadyExists)
				})
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func findByID(t testing.TB, tok *Token, id []byte) *token.Key {
	t.Helper()
	keys, err := tok.Keys(context.Background())
	require.NoError(t, err)
	for _, k := range keys {
		if bytes.Equal(k.ID, id) {
			return k
		}
	}
	return nil
}

func TestGenerateKeyRandomID(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	a, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
	require.NoError(t, err)
	b, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
	require.NoError(t, err)
	assert.Len(t, a.ID, 20)
	assert.NotEqual(t, a.ID, b.ID)
	assert.Equal(t, "P-256", a.Curve, "P-256 is the default curve")
	assert.Empty(t, a.Label)
}

func TestGenerateKeyRefused(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	vendor := func(priv ...token.Attribute) token.KeyRequest {
		return token.KeyRequest{Type: token.Vendor, Vendor: &token.VendorMechanism{
			Mechanism:       p11.CKM_EC_KEY_PAIR_GEN,
			PublicTemplate:  []token.Attribute{{Type: p11.CKA_EC_PARAMS, Value: mustMarshal(curves[0].oid)}},
			PrivateTemplate: priv,
		}}
	}
	tests := []struct {
		name string
		req  token.KeyRequest
		msg  string
	}{
		{"rsa 1024", token.KeyRequest{Type: token.RSA, Bits: 1024}, "choose 2048, 3072 or 4096"},
		{"curve P-521", token.KeyRequest{Type: token.EC, Curve: "P-521"}, "choose P-256 or P-384"},
		{"unknown type", token.KeyRequest{Type: "dsa"}, "choose rsa, ec, ed25519 or vendor"},
		{"vendor without mechanism", token.KeyRequest{Type: token.Vendor}, "needs a vendor mechanism"},
		{"vendor not token", vendor(token.Attribute{Type: p11.CKA_TOKEN, Value: []byte{0}}), "sets CKA_TOKEN differently"},
		{"vendor not private", vendor(token.Attribute{Type: p11.CKA_PRIVATE, Value: []byte{0}}), "sets CKA_PRIVATE differently"},
		{"vendor not sensitive", vendor(token.Attribute{Type: p11.CKA_SENSITIVE, Value: []byte{0}}), "sets CKA_SENSITIVE differently"},
		{"vendor extractable", vendor(token.Attribute{Type: p11.CKA_EXTRACTABLE, Value: []byte{1}}), "sets CKA_EXTRACTABLE differently"},
		{"vendor cannot sign", vendor(token.Attribute{Type: p11.CKA_SIGN, Value: []byte{0}}), "sets CKA_SIGN differently"},
		{"vendor bad boolean", vendor(token.Attribute{Type: p11.CKA_SENSITIVE, Value: []byte{1, 0}}), "sets CKA_SENSITIVE differently"},
		{"vendor sets id", vendor(token.Attribute{Type: p11.CKA_ID, Value: []byte{1}}), "give the id and label in the key request"},
		{"vendor wrong class", vendor(token.Attribute{Type: p11.CKA_CLASS, Value: p11.NewAttribute(0, p11.CKO_SECRET_KEY).Value}), "CKA_CLASS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.tok.GenerateKey(ctx, tt.req)
			require.ErrorIs(t, err, token.ErrInvalidInput)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	keys, err := f.tok.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "nothing was generated")

	t.Run("vendor mechanism the module lacks", func(t *testing.T) {
		_, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.Vendor, Vendor: &token.VendorMechanism{Mechanism: 0x80001234}})
		require.ErrorIs(t, err, token.ErrUnsupported)
		assert.Contains(t, err.Error(), "mechanism 0x80001234")
		assert.Contains(t, err.Error(), p11test.SoftHSMModule)
	})
	t.Run("needs login", func(t *testing.T) {
		require.NoError(t, f.tok.Logout(ctx))
		_, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		require.ErrorIs(t, err, token.ErrNotLoggedIn)
	})
}

// TestGenerateVendorKey drives a "vendor" mechanism that SoftHSM2 happens to know (EC), the
// way configuration would describe KAZTOKEN's GOST mechanism.
func TestGenerateVendorKey(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.Vendor, Label: "vendor", ID: []byte{7}, Vendor: &token.VendorMechanism{
		Mechanism: p11.CKM_EC_KEY_PAIR_GEN,
		PublicTemplate: []token.Attribute{
			{Type: p11.CKA_KEY_TYPE, Value: p11.NewAttribute(0, p11.CKK_EC).Value},
			{Type: p11.CKA_EC_PARAMS, Value: mustMarshal(curves[0].oid)},
		},
		PrivateTemplate: []token.Attribute{
			{Type: p11.CKA_KEY_TYPE, Value: p11.NewAttribute(0, p11.CKK_EC).Value},
			{Type: p11.CKA_SENSITIVE, Value: []byte{1}}, // repeating the policy is allowed
			{Type: p11.CKA_DERIVE, Value: []byte{1}},
		},
	}})
	require.NoError(t, err)
	assert.Equal(t, token.Vendor, key.Type)
	assert.IsType(t, &ecdsa.PublicKey{}, key.Public, "a public key the host knows is parsed anyway")
	checkKeyObjects(t, f, key, p11.CKA_VALUE)
	f.raw(t, func(ctx *p11.Ctx, sh p11.SessionHandle) {
		h := findRaw(t, ctx, sh, p11.CKO_PRIVATE_KEY, key.ID)[0]
		assert.True(t, boolAttr(t, ctx, sh, h, p11.CKA_DERIVE), "the vendor's own attributes are kept")
	})
}

func TestGenerateKeyUnsupportedOpenCryptoki(t *testing.T) {
	ctx := context.Background()
	f := ockFixture(t)
	f.login(t)
	tests := []struct {
		req  token.KeyRequest
		mech string
	}{
		{token.KeyRequest{Type: token.EC, Curve: "P-256"}, "CKM_EC_KEY_PAIR_GEN (EC P-256 keys)"},
		{token.KeyRequest{Type: token.Ed25519}, "CKM_EC_EDWARDS_KEY_PAIR_GEN (Ed25519 keys)"},
	}
	for _, tt := range tests {
		_, err := f.tok.GenerateKey(ctx, tt.req)
		require.ErrorIs(t, err, token.ErrUnsupported)
		assert.Contains(t, err.Error(), tt.mech)
		assert.Contains(t, err.Error(), p11test.OpenCryptokiModule)
		assert.Contains(t, err.Error(), p11test.OpenCryptokiLabel)
	}
}

func selfSignedDER(t testing.TB, tok token.Token, key *token.Key) []byte {
	t.Helper()
	s, err := tok.Signer(context.Background(), key)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "tokenrun test", Country: []string{"KZ"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	require.NoError(t, err)
	return der
}

func storeSelfSigned(t testing.TB, tok token.Token, key *token.Key) *token.Cert {
	t.Helper()
	c, err := tok.StoreCertificate(context.Background(), token.CertificateRequest{DER: selfSignedDER(t, tok, key), ID: key.ID, Label: key.Label})
	require.NoError(t, err)
	return c
}

func TestCertificates(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Label: "profile"})
	require.NoError(t, err)
	der := selfSignedDER(t, f.tok, key)

	_, err = f.tok.StoreCertificate(ctx, token.CertificateRequest{DER: []byte("garbage"), ID: key.ID})
	require.ErrorIs(t, err, token.ErrInvalidInput)
	assert.Contains(t, err.Error(), "not a DER X.509 certificate")

	c, err := f.tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID, Label: "profile"})
	require.NoError(t, err)
	assert.Equal(t, token.Object{Class: token.Certificate, ID: key.ID, Label: "profile"}, c.Object)
	_, err = f.tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID, Label: "again"})
	require.ErrorIs(t, err, token.ErrAlreadyExists)
	_, err = f.tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: []byte("other id")})
	require.NoError(t, err, "the same certificate under another id is another object")

	f.raw(t, func(ctx *p11.Ctx, sh p11.SessionHandle) {
		hs := findRaw(t, ctx, sh, p11.CKO_CERTIFICATE, key.ID)
		require.Len(t, hs, 1)
		a, err := ctx.GetAttributeValue(sh, hs[0], []*p11.Attribute{
			p11.NewAttribute(p11.CKA_SUBJECT, nil), p11.NewAttribute(p11.CKA_ISSUER, nil),
			p11.NewAttribute(p11.CKA_SERIAL_NUMBER, nil), p11.NewAttribute(p11.CKA_VALUE, nil),
		})
		require.NoError(t, err)
		assert.Equal(t, c.X509.RawSubject, a[0].Value)
		assert.Equal(t, c.X509.RawIssuer, a[1].Value)
		assert.Equal(t, mustMarshal(c.X509.SerialNumber), a[2].Value, "CKA_SERIAL_NUMBER is the DER INTEGER")
		assert.Equal(t, der, a[3].Value)
		assert.True(t, boolAttr(t, ctx, sh, hs[0], p11.CKA_TOKEN))
		assert.False(t, boolAttr(t, ctx, sh, hs[0], p11.CKA_PRIVATE))
	})

	// A garbage certificate object written by another tool is skipped by the listing, and
	// Delete still removes it.
	f.raw(t, func(ctx *p11.Ctx, sh p11.SessionHandle) {
		_, err := ctx.CreateObject(sh, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE), p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
			p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_ID, []byte("junk")),
			p11.NewAttribute(p11.CKA_SUBJECT, []byte{0x30, 0}), p11.NewAttribute(p11.CKA_VALUE, []byte("junk")),
		})
		require.NoError(t, err, "SoftHSM2 stores anything as a certificate")
	})
	certs, err := f.tok.Certificates(ctx)
	require.NoError(t, err)
	require.Len(t, certs, 2)
	require.NoError(t, f.tok.Delete(ctx, token.Object{Class: token.Certificate, ID: []byte("junk")}))

	// Logged out, certificates stay visible and private keys hide.
	require.NoError(t, f.tok.Logout(ctx))
	certs, err = f.tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Len(t, certs, 2)
	keys, err := f.tok.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)
}

func TestKeysPublicHalf(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	rsaKey, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA, Label: "rsa"})
	require.NoError(t, err)
	ecKey, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Curve: "P-384", Label: "ec"})
	require.NoError(t, err)
	storeSelfSigned(t, f.tok, ecKey)

	// Without public-key objects the RSA public key comes from the private object's
	// attributes, and the EC one from the certificate.
	require.NoError(t, f.tok.Delete(ctx, token.Object{Class: token.PublicKey, ID: rsaKey.ID}))
	require.NoError(t, f.tok.Delete(ctx, token.Object{Class: token.PublicKey, ID: ecKey.ID}))
	for _, want := range []*token.Key{rsaKey, ecKey} {
		got := findByID(t, f.tok, want.ID)
		require.NotNil(t, got)
		assert.Equal(t, want, got)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Label: "doomed", ID: []byte{1, 2}})
	require.NoError(t, err)
	c := storeSelfSigned(t, f.tok, key)
	_, err = f.tok.StoreCertificate(ctx, token.CertificateRequest{DER: selfSignedDER(t, f.tok, key), ID: key.ID, Label: "renewed"})
	require.NoError(t, err)

	require.NoError(t, f.tok.Delete(ctx, token.Object{Class: token.Certificate, ID: key.ID, Label: "renewed"}), "label narrows")
	certs, err := f.tok.Certificates(ctx)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	assert.Equal(t, c.DER, certs[0].DER)

	tests := []struct {
		name string
		obj  token.Object
		is   error
	}{
		{"unknown class", token.Object{Class: "secret", ID: key.ID}, token.ErrInvalidInput},
		{"no id and no label", token.Object{Class: token.Certificate}, token.ErrInvalidInput},
		{"no such id", token.Object{Class: token.Certificate, ID: []byte{9}}, token.ErrNotFound},
		{"no such label", token.Object{Class: token.PrivateKey, ID: key.ID, Label: "other"}, token.ErrNotFound},
	}
	for _, tt := range tests {
		require.ErrorIs(t, f.tok.Delete(ctx, tt.obj), tt.is, tt.name)
	}
	require.NoError(t, f.tok.Delete(ctx, key.Object))
	require.NoError(t, f.tok.Delete(ctx, token.Object{Class: token.PublicKey, ID: key.ID}))
	require.NoError(t, f.tok.Delete(ctx, c.Object))
	require.ErrorIs(t, f.tok.Delete(ctx, key.Object), token.ErrNotFound)
	f.raw(t, func(ctx *p11.Ctx, sh p11.SessionHandle) {
		require.NoError(t, ctx.FindObjectsInit(sh, nil))
		hs, _, err := ctx.FindObjects(sh, 10)
		require.NoError(t, err)
		require.NoError(t, ctx.FindObjectsFinal(sh))
		assert.Empty(t, hs, "nothing is left")
	})
}

// TestPKCS11Tool checks the token's state with OpenSC's pkcs11-tool, which this project did
// not write.
func TestPKCS11Tool(t *testing.T) {
	tool := p11test.PKCS11Tool(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			f.login(t)
			key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "signing key", ID: []byte{0xab, 0xcd, 0x01}})
			require.NoError(t, err)
			storeSelfSigned(t, f.tok, key)

			run := func(args ...string) (string, error) {
				args = append([]string{"--module", f.tt.Module, "--token-label", f.tt.Label}, args...)
				out, err := exec.Command(tool, args...).CombinedOutput()
				return string(out), err
			}
			out, err := run("--login", "--pin", f.tt.UserPIN, "--list-objects")
			require.NoError(t, err, out)
			idHex := hex.EncodeToString(key.ID)
			for _, want := range []string{
				"Private Key Object; RSA", "Public Key Object; RSA 2048 bits", "Certificate Object; type = X.509 cert",
				"label:      signing key", "ID:         " + idHex, "subject:    DN: C=KZ, CN=tokenrun test",
			} {
				assert.Contains(t, out, want)
			}
			priv := objectBlock(out, "Private Key Object")
			assert.Contains(t, priv, "Access:     sensitive, always sensitive, never extractable", "pkcs11-tool sees a sensitive, non-extractable key")
			assert.Contains(t, priv, "sign")

			// pkcs11-tool refuses to read private keys (with exit status 0 on this version):
			// what matters is that nothing comes out.
			dump := filepath.Join(t.TempDir(), "priv.der")
			out, err = run("--login", "--pin", f.tt.UserPIN, "--read-object", "--type", "privkey", "--id", idHex, "--output-file", dump)
			got, _ := os.ReadFile(dump)
			assert.Empty(t, got, "pkcs11-tool must not read the private key (err %v): %s", err, out)

			out, err = run("--list-objects")
			require.NoError(t, err, out)
			assert.Contains(t, out, "Certificate Object")
			assert.NotContains(t, out, "Private Key Object", "private keys are hidden without login")
		})
	}
}

// objectBlock is the indented block pkcs11-tool prints under the line starting with head.
func objectBlock(out, head string) string {
	var block []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, head):
			in = true
		case in && strings.HasPrefix(line, " "):
			block = append(block, line)
		default:
			in = false
		}
	}
	return strings.Join(block, "\n")
}

// TestKeysMadeByPKCS11Tool lists and uses keys another tool generated: pkcs11-tool 0.23
// writes Ed25519 parameters as the printable string "edwards25519", not the OID this
// package writes.
func TestKeysMadeByPKCS11Tool(t *testing.T) {
	tool := p11test.PKCS11Tool(t)
	p11test.SoftHSM(t)
	tt := p11test.SoftHSMToken(t, shLabel, shSOPIN, shUserPIN)
	gen := []struct {
		keyType string
		id      string
		typ     token.KeyType
		hash    crypto.Hash
	}{
		{"rsa:2048", "01", token.RSA, crypto.SHA256},
		{"EC:prime256v1", "02", token.EC, crypto.SHA256},
		{"EC:edwards25519", "03", token.Ed25519, 0},
	}
	for _, g := range gen {
		out, err := exec.Command(tool, "--module", tt.Module, "--token-label", tt.Label, "--login", "--pin", tt.UserPIN,
			"--keypairgen", "--key-type", g.keyType, "--id", g.id, "--label", g.keyType).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	f := openFixture(t, tt)
	f.login(t)
	for _, g := range gen {
		id, _ := hex.DecodeString(g.id)
		key := findByID(t, f.tok, id)
		require.NotNil(t, key, g.keyType)
		assert.Equal(t, g.typ, key.Type, g.keyType)
		require.NotNil(t, key.Public, g.keyType)
		s, err := f.tok.Signer(context.Background(), key)
		require.NoError(t, err, g.keyType)
		sig, err := s.Sign(rand.Reader, digestOf(g.hash), g.hash)
		require.NoError(t, err, g.keyType)
		verify(t, key.Public, g.hash, g.hash, sig)
	}
}
