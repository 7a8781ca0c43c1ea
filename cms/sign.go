package cms

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
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignOptions configures Sign and NewSigner. The zero value gives an attached signature with
// the current time and a digest chosen by the key.
type SignOptions struct {
	// Detached leaves the document out of the signature; the verifier then needs both.
	Detached bool
	// Time is the signing-time attribute. Zero: the time each signature is made. It is the
	// signer's claim (no timestamp authority is involved), recorded to the second.
	Time time.Time
	// Chain is more certificates to embed after the signer's own, usually the intermediates,
	// so that a verifier holding only the root can build the path.
	Chain []*x509.Certificate
	// Hash is the message digest. Zero: SHA-256, except SHA-384 for P-384 keys and SHA-512
	// for P-521 keys. SHA-256, SHA-384 and SHA-512 are accepted.
	Hash crypto.Hash
}

// Sign returns a DER CMS SignedData over data, signed with signer, whose public key must be
// cert's. For many documents use NewSigner once and Signer.Sign for each.
func Sign(data []byte, signer crypto.Signer, cert *x509.Certificate, opts SignOptions) ([]byte, error) {
	s, err := NewSigner(signer, cert, opts)
	if err != nil {
		return nil, err
	}
	return s.Sign(data)
}

type keyAlg int

const (
	algRSA keyAlg = iota + 1
	algECDSA
)

// Signer signs many documents with one key and certificate. Everything that does not depend
// on the document (key check, identifiers, the certificate set) is done once by NewSigner,
// so per document the cost is one digest of the document, a few hundred bytes of DER and one
// call to the key. A Signer is safe for concurrent use when its crypto.Signer is.
type Signer struct {
	key      crypto.Signer
	cert     *x509.Certificate
	alg      keyAlg
	hash     crypto.Hash
	detached bool
	time     time.Time

	digestAlg    []byte // AlgorithmIdentifier, DER
	digestAlgSet []byte // SET OF with digestAlg, DER
	sigAlg       []byte // AlgorithmIdentifier, DER
	sid          []byte // IssuerAndSerialNumber, DER
	certSet      []byte // the certificates as [0] IMPLICIT SET OF, DER

	// omitSigningTime lets tests make the kind of signature other tools make without the
	// attribute; nothing outside the tests sets it.
	omitSigningTime bool
}

// NewSigner checks that signer's public key is cert's and that this package can sign with it,
// and prepares for signing documents with opts.
func NewSigner(signer crypto.Signer, cert *x509.Certificate, opts SignOptions) (*Signer, error) {
	if signer == nil {
		return nil, errors.New("cms: no signer given")
	}
	if cert == nil {
		return nil, errors.New("cms: no certificate given")
	}
	if len(cert.Raw) == 0 || cert.SerialNumber == nil {
		// The message carries the certificate's own bytes; a template has none.
		return nil, errors.New("cms: the certificate has no DER encoding: parse it with x509.ParseCertificate")
	}
	pub := signer.Public()
	if !samePublicKey(pub, cert.PublicKey) {
		return nil, fmt.Errorf("%w: the signer holds %s, the certificate %s (serial %s) holds %s",
			ErrKeyMismatch, describeKey(pub), quoteSubject(cert), serialHex(cert.SerialNumber), describeKey(cert.PublicKey))
	}
	alg, defHash, err := classifyKey(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	h := opts.Hash
	if h == 0 {
		h = defHash
	}
	switch h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, unsupportedf("digest %v (use SHA-256, SHA-384 or SHA-512)", h)
	}

	s := &Signer{key: signer, cert: cert, alg: alg, hash: h, detached: opts.Detached, time: opts.Time}
	hashOID, _ := oidForHash(h)
	s.digestAlg = mustDER(func(b *cryptobyte.Builder) {
		// Parameters absent for SHA-2, as RFC 5754 prefers and OpenSSL writes.
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(hashOID) })
	})
	s.sigAlg = mustDER(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			switch alg {
			case algRSA:
				// rsaEncryption with NULL parameters: RFC 3370's choice for CMS and what
				// OpenSSL writes; the digest is named by digestAlgorithm.
				b.AddASN1ObjectIdentifier(oidRSAEncryption)
				b.AddASN1NULL()
			case algECDSA:
				switch h {
				case crypto.SHA256:
					b.AddASN1ObjectIdentifier(oidECDSAWithSHA256)
				case crypto.SHA384:
					b.AddASN1ObjectIdentifier(oidECDSAWithSHA384)
				default:
					b.AddASN1ObjectIdentifier(oidECDSAWithSHA512)
				}
			}
		})
	})
	s.sid = mustDER(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			// The issuer exactly as encoded in the certificate: verifiers compare bytes.
			b.AddBytes(cert.RawIssuer)
			b.AddASN1BigInt(cert.SerialNumber)
		})
	})
	certs := append([]byte(nil), cert.Raw...)
	for i, c := range opts.Chain {
		if c == nil {
			return nil, fmt.Errorf("cms: chain certificate %d is nil", i)
		}
		if bytes.Equal(c.Raw, cert.Raw) {
			continue
		}
		certs = append(certs, c.Raw...)
	}
	// Kept in the order given, signer first, rather than sorted as strict DER would have
	// the SET OF: some verifiers take the first certificate as the signer's.
	s.certSet = appendTLV(nil, 0xa0, certs)
	s.digestAlgSet = appendTLV(nil, 0x31, s.digestAlg)
	return s, nil
}

