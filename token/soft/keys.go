package soft

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"slices"

	"github.com/tokenrun/tokenrun/token"
)

// keySpec is a KeyRequest checked and with its defaults filled in.
type keySpec struct {
	typ   token.KeyType
	bits  int
	curve string
	ec    elliptic.Curve
}

// specFor checks what is asked for before anything touches the token. RSA defaults to 2048
// bits and EC to P-256.
func specFor(op string, req token.KeyRequest) (keySpec, error) {
	unsupported := func(format string, args ...any) error {
		return &token.Error{Op: op, RetriesLeft: -1, Err: fmt.Errorf(format+": %w", append(args, token.ErrUnsupported)...)}
	}
	if req.Type == token.Vendor || req.Vendor != nil {
		return keySpec{}, &token.Error{Op: op, Code: token.CKR_MECHANISM_INVALID, RetriesLeft: -1,
			Err: fmt.Errorf("the software token has no vendor mechanisms: %w", token.ErrUnsupported)}
	}
	switch req.Type {
	case token.RSA:
		bits := req.Bits
		if bits == 0 {
			bits = 2048
		}
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return keySpec{}, unsupported("RSA keys of %d bits (the software token makes 2048, 3072 or 4096)", bits)
		}
		return keySpec{typ: token.RSA, bits: bits}, nil
	case token.EC:
		switch req.Curve {
		case "", "P-256":
			return keySpec{typ: token.EC, bits: 256, curve: "P-256", ec: elliptic.P256()}, nil
		case "P-384":
			return keySpec{typ: token.EC, bits: 384, curve: "P-384", ec: elliptic.P384()}, nil
		}
		return keySpec{}, unsupported("EC curve %q (the software token makes P-256 or P-384)", req.Curve)
	case token.Ed25519:
		return keySpec{typ: token.Ed25519, bits: 256}, nil
	case "":
		return keySpec{}, &token.Error{Op: op, Code: token.CKR_ARGUMENTS_BAD, RetriesLeft: -1,
			Err: fmt.Errorf("no key type given (want %s, %s or %s): %w", token.RSA, token.EC, token.Ed25519, token.ErrInvalidInput)}
	}
	return keySpec{}, &token.Error{Op: op, Code: token.CKR_MECHANISM_INVALID, RetriesLeft: -1,
		Err: fmt.Errorf("key type %q (the software token makes %s, %s or %s): %w", req.Type, token.RSA, token.EC, token.Ed25519, token.ErrUnsupported)}
}

