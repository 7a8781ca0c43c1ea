package cms

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// signedData is what Verify needs from a CMS SignedData.
type signedData struct {
	contentType  asn1.ObjectIdentifier
	content      []byte
	hasContent   bool
	certs        []*x509.Certificate
	certProblems []string
	signers      []signerInfo
}

type signerInfo struct {
	issuer []byte   // raw Name, when the signer is named by issuer and serial
	serial *big.Int // with issuer
	skid   []byte   // subject key identifier, the other way to name the signer

	digestAlg asn1.ObjectIdentifier
	sigAlg    asn1.ObjectIdentifier
	signature []byte

	hasAttrs       bool
	attrsDER       []byte // the signed attributes with the SET OF tag: what the signature covers
	attrType       asn1.ObjectIdentifier
	digest         []byte
	hasDigest      bool
	signingTime    time.Time
	hasSigningTime bool
}

// parse decodes a CMS ContentInfo holding SignedData. Errors wrap ErrMalformed and say which
// part is wrong.
func parse(in []byte) (*signedData, error) {
	if len(in) == 0 {
		return nil, malformedf("empty input")
	}
	if t := bytes.TrimSpace(in); bytes.HasPrefix(t, []byte("-----BEGIN")) {
		return nil, malformedf("PEM text, not DER: decode the PEM block first")
	}
	if in[0] != 0x30 {
		if looksBase64(in) {
			return nil, malformedf("base64 text, not DER: decode it first")
		}
		return nil, malformedf("not DER: starts with 0x%02x, but a CMS ContentInfo is a SEQUENCE (0x30)", in[0])
	}
	der, err := toDER(in)
	if err != nil {
		return nil, malformedf("%v", err)
	}

	s := cryptobyte.String(der)
	var ci, inner cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&ct) {
		return nil, malformedf("not a CMS ContentInfo (SEQUENCE { contentType, [0] content })")
	}
	if !ct.Equal(oidSignedData) {
		return nil, malformedf("not SignedData: the content type is %s", contentTypeName(ct))
	}
	if !ci.ReadASN1(&inner, contextTag(0)) || !ci.Empty() {
		return nil, malformedf("ContentInfo: content missing or followed by extra data")
	}
	var sd cryptobyte.String
	if !inner.ReadASN1(&sd, cbasn1.SEQUENCE) || !inner.Empty() {
		return nil, malformedf("SignedData is not a SEQUENCE")
	}
	return parseSignedData(sd)
}

func parseSignedData(sd cryptobyte.String) (*signedData, error) {
	out := &signedData{}
	var version int64
	if !sd.ReadASN1Integer(&version) {
		return nil, malformedf("SignedData: version missing")
	}
	var digestAlgs cryptobyte.String
	if !sd.ReadASN1(&digestAlgs, cbasn1.SET) {
		return nil, malformedf("SignedData: digestAlgorithms missing")
	}

	var eci, eContent cryptobyte.String
	var hasContent bool
	if !sd.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&out.contentType) ||
		!eci.ReadOptionalASN1(&eContent, &hasContent, contextTag(0)) || !eci.Empty() {
		return nil, malformedf("SignedData: encapContentInfo malformed")
	}
	if hasContent {
		// After toDER a constructed OCTET STRING is a primitive one.
		var octets cryptobyte.String
		if !eContent.ReadASN1(&octets, cbasn1.OCTET_STRING) || !eContent.Empty() {
			return nil, malformedf("SignedData: eContent is not an OCTET STRING")
		}
		out.content, out.hasContent = []byte(octets), true
	}
	if err := parseSignedDataTail(sd, out); err != nil {
		return nil, err
	}
	return out, nil
}

// parseSignedDataTail reads what follows encapContentInfo in a SignedData, DER: the
// certificates, the crls and the signerInfos, into out.
func parseSignedDataTail(sd cryptobyte.String, out *signedData) error {
	var certs cryptobyte.String
	var hasCerts bool
	if !sd.ReadOptionalASN1(&certs, &hasCerts, contextTag(0)) {
		return malformedf("SignedData: certificates malformed")
	}
	for i := 0; !certs.Empty(); i++ {
		var c cryptobyte.String
		var tag cbasn1.Tag
		if !certs.ReadAnyASN1Element(&c, &tag) {
			return malformedf("SignedData: certificate %d malformed", i)
		}
		if tag != cbasn1.SEQUENCE {
			// Attribute certificates and other choices say nothing about the signer.
			out.certProblems = append(out.certProblems,
				fmt.Sprintf("certificate %d in the message is not an X.509 certificate (tag 0x%02x); ignored", i, uint8(tag)))
			continue
		}
		cert, err := x509.ParseCertificate(c)
		if err != nil {
			out.certProblems = append(out.certProblems,
				fmt.Sprintf("certificate %d in the message cannot be parsed; ignored: %v", i, err))
			continue
		}
		out.certs = append(out.certs, cert)
	}
	// Revocation data is neither used nor checked (no CRL or OCSP checking here).
	if !sd.SkipOptionalASN1(contextTag(1)) {
		return malformedf("SignedData: crls malformed")
	}

	var sis cryptobyte.String
	if !sd.ReadASN1(&sis, cbasn1.SET) {
		return malformedf("SignedData: signerInfos missing")
	}
	if !sd.Empty() {
		return malformedf("SignedData: extra data after signerInfos")
	}
	for i := 0; !sis.Empty(); i++ {
		var si cryptobyte.String
		if !sis.ReadASN1(&si, cbasn1.SEQUENCE) {
			return malformedf("SignerInfo %d is not a SEQUENCE", i)
		}
		s, err := parseSignerInfo(si)
		if err != nil {
			return fmt.Errorf("%w (SignerInfo %d)", err, i)
		}
		out.signers = append(out.signers, s)
	}
	if len(out.signers) == 0 {
		return malformedf("no signers: SignedData has no SignerInfo (a certificate bundle?)")
	}
	return nil
}