// Certificate returns the signer's certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Hash returns the message digest the signatures use.
func (s *Signer) Hash() crypto.Hash { return s.hash }

// maxDocument bounds what Sign accepts: the encoder writes lengths of at most four octets,
// and a payment order is kilobytes.
const maxDocument = 1 << 31

// Sign returns a DER CMS SignedData over data.
func (s *Signer) Sign(data []byte) ([]byte, error) {
	if len(data) > maxDocument {
		return nil, fmt.Errorf("cms: document of %d bytes is larger than the %d this package signs", len(data), maxDocument)
	}
	sig, attrs, err := s.signSum(sum(s.hash, data))
	if err != nil {
		return nil, err
	}
	return s.assemble(data, attrs, sig), nil
}

// SignDigest returns a detached DER CMS SignedData for a document known only by its digest
// under the Signer's hash (a web page that hashed the document itself, NCALayer's
// "digested"): the signature is the one Sign would make detached over that document. The
// Signer must be detached, since there is no content to attach.
func (s *Signer) SignDigest(digest []byte) ([]byte, error) {
	if !s.detached {
		return nil, errors.New("cms: a signature over a digest is always detached: the document is not there to attach")
	}
	if len(digest) != s.hash.Size() {
		return nil, fmt.Errorf("cms: the digest is %d bytes, and this signer's %v digest is %d", len(digest), s.hash, s.hash.Size())
	}
	sig, attrs, err := s.signSum(digest)
	if err != nil {
		return nil, err
	}
	return s.assemble(nil, attrs, sig), nil
}

// signSum makes the signed attributes over a document's digest and signs them.
func (s *Signer) signSum(digest []byte) (sig, attrs []byte, err error) {
	t := s.time
	if t.IsZero() {
		t = time.Now()
	}
	attrs, err = s.signedAttrs(digest, t)
	if err != nil {
		return nil, nil, err
	}
	// The signature covers the attributes DER-encoded with the SET OF tag (RFC 5652, 5.4),
	// not the [0] IMPLICIT tag they carry in the message.
	sig, err = s.key.Sign(rand.Reader, sum(s.hash, appendTLV(nil, 0x31, attrs)), s.hash)
	if err != nil {
		return nil, nil, fmt.Errorf("cms: signing with the key: %w", err)
	}
	if s.alg == algECDSA && !isECDSASigValue(sig) {
		// A PKCS#11 wrapper that forgets to convert the token's r||s would otherwise give
		// signatures nobody can verify.
		return nil, nil, fmt.Errorf("cms: the signer returned an ECDSA signature that is not ASN.1 DER (%d bytes); crypto.Signer must return ECDSA-Sig-Value", len(sig))
	}
	return sig, attrs, nil
}