func (k keySpec) generate() (crypto.Signer, error) {
	switch k.typ {
	case token.RSA:
		return rsa.GenerateKey(rand.Reader, k.bits)
	case token.EC:
		return ecdsa.GenerateKey(k.ec, rand.Reader)
	default:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
}

// GenerateKey makes a key pair on the token; the user must be logged in. The private key is
// sealed under the master key before it is written and no call returns it. An id already
// used by a key pair is token.ErrAlreadyExists. The Key's Bits is the modulus size for RSA,
// the curve size for EC and 256 for Ed25519; Curve is set for EC only.
func (t *tok) GenerateKey(ctx context.Context, req token.KeyRequest) (*token.Key, error) {
	const op = "generate key"
	spec, err := specFor(op, req)
	if err != nil {
		return nil, err
	}
	id := slices.Clone(req.ID)
	if len(id) == 0 {
		id = randomBytes(20)
	}
	// Checked before generating too, so that seconds of RSA work are not spent on a token
	// that will refuse the key.
	if err := t.do(ctx, op, false, func(tx *txn) error { return tx.canAddKey(op, id) }); err != nil {
		return nil, err
	}
	// Generated outside the lock: other operations (and processes) go on meanwhile.
	priv, err := spec.generate()
	if err != nil {
		return nil, wrapErr(op, fmt.Errorf("generate %s key: %w", spec.typ, err))
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, wrapErr(op, fmt.Errorf("encode private key: %w", err))
	}
	defer wipe(der)
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, wrapErr(op, fmt.Errorf("encode public key: %w", err))
	}
	var key *token.Key
	err = t.do(ctx, op, true, func(tx *txn) error {
		// Again under the exclusive lock: the first check was only a shortcut.
		if err := tx.canAddKey(op, id); err != nil {
			return err
		}
		rec := keyRecord{ID: id, Label: req.Label, Type: spec.typ, Bits: spec.bits, Curve: spec.curve, Public: pub}
		var err error
		if rec.Private, err = seal(tx.sess.master, der, keyAAD(id, pub)); err != nil {
			return err
		}
		if key, err = tx.keyFor(&rec); err != nil {
			return err
		}
		tx.st.Keys = append(tx.st.Keys, rec)
		return tx.save()
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}

func (tx *txn) canAddKey(op string, id []byte) error {
	if !tx.sess.user() {
		return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
	}
	if tx.findKey(id) != nil {
		return fmt.Errorf("a key pair with id %x is already on the token: %w", id, token.ErrAlreadyExists)
	}
	return nil
}

func (tx *txn) findKey(id []byte) *keyRecord {
	for i := range tx.st.Keys {
		if bytes.Equal(tx.st.Keys[i].ID, id) {
			return &tx.st.Keys[i]
		}
	}
	return nil
}

// privateKey opens a key for a signature. It never leaves this package; the session keeps
// it until logout. A sealed form that changed (a key deleted and made again under the same
// id) hashes differently and is opened afresh.
func (tx *txn) privateKey(rec *keyRecord) (crypto.Signer, error) {
	h := sha256.New()
	h.Write(rec.Private.Nonce)
	h.Write(rec.Private.Data)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if k, ok := tx.sess.keys[sum]; ok {
		return k, nil
	}
	k, err := tx.openKey(rec)
	if err != nil {
		return nil, err
	}
	if tx.sess.keys == nil {
		tx.sess.keys = map[[sha256.Size]byte]crypto.Signer{}
	}
	tx.sess.keys[sum] = k
	return k, nil
}

func (tx *txn) openKey(rec *keyRecord) (crypto.Signer, error) {
	der, err := unseal(tx.sess.master, rec.Private, keyAAD(rec.ID, rec.Public))
	if err != nil {
		return nil, tx.store.corrupt(fmt.Errorf("private key %x does not open: %w", rec.ID, err))
	}
	defer wipe(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, tx.store.corrupt(fmt.Errorf("private key %x: %w", rec.ID, err))
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, tx.store.corrupt(fmt.Errorf("private key %x: %T cannot sign", rec.ID, k))
	}
	return s, nil
}

// Signer returns a crypto.Signer for key, found by id (and checked against key.Public when
// given). The user must be logged in now and at each signature.
func (t *tok) Signer(ctx context.Context, key *token.Key) (crypto.Signer, error) {
	const op = "signer"
	if key == nil || len(key.ID) == 0 {
		return nil, &token.Error{Op: op, Code: token.CKR_ARGUMENTS_BAD, RetriesLeft: -1,
			Err: fmt.Errorf("no key id given: %w", token.ErrInvalidInput)}
	}
	var s *signer
	err := t.do(ctx, op, false, func(tx *txn) error {
		if !tx.sess.user() {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		rec := tx.findKey(key.ID)
		if rec == nil {
			return notFoundKey(op, key.ID)
		}
		k, err := tx.keyFor(rec)
		if err != nil {
			return err
		}
		if eq, ok := key.Public.(interface{ Equal(crypto.PublicKey) bool }); ok && !eq.Equal(k.Public) {
			return fmt.Errorf("the key with id %x on the token is another key than the one given: %w", key.ID, token.ErrNotFound)
		}
		s = &signer{t: t, id: k.ID, pubDER: slices.Clone(rec.Public), pub: k.Public}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func notFoundKey(op string, id []byte) error {
	return &token.Error{Op: op, Code: token.CKR_OBJECT_HANDLE_INVALID, RetriesLeft: -1,
		Err: fmt.Errorf("no key pair with id %x: %w", id, token.ErrNotFound)}
}

// signer signs with a token key. It holds the key's id and public key only: the private key
// is opened from the token state for each signature, so a logout, a deleted key or a format
// (in any process) takes effect at once.
type signer struct {
	t      *tok
	id     []byte
	pubDER []byte
	pub    crypto.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a digest as crypto.Signer says: RSA PKCS#1 v1.5, or PSS when opts is
// *rsa.PSSOptions (PSSSaltLengthAuto means a salt as long as the hash, which is what PKCS#11
// tokens use); ECDSA in ASN.1 form; Ed25519 over the message itself (opts.HashFunc() 0). rand
// is ignored: like a hardware token, this one draws its own randomness.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	const op = "sign"
	if opts == nil {
		opts = crypto.Hash(0)
	}
	var sig []byte
	err := s.t.do(context.Background(), op, false, func(tx *txn) error {
		if !tx.sess.user() {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		rec := tx.findKey(s.id)
		if rec == nil || !bytes.Equal(rec.Public, s.pubDER) {
			return notFoundKey(op, s.id)
		}
		priv, err := tx.privateKey(rec)
		if err != nil {
			return err
		}
		sig, err = signDigest(op, priv, digest, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sig, nil
}

func signDigest(op string, priv crypto.Signer, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	hash := opts.HashFunc()
	if hash != 0 && len(digest) != hash.Size() {
		return nil, &token.Error{Op: op, Code: token.CKR_ARGUMENTS_BAD, RetriesLeft: -1,
			Err: fmt.Errorf("digest is %d bytes, %s needs %d: %w", len(digest), hash, hash.Size(), token.ErrInvalidInput)}
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			o := *pss
			if o.SaltLength == rsa.PSSSaltLengthAuto {
				o.SaltLength = rsa.PSSSaltLengthEqualsHash
			}
			return rsa.SignPSS(rand.Reader, k, hash, digest, &o)
		}
		return rsa.SignPKCS1v15(rand.Reader, k, hash, digest)
	case *ecdsa.PrivateKey:
		return ecdsa.SignASN1(rand.Reader, k, digest)
	case ed25519.PrivateKey:
		if hash != 0 {
			return nil, &token.Error{Op: op, Code: token.CKR_MECHANISM_INVALID, RetriesLeft: -1,
				Err: fmt.Errorf("an Ed25519 key signs the message itself (hash 0), not a %s digest: %w", hash, token.ErrUnsupported)}
		}
		return k.Sign(nil, digest, opts)
	}
	return nil, fmt.Errorf("cannot sign with a %T", priv)
}
