// Package conformance is the one test suite every token backend passes: the software token,
// SoftHSM2 and openCryptoki run the same functions. A backend that lacks a feature declares
// it in Backend, and the suite then asserts the documented behaviour by name (SoftHSM2 never
// locks a PIN, so its test checks that it never does) instead of passing silently.
package conformance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// Backend describes one backend under test.
type Backend struct {
	Name string
	// New returns a provider holding exactly one fresh initialised token, labelled Label,
	// with user PIN UserPIN and SO PIN SOPIN. It is called once per test; cleanup is the
	// backend's (t.Cleanup).
	New            func(t *testing.T) token.Provider
	Label          string
	UserPIN, SOPIN string
	// UserMaxTries is the number of wrong tries that locks the user PIN; 0 means the module
	// never locks (SoftHSM2: its maintainers declined lockout).
	UserMaxTries int
	// SOMaxTries likewise for the SO PIN. A locked SO PIN cannot be undone through PKCS#11:
	// New must give a fresh token even after a test locked it.
	SOMaxTries int
	// ExactRetries: the backend reports RetriesLeft exactly (PKCS#11 modules only give flags).
	ExactRetries bool
	// ReportsNothing: the backend gives no PIN flags (count low, final try, locked) and no
	// count at all, and still locks after UserMaxTries / SOMaxTries wrong tries, as
	// TPM-backed modules do (the profile "reports nothing, locks after 3"). The suite then
	// asserts that nothing is reported and that the lock falls on exactly the try it should.
	ReportsNothing bool
	// Unsupported names the key specs (see KeySpecs) the module lacks; the suite asserts that
	// asking for them fails with token.ErrUnsupported.
	Unsupported []string
}

// KeySpec is a key the suite generates.
type KeySpec struct {
	Name string
	Req  token.KeyRequest
	Hash crypto.Hash // 0 for Ed25519
}

// KeySpecs are the key types every backend is asked for.
var KeySpecs = []KeySpec{
	{Name: "rsa2048", Req: token.KeyRequest{Type: token.RSA, Bits: 2048}, Hash: crypto.SHA256},
	{Name: "ec-p256", Req: token.KeyRequest{Type: token.EC, Curve: "P-256"}, Hash: crypto.SHA256},
	{Name: "ec-p384", Req: token.KeyRequest{Type: token.EC, Curve: "P-384"}, Hash: crypto.SHA384},
	{Name: "ed25519", Req: token.KeyRequest{Type: token.Ed25519}},
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"info", testInfo},
		{"login", testLogin},
		{"lockout", testLockout},
		{"so_lockout", testSOLockout},
		{"pin_reporting", testPINReporting},
		{"right_pin_after_fewer_wrong_tries", testRightPINAfterFewerWrong},
		{"set_pin", testSetPIN},
		{"init_pin_needs_so", testInitPINNeedsSO},
		{"generate_and_sign", testGenerateAndSign},
		{"generate_needs_login", testGenerateNeedsLogin},
		{"duplicate_id", testDuplicateID},
		{"private_keys_hidden_when_logged_out", testKeysHidden},
		{"store_certificate", testStoreCertificate},
		{"delete", testDelete},
		{"format", testFormat},
		{"format_wrong_so_pin_changes_nothing", testFormatWrongSOPIN},
		{"format_with_user_pin", testFormatWithUserPIN},
		{"closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
	}
}

// open returns the backend's single token.
func open(t *testing.T, b Backend) (token.Provider, token.Token) {
	t.Helper()
	ctx := context.Background()
	p := b.New(t)
	sel, err := token.Select(ctx, p, token.SelectOptions{})
	require.NoError(t, err)
	info, err := sel.One()
	require.NoError(t, err, "backend must present exactly one initialised token")
	tok, err := p.Open(ctx, info)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tok.Close() })
	return p, tok
}

func info(t *testing.T, tok token.Token) token.Info {
	t.Helper()
	i, err := tok.Info(context.Background())
	require.NoError(t, err)
	return i
}

func login(t *testing.T, tok token.Token, pin string) {
	t.Helper()
	require.NoError(t, tok.Login(context.Background(), token.User, pin))
}