// assemble writes the ContentInfo in one pass into one buffer: lengths are worked out first,
// so that nothing is copied again to fix up headers (the whole message is tens of
// microseconds otherwise, comparable to an ECDSA signature itself).
func (s *Signer) assemble(data, attrs, sig []byte) []byte {
	eci := len(derOIDData)
	if !s.detached {
		eci += tlvLen(tlvLen(len(data)))
	}
	si := len(derVersion1) + len(s.sid) + len(s.digestAlg) + tlvLen(len(attrs)) + len(s.sigAlg) + tlvLen(len(sig))
	sd := len(derVersion1) + len(s.digestAlgSet) + tlvLen(eci) + len(s.certSet) + tlvLen(tlvLen(si))
	ci := len(derOIDSignedData) + tlvLen(tlvLen(sd))

	out := make([]byte, 0, tlvLen(ci))
	out = appendHeader(out, 0x30, ci) // ContentInfo
	out = append(out, derOIDSignedData...)
	out = appendHeader(out, 0xa0, tlvLen(sd))
	out = appendHeader(out, 0x30, sd) // SignedData
	out = append(out, derVersion1...) // v1: issuerAndSerialNumber, id-data, certificates only
	out = append(out, s.digestAlgSet...)
	out = appendHeader(out, 0x30, eci) // EncapsulatedContentInfo
	out = append(out, derOIDData...)
	if !s.detached {
		out = appendHeader(out, 0xa0, tlvLen(len(data)))
		out = appendTLV(out, 0x04, data)
	}
	out = append(out, s.certSet...)
	out = appendHeader(out, 0x31, tlvLen(si))
	out = appendHeader(out, 0x30, si) // SignerInfo
	out = append(out, derVersion1...)
	out = append(out, s.sid...)
	out = append(out, s.digestAlg...)
	out = appendTLV(out, 0xa0, attrs)
	out = append(out, s.sigAlg...)
	return appendTLV(out, 0x04, sig)
}

var (
	derVersion1      = []byte{0x02, 0x01, 0x01}
	derOIDData       = mustDER(func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
	derOIDSignedData = mustDER(func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSignedData) })
	derOIDSignTime   = mustDER(func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidAttrSigningTime) })
	derOIDMsgDigest  = mustDER(func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidAttrMessageDigest) })
)

// sum hashes with the fixed-size functions, which need no hash.Hash per call.
func sum(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(b)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(b)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(b)
		return d[:]
	}
	hh := h.New()
	hh.Write(b)
	return hh.Sum(nil)
}

// BatchError says which document of a batch failed. The signatures returned with it, for the
// documents before Index, are good.
type BatchError struct {
	Index int // 0-based
	Err   error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("cms: batch document %d: %v", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// SignBatch signs each document in turn and stops at the first failure or when ctx is done;
// it returns the signatures made so far with a *BatchError, so a caller whose token was pulled
// out knows which documents are done. ctx is checked between documents: a call already in the
// key cannot be interrupted.
func (s *Signer) SignBatch(ctx context.Context, docs [][]byte) ([][]byte, error) {
	sigs := make([][]byte, 0, len(docs))
	for i, d := range docs {
		if err := ctx.Err(); err != nil {
			return sigs, &BatchError{Index: i, Err: err}
		}
		sig, err := s.Sign(d)
		if err != nil {
			return sigs, &BatchError{Index: i, Err: err}
		}
		sigs = append(sigs, sig)
	}
	return sigs, nil
}

// signedAttrs returns the contents of the SignedAttributes SET OF, in DER order.
func (s *Signer) signedAttrs(digest []byte, t time.Time) ([]byte, error) {
	list := make([][]byte, 0, 3)
	list = append(list, contentTypeAttr)
	if !s.omitSigningTime {
		t = t.UTC()
		var tm []byte
		switch y := t.Year(); {
		case y >= 1950 && y < 2050: // RFC 5652, 11.3: UTCTime for these years
			tm = appendTLV(nil, 0x17, t.AppendFormat(nil, "060102150405Z"))
		case y >= 0 && y <= 9999:
			tm = appendTLV(nil, 0x18, t.AppendFormat(nil, "20060102150405Z"))
		default:
			return nil, fmt.Errorf("cms: signing time %v cannot be encoded", t)
		}
		list = append(list, appendTLV(nil, 0x30, append(bytes.Clone(derOIDSignTime), appendTLV(nil, 0x31, tm)...)))
	}
	md := appendTLV(nil, 0x31, appendTLV(nil, 0x04, digest))
	list = append(list, appendTLV(nil, 0x30, append(bytes.Clone(derOIDMsgDigest), md...)))
	// DER orders a SET OF by the encodings of its elements.
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && bytes.Compare(list[j-1], list[j]) > 0; j-- {
			list[j-1], list[j] = list[j], list[j-1]
		}
	}
	return bytes.Join(list, nil), nil
}

var contentTypeAttr = mustDER(func(b *cryptobyte.Builder) {
	addAttr(b, oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
})

func addAttr(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, value cryptobyte.BuilderContinuation) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.SET, value)
	})
}

