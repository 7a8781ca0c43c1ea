//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"io"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenrun/tokenrun/token"
)

// Signer returns a crypto.Signer for a private key on the token. The key handle is found
// once; each signature then costs a session from the pool and C_SignInit + C_Sign. The user
// must be logged in for the whole time the signer is used.
func (t *Token) Signer(ctx context.Context, key *token.Key) (crypto.Signer, error) {
	const op = "signer"
	if key == nil || len(key.ID) == 0 {
		return nil, newErr(op, token.ErrInvalidInput, "the key has no id")
	}
	s := &signer{t: t, id: append([]byte(nil), key.ID...), label: key.Label}
	err := t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		h, err := s.findHandle(sh)
		if err != nil {
			return err
		}
		k, err := t.describeKey(sh, h, 0, false)
		if err != nil {
			return err
		}
		if k.Public == nil {
			k.Public = key.Public
		}
		switch k.Type {
		case token.RSA, token.EC, token.Ed25519:
		default:
			return newErr(op, token.ErrUnsupported, "key %x is a %s key: this host signs with RSA, EC and Ed25519 keys only", key.ID, k.Type)
		}
		if k.Public == nil {
			return newErr(op, token.ErrNotFound, "the public half of key %x is on neither the token nor a certificate", key.ID)
		}
		s.handle.Store(uint64(h))
		s.typ, s.pub = k.Type, k.Public
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

type signer struct {
	t      *Token
	id     []byte
	label  string
	typ    token.KeyType
	pub    crypto.PublicKey
	handle atomic.Uint64 // p11.ObjectHandle; found again if the module invalidates it
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// findHandle finds the private key by CKA_ID, and by label when several share the id.
func (s *signer) findHandle(sh p11.SessionHandle) (p11.ObjectHandle, error) {
	const op = "signer"
	hs, err := s.t.find(sh, attr(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), attr(p11.CKA_ID, s.id))
	if err != nil {
		return 0, err
	}
	if len(hs) > 1 && s.label != "" {
		hs, err = s.t.find(sh, attr(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), attr(p11.CKA_ID, s.id), attr(p11.CKA_LABEL, s.label))
		if err != nil {
			return 0, err
		}
	}
	switch len(hs) {
	case 0:
		return 0, newErr(op, token.ErrNotFound, "no private key with id %x on token %s (private keys are hidden until the user logs in)", s.id, s.t.name())
	case 1:
		return hs[0], nil
	}
	return 0, newErr(op, token.ErrInvalidInput, "%d private keys have id %x on token %s", len(hs), s.id, s.t.name())
}

// Sign signs digest (the message itself for Ed25519). RSA signs PKCS#1 v1.5 through raw
// CKM_RSA_PKCS with the DigestInfo built here, because openCryptoki lacks the hash-and-sign
// mechanisms; RSA-PSS when opts is *rsa.PSSOptions; ECDSA through raw CKM_ECDSA, the r||s
// result re-encoded as ASN.1 for crypto/ecdsa; Ed25519 through CKM_EDDSA.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	const op = "sign"
	mech, input, err := s.prepare(digest, opts)
	if err != nil {
		return nil, err
	}
	var sig []byte
	err = s.t.withSession(context.Background(), op, func(sh p11.SessionHandle) error {
		h := p11.ObjectHandle(s.handle.Load())
		err := s.t.ctx.SignInit(sh, mech, h)
		if isCode(err, p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID) {
			// Some modules renumber objects (openCryptoki reloads private objects at login).
			if h, err = s.findHandle(sh); err != nil {
				return err
			}
			s.handle.Store(uint64(h))
			err = s.t.ctx.SignInit(sh, mech, h)
		}
		if err != nil {
			return err
		}
		sig, err = s.t.ctx.Sign(sh, input)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.typ == token.EC {
		return ecdsaDER(sig)
	}
	return sig, nil
}

// Mechanisms without parameters are built once: Sign is on the hot path.
var (
	mechRSAPKCS = []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS, nil)}
	mechECDSA   = []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}
	mechEdDSA   = []*p11.Mechanism{p11.NewMechanism(ckmEdDSA, nil)}
)