func parseSignerInfo(si cryptobyte.String) (signerInfo, error) {
	var s signerInfo
	var version int64
	if !si.ReadASN1Integer(&version) {
		return s, malformedf("SignerInfo: version missing")
	}
	switch {
	case si.PeekASN1Tag(cbasn1.SEQUENCE):
		var ias, name cryptobyte.String
		s.serial = new(big.Int)
		if !si.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&name, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(s.serial) || !ias.Empty() {
			return s, malformedf("SignerInfo: issuerAndSerialNumber malformed")
		}
		s.issuer = name
	case si.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()):
		var skid cryptobyte.String
		if !si.ReadASN1(&skid, cbasn1.Tag(0).ContextSpecific()) {
			return s, malformedf("SignerInfo: subjectKeyIdentifier malformed")
		}
		s.skid = skid
	default:
		return s, malformedf("SignerInfo: signer identifier missing")
	}
	if !readAlgorithm(&si, &s.digestAlg) {
		return s, malformedf("SignerInfo: digestAlgorithm malformed")
	}

	var attrs cryptobyte.String
	if si.PeekASN1Tag(contextTag(0)) {
		if !si.ReadASN1Element(&attrs, contextTag(0)) {
			return s, malformedf("SignerInfo: signedAttrs malformed")
		}
		s.hasAttrs = true
		s.attrsDER = append([]byte{0x31}, attrs[1:]...)
		var body cryptobyte.String
		if !attrs.ReadASN1(&body, contextTag(0)) {
			return s, malformedf("SignerInfo: signedAttrs malformed")
		}
		if err := s.parseSignedAttrs(body); err != nil {
			return s, err
		}
	}
	if !readAlgorithm(&si, &s.sigAlg) {
		return s, malformedf("SignerInfo: signatureAlgorithm malformed")
	}
	var sig cryptobyte.String
	if !si.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return s, malformedf("SignerInfo: signature missing")
	}
	s.signature = sig
	// Unsigned attributes (countersignatures, timestamps) are not covered by the signature
	// and not interpreted here.
	if !si.SkipOptionalASN1(contextTag(1)) || !si.Empty() {
		return s, malformedf("SignerInfo: extra data after the signature")
	}
	return s, nil
}

// parseSignedAttrs reads the attributes Verify checks. RFC 5652, 11: each of them has
// exactly one value and appears at most once; a message that breaks that is malformed,
// since a verifier cannot know which value the signer meant.
func (s *signerInfo) parseSignedAttrs(body cryptobyte.String) error {
	seen := map[string]bool{}
	for !body.Empty() {
		var attr, values cryptobyte.String
		var typ asn1.ObjectIdentifier
		if !body.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&typ) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return malformedf("signed attribute malformed")
		}
		var name string
		switch {
		case typ.Equal(oidAttrContentType):
			name = "content-type"
		case typ.Equal(oidAttrMessageDigest):
			name = "message-digest"
		case typ.Equal(oidAttrSigningTime):
			name = "signing-time"
		default:
			continue
		}
		if seen[name] {
			return malformedf("signed attribute %s appears more than once", name)
		}
		seen[name] = true
		var ok bool
		switch name {
		case "content-type":
			ok = values.ReadASN1ObjectIdentifier(&s.attrType)
		case "message-digest":
			var d cryptobyte.String
			ok = values.ReadASN1(&d, cbasn1.OCTET_STRING)
			s.digest, s.hasDigest = d, ok
		case "signing-time":
			switch {
			case values.PeekASN1Tag(cbasn1.UTCTime):
				ok = values.ReadASN1UTCTime(&s.signingTime)
			case values.PeekASN1Tag(cbasn1.GeneralizedTime):
				ok = values.ReadASN1GeneralizedTime(&s.signingTime)
			}
			s.hasSigningTime = ok
		}
		if !ok {
			return malformedf("signed attribute %s: value malformed", name)
		}
		if !values.Empty() {
			return malformedf("signed attribute %s has more than one value", name)
		}
	}
	return nil
}

// readAlgorithm reads an AlgorithmIdentifier's OID; parameters are not needed for the
// algorithms supported (RSASSA-PSS, which needs them, is refused by OID).
func readAlgorithm(s *cryptobyte.String, oid *asn1.ObjectIdentifier) bool {
	var alg cryptobyte.String
	return s.ReadASN1(&alg, cbasn1.SEQUENCE) && alg.ReadASN1ObjectIdentifier(oid)
}

func looksBase64(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '=', c == '\r', c == '\n', c == ' ', c == '\t':
		default:
			return false
		}
	}
	return true
}
