package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// VerifyOptions says what to trust and when.
type VerifyOptions struct {
	// Roots are the trust anchors. Nil means none: the chain check then fails, rather than
	// falling back to the system's web roots, which have nothing to do with a bank's PKI.
	Roots *x509.CertPool
	// Intermediates are extra certificates for building the path; those embedded in the
	// message are always used too.
	Intermediates *x509.CertPool
	// At is when the chain must be valid. Zero: now, as `openssl cms -verify` does, because
	// the signing time is only the signer's claim. To judge an archived signature as of when
	// it was made, pass its signing time.
	At time.Time
	// Certificates are candidates for the signer's certificate, for messages made without
	// it (`openssl cms -nocerts`).
	Certificates []*x509.Certificate
}

// Verdict is the outcome of each check on a signature, with what it says about the signer.
// A check that could not be made counts as failed, and Problems says why.
type Verdict struct {
	// SignatureValid: the signature verifies with the signer certificate's key.
	SignatureValid bool
	// ContentMatches: the document (given, or embedded when attached) is the one signed.
	ContentMatches bool
	// ChainTrusted: the signer's certificate chains to VerifyOptions.Roots at
	// VerifyOptions.At (or now).
	ChainTrusted bool
	// CertValidAtSigningTime: the signing time lies in the certificate's validity period.
	// False when the message has no signing time.
	CertValidAtSigningTime bool

	// HasSigningTime says whether the signing-time attribute is present.
	HasSigningTime bool
	SigningTime    time.Time
	// Subject and Issuer are the signer certificate's names (RFC 2253 form), Serial its
	// serial number in hex as `openssl x509 -serial` prints it. Empty when the certificate
	// was not found.
	Subject     string
	Issuer      string
	Serial      string
	Certificate *x509.Certificate
	// Chain is the verified path, signer first, when ChainTrusted.
	Chain []*x509.Certificate
	// Detached says whether the message came without the document.
	Detached bool
	// Content is the document embedded in an attached signature, from Verify; VerifyReader
	// does not hold it, and leaves Content nil.
	Content []byte
	// ContentSize is the embedded document's size in bytes, for an attached signature.
	ContentSize int64
	// Hash is the message digest the signer used.
	Hash crypto.Hash

	// Problems are readable messages, one for each thing found wrong.
	Problems []string
}

// OK reports whether every check passed and nothing was found wrong.
func (v *Verdict) OK() bool {
	return v != nil && v.SignatureValid && v.ContentMatches && v.ChainTrusted &&
		v.CertValidAtSigningTime && len(v.Problems) == 0
}

// Err returns nil when OK, else an error listing the problems.
func (v *Verdict) Err() error {
	if v.OK() {
		return nil
	}
	if v == nil || len(v.Problems) == 0 {
		return errors.New("cms: signature not verified")
	}
	return fmt.Errorf("cms: signature not verified: %s", strings.Join(v.Problems, "; "))
}