func (s *signer) prepare(digest []byte, opts crypto.SignerOpts) ([]*p11.Mechanism, []byte, error) {
	const op = "sign"
	if opts == nil {
		opts = crypto.Hash(0)
	}
	h := opts.HashFunc()
	switch s.typ {
	case token.RSA:
		if h != 0 && len(digest) != h.Size() {
			return nil, nil, newErr(op, token.ErrInvalidInput, "digest is %d bytes, %s needs %d", len(digest), h, h.Size())
		}
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			mech, err := s.pssMechanism(h, pss)
			return mech, digest, err
		}
		if h == 0 {
			return mechRSAPKCS, digest, nil
		}
		prefix, ok := digestInfoPrefix[h]
		if !ok {
			return nil, nil, newErr(op, token.ErrUnsupported, "RSA PKCS#1 v1.5 with %s", h)
		}
		return mechRSAPKCS, append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...), nil
	case token.EC:
		if h != 0 && len(digest) != h.Size() {
			return nil, nil, newErr(op, token.ErrInvalidInput, "digest is %d bytes, %s needs %d", len(digest), h, h.Size())
		}
		return mechECDSA, digest, nil
	case token.Ed25519:
		if h != 0 {
			return nil, nil, newErr(op, token.ErrUnsupported, "Ed25519ph (pre-hashed Ed25519 with %s): sign the message itself with crypto.Hash(0)", h)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return nil, nil, newErr(op, token.ErrUnsupported, "Ed25519 with a context (Ed25519ctx)")
		}
		return mechEdDSA, digest, nil
	}
	return nil, nil, newErr(op, token.ErrUnsupported, "signing with %s keys", s.typ)
}

var pssHashes = map[crypto.Hash]struct{ mech, mgf uint }{
	crypto.SHA1:   {p11.CKM_SHA_1, p11.CKG_MGF1_SHA1},
	crypto.SHA224: {p11.CKM_SHA224, p11.CKG_MGF1_SHA224},
	crypto.SHA256: {p11.CKM_SHA256, p11.CKG_MGF1_SHA256},
	crypto.SHA384: {p11.CKM_SHA384, p11.CKG_MGF1_SHA384},
	crypto.SHA512: {p11.CKM_SHA512, p11.CKG_MGF1_SHA512},
}

// pssMechanism builds CKM_RSA_PKCS_PSS parameters with crypto/rsa's salt-length rules, so
// that a signature verifies where one made by rsa.SignPSS would.
func (s *signer) pssMechanism(h crypto.Hash, opts *rsa.PSSOptions) ([]*p11.Mechanism, error) {
	const op = "sign"
	ph, ok := pssHashes[h]
	if !ok {
		return nil, newErr(op, token.ErrUnsupported, "RSA-PSS with %s", h)
	}
	pub, ok := s.pub.(*rsa.PublicKey)
	if !ok {
		return nil, newErr(op, token.ErrUnsupported, "RSA-PSS without the public key")
	}
	maxSalt := (pub.N.BitLen()-1+7)/8 - h.Size() - 2
	salt := opts.SaltLength
	switch salt {
	case rsa.PSSSaltLengthAuto:
		salt = maxSalt
	case rsa.PSSSaltLengthEqualsHash:
		salt = h.Size()
	}
	if salt < 0 || salt > maxSalt {
		return nil, newErr(op, token.ErrInvalidInput, "PSS salt length %d: at most %d with this key and hash", opts.SaltLength, maxSalt)
	}
	return []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(ph.mech, ph.mgf, uint(salt)))}, nil
}

// DigestInfo prefixes (RFC 8017 §9.2 note 1), as crypto/rsa uses them.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// ecdsaDER turns PKCS#11's r||s into the ASN.1 SEQUENCE { r INTEGER, s INTEGER } that
// crypto/ecdsa and X.509 use. It is written out by hand because it runs on every signature
// and encoding/asn1's reflection costs several microseconds there.
func ecdsaDER(sig []byte) ([]byte, error) {
	if len(sig) == 0 || len(sig)%2 != 0 || len(sig) > 256 {
		return nil, &token.Error{Op: "sign", Err: fmt.Errorf("module returned a %d-byte ECDSA signature, not r||s", len(sig)), RetriesLeft: -1}
	}
	n := len(sig) / 2
	r, s := derInteger(sig[:n]), derInteger(sig[n:])
	body := 2 + len(r) + 2 + len(s) // each integer is at most 129 bytes: short-form lengths
	out := make([]byte, 0, 3+body)
	out = append(out, 0x30)
	if body >= 0x80 {
		out = append(out, 0x81)
	}
	out = append(out, byte(body), 0x02, byte(len(r)))
	out = append(out, r...)
	out = append(out, 0x02, byte(len(s)))
	return append(out, s...), nil
}

// derInteger is the content of a DER INTEGER holding the unsigned big-endian v: no
// superfluous leading zeros, and a zero byte in front when the top bit is set.
func derInteger(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > 0 && v[0]&0x80 != 0 {
		return append([]byte{0}, v...)
	}
	if len(v) == 0 {
		return []byte{0}
	}
	return v
}