func testInfo(t *testing.T, b Backend) {
	_, tok := open(t, b)
	i := info(t, tok)
	assert.Equal(t, b.Label, i.Label)
	assert.NotEmpty(t, i.Serial)
	assert.True(t, i.Initialized)
	assert.True(t, i.UserPINInitialized)
	assert.True(t, i.LoginRequired)
	assert.False(t, i.UserPIN.Locked)
	assert.False(t, i.SOPIN.Locked)
}

// wrongPIN is a PIN no fixture uses; the suite checks it never reaches an error text.
const wrongPIN = "99990000"

func testLogin(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	err := tok.Login(ctx, token.User, wrongPIN)
	require.ErrorIs(t, err, token.ErrPINIncorrect)
	var te *token.Error
	require.True(t, errors.As(err, &te))
	assert.Equal(t, token.CKR_PIN_INCORRECT, te.Code)
	assert.NotContains(t, err.Error(), wrongPIN)
	if b.ExactRetries && b.UserMaxTries > 0 {
		assert.Equal(t, b.UserMaxTries-1, te.RetriesLeft)
	}
	if b.ReportsNothing {
		assert.Equal(t, -1, te.RetriesLeft, "no count in the error")
	}

	login(t, tok, b.UserPIN)
	// Logging in again must check the PIN again, never succeed on the old state.
	require.ErrorIs(t, tok.Login(ctx, token.User, wrongPIN), token.ErrPINIncorrect)
	login(t, tok, b.UserPIN)
	assert.False(t, info(t, tok).UserPIN.CountLow, "a right PIN resets the count")
	require.NoError(t, tok.Logout(ctx))
	require.NoError(t, tok.Login(ctx, token.SO, b.SOPIN))
	require.NoError(t, tok.Logout(ctx))
}

func testLockout(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	if b.UserMaxTries == 0 {
		t.Run("never_locks_"+b.Name, func(t *testing.T) {
			for range 5 {
				require.ErrorIs(t, tok.Login(ctx, token.User, wrongPIN), token.ErrPINIncorrect)
			}
			assert.False(t, info(t, tok).UserPIN.Locked)
			login(t, tok, b.UserPIN)
		})
		return
	}
	for try := 1; try <= b.UserMaxTries; try++ {
		err := tok.Login(ctx, token.User, wrongPIN)
		left := b.UserMaxTries - try
		st := info(t, tok).UserPIN
		if b.ReportsNothing {
			// Nothing tells the caller how close the lock is: not even the lock itself.
			require.ErrorIs(t, err, token.ErrPINIncorrect, "try %d", try)
			assert.Equal(t, nothingReported, st, "try %d", try)
			continue
		}
		if left == 0 {
			// The locking try itself may report incorrect or locked, by module.
			require.Truef(t, errors.Is(err, token.ErrPINIncorrect) || errors.Is(err, token.ErrPINLocked), "try %d: %v", try, err)
			assert.True(t, st.Locked, "locked after %d wrong tries", try)
			break
		}
		require.ErrorIs(t, err, token.ErrPINIncorrect, "try %d", try)
		assert.True(t, st.CountLow, "count-low after try %d", try)
		assert.Equal(t, left == 1, st.FinalTry, "final-try after try %d", try)
		assert.False(t, st.Locked, "not locked after try %d", try)
		if b.ExactRetries {
			assert.Equal(t, left, st.RetriesLeft)
		}
	}
	require.ErrorIs(t, tok.Login(ctx, token.User, b.UserPIN), token.ErrPINLocked, "even the right PIN is refused once locked")

	// The way out: SO logs in and sets a new user PIN.
	require.NoError(t, tok.Login(ctx, token.SO, b.SOPIN))
	require.NoError(t, tok.InitPIN(ctx, "24681357"))
	require.NoError(t, tok.Logout(ctx))
	st := info(t, tok).UserPIN
	assert.False(t, st.Locked)
	assert.False(t, st.FinalTry)
	login(t, tok, "24681357")
}

// nothingReported is the PIN status of a backend that reports nothing.
var nothingReported = token.PINStatus{RetriesLeft: -1}

