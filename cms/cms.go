// Package cms owns CMS SignedData (RFC 5652): signing documents such as payment orders with a
// key that stays on a token (any crypto.Signer), and checking such signatures with a verdict
// per check. It knows nothing of Lua or of PKCS#11.
//
// The encoder and parser are our own, built on cryptobyte, rather than smallstep/pkcs7: that
// library always stamps time.Now() as the signing time, so a caller cannot set it; algorithms
// cannot be added to it (GOST and RSA-PSS will be needed); its parser drops the SignedData
// decode error, so malformed input cannot be told apart from an empty message; and its
// verifier stops at the first failed check. OpenSSL, and smallstep/pkcs7 itself, check our
// output in the tests.
package cms

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Conditions callers branch on with errors.Is.
var (
	// ErrUnsupported: a key type, algorithm or message shape this package does not handle.
	ErrUnsupported = errors.New("cms: unsupported")
	// ErrKeyMismatch: the signer's public key is not the one in the certificate.
	ErrKeyMismatch = errors.New("cms: signer key does not match the certificate")
	// ErrMalformed: the input to Verify is not a well-formed CMS SignedData.
	ErrMalformed = errors.New("cms: malformed signature")
)

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidDigestedData  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 5}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidAuthData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 2}

	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAPSS        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidSHA224WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 14}

	oidECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECDSAWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA224 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}

	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// digestOIDs lists the digests a signature may use; SHA-1 and SHA-224 are here only so that a
// verdict can name them (crypto/x509 refuses SHA-1 signatures).
var digestOIDs = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{oidSHA256, crypto.SHA256},
	{oidSHA384, crypto.SHA384},
	{oidSHA512, crypto.SHA512},
	{oidSHA224, crypto.SHA224},
	{oidSHA1, crypto.SHA1},
}

func hashForOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, d := range digestOIDs {
		if d.oid.Equal(oid) {
			// Available is true for all of them (crypto/x509 links them in); checked so that
			// Hash.New can never panic.
			return d.hash, d.hash.Available()
		}
	}
	return 0, false
}

func oidForHash(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	for _, d := range digestOIDs {
		if d.hash == h {
			return d.oid, true
		}
	}
	return nil, false
}

// contentTypeName gives well-known content types a name, so that "not SignedData" errors say
// what the input is instead.
func contentTypeName(oid asn1.ObjectIdentifier) string {
	switch {
	case oid.Equal(oidData):
		return "data"
	case oid.Equal(oidSignedData):
		return "signed-data"
	case oid.Equal(oidEnvelopedData):
		return "enveloped-data"
	case oid.Equal(oidDigestedData):
		return "digested-data"
	case oid.Equal(oidEncryptedData):
		return "encrypted-data"
	case oid.Equal(oidAuthData):
		return "authenticated-data"
	}
	return oid.String()
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