func (v *Verdict) problemf(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify checks a DER (or BER) CMS SignedData. content is the document for a detached
// signature and nil for an attached one. It returns an error only when sig cannot be read as
// one (wrapping ErrMalformed) or has a shape not handled (ErrUnsupported: several signers);
// every failed check is in the Verdict instead, so callers must test Verdict.OK. It holds sig
// and the document in memory; VerifyReader reads them as streams.
func Verify(sig []byte, content []byte, opts VerifyOptions) (*Verdict, error) {
	sd, err := parse(sig)
	if err != nil {
		return nil, err
	}
	if len(sd.signers) > 1 {
		return nil, unsupportedf("%d signers: only single-signer messages are verified", len(sd.signers))
	}
	doc := docInfo{}
	switch {
	case sd.hasContent:
		doc = docInfo{present: true, embedded: true, bytes: sd.content, size: int64(len(sd.content))}
		doc.differs = content != nil && !bytes.Equal(content, sd.content)
	case content != nil:
		doc = docInfo{present: true, bytes: content, size: int64(len(content))}
	}
	if h, ok := hashForOID(sd.signers[0].digestAlg); ok && doc.present {
		doc.digest = sum(h, doc.bytes)
	}
	return verdict(sd, doc, opts), nil
}

// docInfo is what the checks need of the document: its digest with the signer's hash, and
// its bytes when they are in memory (a signature without signed attributes covers them).
type docInfo struct {
	present  bool   // given, or embedded
	embedded bool   // the copy in an attached signature
	differs  bool   // attached, and the content given besides is not the embedded one
	digest   []byte // with the signer's digest algorithm; nil when that is unknown
	bytes    []byte // the document, unless streamed
	streamed bool   // only the digest is known
	size     int64
}

// verdict makes the checks on a parsed single-signer message.
func verdict(sd *signedData, doc docInfo, opts VerifyOptions) *Verdict {
	si := sd.signers[0]
	v := &Verdict{HasSigningTime: si.hasSigningTime, SigningTime: si.signingTime}
	v.Problems = append(v.Problems, sd.certProblems...)

	docOK := true
	what := "the given content"
	if doc.embedded {
		what = "the embedded content"
		v.Content, v.ContentSize = doc.bytes, doc.size
		if doc.differs {
			docOK = false
			v.problemf("the content given differs from the content embedded in the signature")
		}
	} else {
		v.Detached = true
		if !doc.present {
			docOK = false
			v.problemf("detached signature, but no content was given to check it against")
		}
	}

	hash, hashKnown := hashForOID(si.digestAlg)
	if hashKnown {
		v.Hash = hash
	} else {
		v.problemf("digest algorithm %s is not supported", si.digestAlg)
	}

	cert := findSigner(si, sd.certs, opts.Certificates)
	if cert != nil {
		v.Certificate = cert
		v.Subject, v.Issuer, v.Serial = cert.Subject.String(), cert.Issuer.String(), serialHex(cert.SerialNumber)
	}

	// Content: through the message-digest attribute, or, without signed attributes, as part
	// of the signature itself (below).
	if si.hasAttrs {
		contentOK := docOK
		if !si.attrType.Equal(sd.contentType) {
			contentOK = false
			if si.attrType == nil {
				v.problemf("signed attributes lack content-type")
			} else {
				v.problemf("signed content-type %s differs from the message's %s",
					contentTypeName(si.attrType), contentTypeName(sd.contentType))
			}
		}
		switch {
		case !si.hasDigest:
			contentOK = false
			v.problemf("signed attributes lack message-digest: the content is not bound to the signature")
		case !hashKnown:
			contentOK = false
		case doc.present && doc.digest == nil:
			contentOK = false
			v.problemf("%s was not hashed with %v: the message's digestAlgorithms do not list it", what, hash)
		case doc.present:
			if subtle.ConstantTimeCompare(doc.digest, si.digest) != 1 {
				contentOK = false
				v.problemf("%s does not match: its %v digest differs from the signed one", what, hash)
			}
		}
		v.ContentMatches = contentOK
	}

	// Signature.
	switch {
	case cert == nil:
		v.problemf("the signer's certificate (%s) is neither in the message nor among the given certificates", describeSID(si))
	case !hashKnown:
	default:
		alg, err := x509Algorithm(si.sigAlg, hash)
		switch {
		case err != nil:
			v.problemf("%v", err)
		case !si.hasAttrs && !doc.present:
			v.problemf("no signed attributes: the signature covers the content itself, which is missing")
		case !si.hasAttrs && doc.bytes == nil && doc.digest == nil:
			v.problemf("no signed attributes: the signature covers the content itself, which was not hashed with %v", hash)
		default:
			var err error
			switch {
			case si.hasAttrs:
				err = cert.CheckSignature(alg, si.attrsDER, si.signature)
			case !doc.streamed:
				err = cert.CheckSignature(alg, doc.bytes, si.signature)
			default:
				err = checkDigestSignature(cert, alg, hash, doc.digest, si.signature)
			}
			if err != nil {
				if si.hasAttrs {
					v.problemf("signature does not verify with the certificate's key: %v", err)
				} else {
					v.problemf("signature (over the content itself: no signed attributes) does not verify; the content or the signature was altered: %v", err)
				}
			} else {
				v.SignatureValid = true
			}
		}
		if !si.hasAttrs {
			v.ContentMatches = v.SignatureValid && docOK
		}
	}

	// Chain.
	if cert != nil {
		if opts.Roots == nil {
			v.problemf("chain not checked: no trusted roots were given")
		} else {
			at := opts.At
			if at.IsZero() {
				at = time.Now()
			}
			pool := x509.NewCertPool()
			if opts.Intermediates != nil {
				pool = opts.Intermediates.Clone()
			}
			for _, c := range sd.certs {
				pool.AddCert(c)
			}
			chains, err := cert.Verify(x509.VerifyOptions{
				Roots: opts.Roots, Intermediates: pool, CurrentTime: at,
				// Like `openssl cms -verify -purpose any`: a bank's signing certificates
				// carry no one extended key usage this package could insist on.
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err != nil {
				v.problemf("certificate does not chain to the given roots at %s: %v", at.UTC().Format(time.RFC3339), err)
			} else {
				v.ChainTrusted, v.Chain = true, chains[0]
			}
		}
	}

	// Validity at the signing time.
	switch {
	case !si.hasSigningTime:
		v.problemf("no signing-time attribute: cannot tell whether the certificate was valid when the document was signed")
	case cert == nil:
	case si.signingTime.Before(cert.NotBefore):
		v.problemf("signed at %s, before the certificate became valid (%s)",
			si.signingTime.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339))
	case si.signingTime.After(cert.NotAfter):
		v.problemf("signed at %s, after the certificate expired (%s)",
			si.signingTime.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	default:
		v.CertValidAtSigningTime = true
	}
	return v
}

// checkDigestSignature is cert.CheckSignature for a signature over content known only by its
// digest (a streamed document, signed without signed attributes). It refuses what
// crypto/x509 refuses: SHA-1 and keys other than RSA and ECDSA.
func checkDigestSignature(cert *x509.Certificate, alg x509.SignatureAlgorithm, h crypto.Hash, digest, sig []byte) error {
	if alg == x509.SHA1WithRSA || alg == x509.ECDSAWithSHA1 {
		return x509.InsecureAlgorithmError(alg)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if alg != x509.SHA256WithRSA && alg != x509.SHA384WithRSA && alg != x509.SHA512WithRSA {
			return x509.ErrUnsupportedAlgorithm
		}
		return rsa.VerifyPKCS1v15(pub, h, digest, sig)
	case *ecdsa.PublicKey:
		if alg != x509.ECDSAWithSHA256 && alg != x509.ECDSAWithSHA384 && alg != x509.ECDSAWithSHA512 {
			return x509.ErrUnsupportedAlgorithm
		}
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("x509: ECDSA verification failure")
		}
		return nil
	}
	return x509.ErrUnsupportedAlgorithm
}

func findSigner(si signerInfo, inMessage, given []*x509.Certificate) *x509.Certificate {
	for _, list := range [][]*x509.Certificate{inMessage, given} {
		for _, c := range list {
			if c == nil {
				continue
			}
			if si.skid != nil {
				if bytes.Equal(c.SubjectKeyId, si.skid) {
					return c
				}
			} else if c.SerialNumber != nil && c.SerialNumber.Cmp(si.serial) == 0 && bytes.Equal(c.RawIssuer, si.issuer) {
				return c
			}
		}
	}
	return nil
}

func describeSID(si signerInfo) string {
	if si.skid != nil {
		return fmt.Sprintf("subject key identifier %X", si.skid)
	}
	var name string
	if c, err := parseName(si.issuer); err == nil {
		name = c
	} else {
		name = "an unreadable name"
	}
	return fmt.Sprintf("issuer %q, serial %s", name, serialHex(si.serial))
}

func parseName(raw []byte) (string, error) {
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdn); err != nil || len(rest) > 0 {
		return "", errors.New("bad name")
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n.String(), nil
}

// x509Algorithm maps a SignerInfo's signatureAlgorithm and digestAlgorithm to what
// crypto/x509 checks. Both of the ways to write RSA and ECDSA are accepted: the bare key
// algorithm (rsaEncryption, as OpenSSL writes) and the combined one (sha256WithRSAEncryption,
// as smallstep/pkcs7 and Java write); a combined one must agree with digestAlgorithm.
func x509Algorithm(sigAlg asn1.ObjectIdentifier, h crypto.Hash) (x509.SignatureAlgorithm, error) {
	rsaByHash := map[crypto.Hash]x509.SignatureAlgorithm{
		crypto.SHA1: x509.SHA1WithRSA, crypto.SHA256: x509.SHA256WithRSA,
		crypto.SHA384: x509.SHA384WithRSA, crypto.SHA512: x509.SHA512WithRSA,
	}
	ecdsaByHash := map[crypto.Hash]x509.SignatureAlgorithm{
		crypto.SHA1: x509.ECDSAWithSHA1, crypto.SHA256: x509.ECDSAWithSHA256,
		crypto.SHA384: x509.ECDSAWithSHA384, crypto.SHA512: x509.ECDSAWithSHA512,
	}
	combined := []struct {
		oid  asn1.ObjectIdentifier
		hash crypto.Hash
		alg  x509.SignatureAlgorithm
	}{
		{oidSHA1WithRSA, crypto.SHA1, x509.SHA1WithRSA},
		{oidSHA256WithRSA, crypto.SHA256, x509.SHA256WithRSA},
		{oidSHA384WithRSA, crypto.SHA384, x509.SHA384WithRSA},
		{oidSHA512WithRSA, crypto.SHA512, x509.SHA512WithRSA},
		{oidECDSAWithSHA1, crypto.SHA1, x509.ECDSAWithSHA1},
		{oidECDSAWithSHA256, crypto.SHA256, x509.ECDSAWithSHA256},
		{oidECDSAWithSHA384, crypto.SHA384, x509.ECDSAWithSHA384},
		{oidECDSAWithSHA512, crypto.SHA512, x509.ECDSAWithSHA512},
	}
	switch {
	case sigAlg.Equal(oidRSAEncryption):
		if a, ok := rsaByHash[h]; ok {
			return a, nil
		}
		return 0, fmt.Errorf("signature algorithm RSA with digest %v is not supported", h)
	case sigAlg.Equal(oidECPublicKey):
		if a, ok := ecdsaByHash[h]; ok {
			return a, nil
		}
		return 0, fmt.Errorf("signature algorithm ECDSA with digest %v is not supported", h)
	case sigAlg.Equal(oidEd25519):
		return 0, errors.New("signature algorithm Ed25519 is not supported")
	case sigAlg.Equal(oidRSAPSS):
		return 0, errors.New("signature algorithm RSASSA-PSS is not supported")
	case sigAlg.Equal(oidSHA224WithRSA), sigAlg.Equal(oidECDSAWithSHA224):
		return 0, errors.New("signatures with SHA-224 are not supported")
	}
	for _, c := range combined {
		if sigAlg.Equal(c.oid) {
			if c.hash != h {
				return 0, fmt.Errorf("signature algorithm %v disagrees with digest algorithm %v", c.alg, h)
			}
			return c.alg, nil
		}
	}
	return 0, fmt.Errorf("signature algorithm %s is not supported", sigAlg)
}