// testPINReporting: after a wrong try, a backend that reports nothing shows no flag and no
// count; every other backend shows at least the count-low flag.
func testPINReporting(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	i := info(t, tok)
	assert.False(t, i.UserPIN.CountLow || i.UserPIN.FinalTry || i.UserPIN.Locked, "a fresh token shows no flag: %+v", i.UserPIN)
	err := tok.Login(ctx, token.User, wrongPIN)
	require.ErrorIs(t, err, token.ErrPINIncorrect)
	require.ErrorIs(t, tok.Login(ctx, token.SO, wrongPIN), token.ErrPINIncorrect)
	i = info(t, tok)
	if b.ReportsNothing {
		t.Run("reports_nothing_"+b.Name, func(t *testing.T) {
			assert.Equal(t, nothingReported, i.UserPIN)
			assert.Equal(t, nothingReported, i.SOPIN)
			var te *token.Error
			require.ErrorAs(t, err, &te)
			assert.Equal(t, -1, te.RetriesLeft)
		})
	} else {
		assert.True(t, i.UserPIN.CountLow, "count-low after a wrong user PIN")
		assert.True(t, i.SOPIN.CountLow, "count-low after a wrong SO PIN")
	}
	login(t, tok, b.UserPIN)
	require.NoError(t, tok.Login(ctx, token.SO, b.SOPIN))
	require.NoError(t, tok.Logout(ctx))
}

// testRightPINAfterFewerWrong: one wrong try short of the lock, the right PIN still works
// and starts the count afresh, for the user and the SO. With testLockout this pins the lock
// to exactly the UserMaxTries-th wrong try, which matters most where nothing is reported.
func testRightPINAfterFewerWrong(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	for _, r := range []struct {
		role   token.Role
		pin    string
		max    int
		status func(token.Info) token.PINStatus
		name   string
	}{
		{role: token.User, pin: b.UserPIN, max: b.UserMaxTries, status: func(i token.Info) token.PINStatus { return i.UserPIN }, name: "user"},
		{role: token.SO, pin: b.SOPIN, max: b.SOMaxTries, status: func(i token.Info) token.PINStatus { return i.SOPIN }, name: "so"},
	} {
		t.Run(r.name, func(t *testing.T) {
			wrong := r.max - 1
			if r.max == 0 {
				wrong = 3 // a module that never locks
			}
			for round := range 2 {
				for try := 1; try <= wrong; try++ {
					require.ErrorIs(t, tok.Login(ctx, r.role, wrongPIN), token.ErrPINIncorrect, "round %d try %d", round, try)
				}
				require.NoError(t, tok.Login(ctx, r.role, r.pin), "round %d: the right PIN after %d wrong tries", round, wrong)
				st := r.status(info(t, tok))
				assert.False(t, st.CountLow || st.FinalTry || st.Locked, "round %d: the right PIN resets the count: %+v", round, st)
				require.NoError(t, tok.Logout(ctx))
			}
		})
	}
}

func testSOLockout(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	if b.SOMaxTries == 0 {
		t.Run("never_locks_"+b.Name, func(t *testing.T) {
			for range 5 {
				require.ErrorIs(t, tok.Login(ctx, token.SO, wrongPIN), token.ErrPINIncorrect)
			}
			assert.False(t, info(t, tok).SOPIN.Locked)
			require.NoError(t, tok.Login(ctx, token.SO, b.SOPIN))
		})
		return
	}
	for try := 1; try < b.SOMaxTries; try++ {
		require.ErrorIs(t, tok.Login(ctx, token.SO, wrongPIN), token.ErrPINIncorrect)
	}
	assert.Equal(t, !b.ReportsNothing, info(t, tok).SOPIN.FinalTry)
	_ = tok.Login(ctx, token.SO, wrongPIN)
	if b.ReportsNothing {
		assert.Equal(t, nothingReported, info(t, tok).SOPIN)
	} else {
		assert.True(t, info(t, tok).SOPIN.Locked)
	}
	require.ErrorIs(t, tok.Login(ctx, token.SO, b.SOPIN), token.ErrPINLocked)
	require.ErrorIs(t, tok.Format(ctx, b.SOPIN, "X"), token.ErrPINLocked, "a locked SO PIN cannot format")
	login(t, tok, b.UserPIN)
}