func der(f cryptobyte.BuilderContinuation) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

// mustDER is for encodings whose inputs are fixed or already validated, where an error
// would be a bug in this package.
func mustDER(f cryptobyte.BuilderContinuation) []byte {
	out, err := der(f)
	if err != nil {
		panic("cms: internal encoding error: " + err.Error())
	}
	return out
}

func contextTag(n uint8) cbasn1.Tag { return cbasn1.Tag(n).ContextSpecific().Constructed() }

// appendTLV appends a DER element with a one-byte tag.
func appendTLV(dst []byte, tag byte, content []byte) []byte {
	return append(appendHeader(dst, tag, len(content)), content...)
}

func appendHeader(dst []byte, tag byte, n int) []byte {
	return appendLength(append(dst, tag), uint64(n))
}

// tlvLen is the size of a DER element with a one-byte tag and n bytes of content.
func tlvLen(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 1<<8:
		return 3 + n
	case n < 1<<16:
		return 4 + n
	case n < 1<<24:
		return 5 + n
	}
	return 6 + n
}

// classifyKey says how this package signs with a key and which digest it uses by default.
func classifyKey(pub crypto.PublicKey) (keyAlg, crypto.Hash, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return algRSA, crypto.SHA256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return algECDSA, crypto.SHA256, nil
		case elliptic.P384():
			return algECDSA, crypto.SHA384, nil
		case elliptic.P521():
			return algECDSA, crypto.SHA512, nil
		}
		return 0, 0, unsupportedf("key type %s", describeKey(pub))
	case ed25519.PublicKey:
		// RFC 8419 defines it, but OpenSSL 3.0 (Debian bookworm's) fails to verify such
		// signatures ("eddsa_digest_signverify_init:invalid digest") and no other peer here
		// can check them: signatures nobody can verify are worse than a clear refusal.
		return 0, 0, unsupportedf("key type Ed25519: CMS signatures with Ed25519 (RFC 8419) are not made, since OpenSSL 3.0 cannot verify them; use RSA or ECDSA")
	}
	return 0, 0, unsupportedf("key type %s (RSA and ECDSA P-256/P-384/P-521 are supported)", describeKey(pub))
}

func samePublicKey(a, b crypto.PublicKey) bool {
	if a == nil || b == nil {
		return false
	}
	if e, ok := a.(interface{ Equal(crypto.PublicKey) bool }); ok {
		return e.Equal(b)
	}
	// Keys of types outside the standard library: compare their encodings.
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}

func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case nil:
		return "no public key"
	case *rsa.PublicKey:
		if k.N == nil {
			return "an RSA key"
		}
		return fmt.Sprintf("an RSA-%d key", k.N.BitLen())
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return "an ECDSA key"
		}
		return "an ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a key of type %T", pub)
}

func quoteSubject(c *x509.Certificate) string {
	return fmt.Sprintf("%q", c.Subject.String())
}

// serialHex writes a serial as `openssl x509 -serial` does, the form people compare.
func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	if n.Sign() < 0 {
		return "-" + fmt.Sprintf("%X", new(big.Int).Neg(n))
	}
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// isECDSASigValue reports whether sig is SEQUENCE { INTEGER r, INTEGER s } and nothing more.
func isECDSASigValue(sig []byte) bool {
	in := cryptobyte.String(sig)
	var seq cryptobyte.String
	r, s := new(big.Int), new(big.Int)
	return in.ReadASN1(&seq, cbasn1.SEQUENCE) && in.Empty() &&
		seq.ReadASN1Integer(r) && seq.ReadASN1Integer(s) && seq.Empty() &&
		r.Sign() > 0 && s.Sign() > 0
}