func testSetPIN(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	require.ErrorIs(t, tok.SetPIN(ctx, wrongPIN, "13572468"), token.ErrPINIncorrect)
	require.NoError(t, tok.SetPIN(ctx, b.UserPIN, "13572468"))
	require.NoError(t, tok.Logout(ctx))
	require.ErrorIs(t, tok.Login(ctx, token.User, b.UserPIN), token.ErrPINIncorrect)
	login(t, tok, "13572468")
}

func testInitPINNeedsSO(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	require.Error(t, tok.InitPIN(ctx, "13572468"), "nobody logged in")
	login(t, tok, b.UserPIN)
	require.Error(t, tok.InitPIN(ctx, "13572468"), "the user cannot reset their own PIN")
	require.NoError(t, tok.Logout(ctx))
	login(t, tok, b.UserPIN) // unchanged
}

func unsupported(b Backend, name string) bool {
	for _, u := range b.Unsupported {
		if u == name {
			return true
		}
	}
	return false
}

func testGenerateAndSign(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	for _, spec := range KeySpecs {
		if unsupported(b, spec.Name) {
			t.Run(spec.Name+"_unsupported_by_"+b.Name, func(t *testing.T) {
				req := spec.Req
				req.Label = spec.Name
				_, err := tok.GenerateKey(ctx, req)
				require.ErrorIs(t, err, token.ErrUnsupported)
			})
			continue
		}
		t.Run(spec.Name, func(t *testing.T) {
			req := spec.Req
			req.Label = "conformance " + spec.Name
			key, err := tok.GenerateKey(ctx, req)
			require.NoError(t, err)
			assert.Len(t, key.ID, 20, "default id is 20 random bytes")
			assert.Equal(t, req.Label, key.Label)
			assert.Equal(t, spec.Req.Type, key.Type)
			require.NotNil(t, key.Public)

			listed := findKey(t, tok, key.ID)
			require.NotNil(t, listed, "Keys() lists the new key")
			assert.Equal(t, key.Label, listed.Label)
			assert.True(t, publicEqual(key.Public, listed.Public))

			signer, err := tok.Signer(ctx, listed)
			require.NoError(t, err)
			assert.True(t, publicEqual(key.Public, signer.Public()))
			verifySignature(t, signer, spec.Hash)
			if _, isRSA := key.Public.(*rsa.PublicKey); isRSA {
				assert.Equal(t, spec.Req.Bits, key.Bits)
			}
		})
	}
	t.Run("vendor_mechanism_template_cannot_make_extractable", func(t *testing.T) {
		_, err := tok.GenerateKey(ctx, token.KeyRequest{Type: token.Vendor, Label: "v", Vendor: &token.VendorMechanism{
			Mechanism:       0x0,                                                // CKM_RSA_PKCS_KEY_PAIR_GEN
			PrivateTemplate: []token.Attribute{{Type: 0x162, Value: []byte{1}}}, // CKA_EXTRACTABLE=true
		}})
		require.Error(t, err)
		assert.Truef(t, errors.Is(err, token.ErrInvalidInput) || errors.Is(err, token.ErrUnsupported), "%v", err)
	})
}

func findKey(t *testing.T, tok token.Token, id []byte) *token.Key {
	t.Helper()
	keys, err := tok.Keys(context.Background())
	require.NoError(t, err)
	for _, k := range keys {
		if string(k.ID) == string(id) {
			return k
		}
	}
	return nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// verifySignature signs a message through the token and checks it with Go's own verifiers.
func verifySignature(t *testing.T, s crypto.Signer, h crypto.Hash) {
	t.Helper()
	msg := []byte("payment order 42: 1,000,000.00 KZT")
	var digest []byte
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		digest = d[:]
	case 0:
		digest = msg
	}
	sig, err := s.Sign(rand.Reader, digest, h)
	require.NoError(t, err)
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		require.NoError(t, rsa.VerifyPKCS1v15(pub, h, digest, sig))
		pss, err := s.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		if errors.Is(err, token.ErrUnsupported) {
			return
		}
		require.NoError(t, err)
		require.NoError(t, rsa.VerifyPSS(pub, h, digest, pss, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
	case *ecdsa.PublicKey:
		assert.True(t, ecdsa.VerifyASN1(pub, digest, sig), "ECDSA signature verifies")
	case ed25519.PublicKey:
		assert.True(t, ed25519.Verify(pub, msg, sig), "Ed25519 signature verifies")
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

func testGenerateNeedsLogin(t *testing.T, b Backend) {
	_, tok := open(t, b)
	_, err := tok.GenerateKey(context.Background(), token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "x"})
	require.ErrorIs(t, err, token.ErrNotLoggedIn)
}

// anyKey generates the cheapest key every backend supports.
func anyKey(t *testing.T, tok token.Token, b Backend, label string, id []byte) *token.Key {
	t.Helper()
	req := token.KeyRequest{Type: token.EC, Curve: "P-256", Label: label, ID: id}
	if unsupported(b, "ec-p256") {
		req = token.KeyRequest{Type: token.RSA, Bits: 2048, Label: label, ID: id}
	}
	key, err := tok.GenerateKey(context.Background(), req)
	require.NoError(t, err)
	return key
}

func testDuplicateID(t *testing.T, b Backend) {
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	id := []byte{0xca, 0xfe}
	anyKey(t, tok, b, "first", id)
	req := token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "second", ID: id}
	_, err := tok.GenerateKey(context.Background(), req)
	require.ErrorIs(t, err, token.ErrAlreadyExists)
	keys, err := tok.Keys(context.Background())
	require.NoError(t, err)
	assert.Len(t, keys, 1, "no second key was made")
}

func testKeysHidden(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	key := anyKey(t, tok, b, "k", nil)
	storeSelfSigned(t, tok, key)
	require.NoError(t, tok.Logout(ctx))
	keys, err := tok.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "private keys are private objects")
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Len(t, certs, 1, "certificates stay visible: the client picks a profile before logging in")
}

func selfSigned(t *testing.T, tok token.Token, key *token.Key) []byte {
	t.Helper()
	signer, err := tok.Signer(context.Background(), key)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "conformance", Country: []string{"KZ"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	require.NoError(t, err)
	return der
}

func storeSelfSigned(t *testing.T, tok token.Token, key *token.Key) *token.Cert {
	t.Helper()
	c, err := tok.StoreCertificate(context.Background(), token.CertificateRequest{DER: selfSigned(t, tok, key), ID: key.ID, Label: key.Label})
	require.NoError(t, err)
	return c
}

func testStoreCertificate(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	key := anyKey(t, tok, b, "profile", nil)
	der := selfSigned(t, tok, key)

	for _, bad := range []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a certificate")},
		{"truncated", der[:len(der)/2]},
	} {
		t.Run("refuses_"+bad.name, func(t *testing.T) {
			_, err := tok.StoreCertificate(ctx, token.CertificateRequest{DER: bad.der, ID: key.ID, Label: "bad"})
			require.ErrorIs(t, err, token.ErrInvalidInput)
			certs, err := tok.Certificates(ctx)
			require.NoError(t, err)
			assert.Empty(t, certs, "nothing stored")
		})
	}

	c, err := tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID, Label: "profile"})
	require.NoError(t, err)
	assert.Equal(t, key.ID, c.ID)
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	assert.Equal(t, der, certs[0].DER)
	assert.Equal(t, key.ID, certs[0].ID)
	assert.Equal(t, "profile", certs[0].Label)
	require.NotNil(t, certs[0].X509)
	assert.True(t, publicEqual(key.Public, certs[0].X509.PublicKey), "certificate sits next to its key")

	_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID, Label: "profile"})
	require.ErrorIs(t, err, token.ErrAlreadyExists)
}

func testDelete(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	key := anyKey(t, tok, b, "doomed", nil)
	c := storeSelfSigned(t, tok, key)
	require.NoError(t, tok.Delete(ctx, c.Object))
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs)
	require.ErrorIs(t, tok.Delete(ctx, c.Object), token.ErrNotFound)
	require.NotNil(t, findKey(t, tok, key.ID), "deleting the certificate keeps the key")
	require.NoError(t, tok.Delete(ctx, key.Object))
	assert.Nil(t, findKey(t, tok, key.ID))
}

func testFormat(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	key := anyKey(t, tok, b, "old profile", nil)
	storeSelfSigned(t, tok, key)

	require.NoError(t, tok.Format(ctx, b.SOPIN, "REFORMATTED"))
	i := info(t, tok)
	assert.Equal(t, "REFORMATTED", i.Label)
	assert.True(t, i.Initialized)
	require.ErrorIs(t, tok.Login(ctx, token.User, b.UserPIN), token.ErrPINNotInitialized)

	require.NoError(t, tok.Login(ctx, token.SO, b.SOPIN))
	require.NoError(t, tok.InitPIN(ctx, "11223344"))
	require.NoError(t, tok.Logout(ctx))
	login(t, tok, "11223344")
	keys, err := tok.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "format wipes keys")
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs, "format wipes certificates")
}

func testFormatWrongSOPIN(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	key := anyKey(t, tok, b, "precious", nil)
	storeSelfSigned(t, tok, key)
	require.NoError(t, tok.Logout(ctx))

	err := tok.Format(ctx, wrongPIN, "WIPED")
	require.ErrorIs(t, err, token.ErrPINIncorrect)
	assert.NotContains(t, err.Error(), wrongPIN)
	assert.Equal(t, b.Label, info(t, tok).Label)
	login(t, tok, b.UserPIN)
	assert.NotNil(t, findKey(t, tok, key.ID), "a refused format keeps the key")
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Len(t, certs, 1)
}

// testFormatWithUserPIN: token.FormatWithUserPIN leaves a token with the new label, no
// objects, the new user PIN, the SO PIN as it was, and nobody logged in; on a backend
// without the one-step capability it does the steps.
func testFormatWithUserPIN(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	login(t, tok, b.UserPIN)
	key := anyKey(t, tok, b, "old profile", nil)
	storeSelfSigned(t, tok, key)
	require.ErrorIs(t, tok.Login(ctx, token.User, wrongPIN), token.ErrPINIncorrect)

	require.NoError(t, token.FormatWithUserPIN(ctx, tok, b.SOPIN, "REFORMATTED", "11223344"))
	i := info(t, tok)
	assert.Equal(t, "REFORMATTED", i.Label)
	assert.True(t, i.UserPINInitialized, "the user PIN is set")
	assert.False(t, i.UserPIN.CountLow, "the user's count starts afresh")
	keys, err := tok.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "nobody is logged in, and nothing is left anyway")
	require.ErrorIs(t, tok.Login(ctx, token.User, b.UserPIN), token.ErrPINIncorrect, "the old user PIN is gone")
	login(t, tok, "11223344")
	keys, err = tok.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "format wipes keys")
	certs, err := tok.Certificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs, "format wipes certificates")
	require.NoError(t, tok.Logout(ctx))
	require.NoError(t, tok.Login(ctx, token.SO, b.SOPIN), "the SO PIN stays")
	require.NoError(t, tok.Logout(ctx))

	t.Run("a user PIN the token refuses changes nothing", func(t *testing.T) {
		err := token.FormatWithUserPIN(ctx, tok, b.SOPIN, "AGAIN", "1")
		require.ErrorIs(t, err, token.ErrPINInvalid)
		assert.Equal(t, "REFORMATTED", info(t, tok).Label)
		login(t, tok, "11223344")
	})
}

func testClosed(t *testing.T, b Backend) {
	ctx := context.Background()
	_, tok := open(t, b)
	require.NoError(t, tok.Close())
	_, err := tok.Info(ctx)
	assert.ErrorIs(t, err, token.ErrClosed)
	assert.ErrorIs(t, tok.Login(ctx, token.User, b.UserPIN), token.ErrClosed)
	_, err = tok.Keys(ctx)
	assert.ErrorIs(t, err, token.ErrClosed)
	_, err = tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA, Bits: 2048})
	assert.ErrorIs(t, err, token.ErrClosed)
}
