package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// CSRRequest describes a PKCS#10 certificate request. Fields may be added; the zero value of
// each means "not asked for".
type CSRRequest struct {
	// Subject is the distinguished name; ParseSubject makes one from short names (CN, C, O,
	// OU, SERIALNUMBER, emailAddress ...).
	Subject        pkix.Name
	DNSNames       []string
	EmailAddresses []string
	IPAddresses    []net.IP
	// KeyUsage and ExtKeyUsage are requested as extensions; the CA decides what it grants.
	KeyUsage        x509.KeyUsage
	ExtKeyUsage     []x509.ExtKeyUsage
	ExtraExtensions []pkix.Extension
	// SignatureAlgorithm overrides the one chosen from the key (SignatureAlgorithmFor).
	SignatureAlgorithm x509.SignatureAlgorithm
}

// CSR makes a DER PKCS#10 request signed by signer (normally a token key's crypto.Signer).
// The result is verified before it is returned, so a signer that produces bad signatures is
// caught here rather than by the CA.
func CSR(signer crypto.Signer, req CSRRequest) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("csr: no signer")
	}
	pub := signer.Public()
	alg := req.SignatureAlgorithm
	if alg == x509.UnknownSignatureAlgorithm {
		var err error
		if alg, err = SignatureAlgorithmFor(pub); err != nil {
			return nil, fmt.Errorf("csr: %w", err)
		}
	}
	if len(req.Subject.ToRDNSequence()) == 0 && len(req.DNSNames)+len(req.EmailAddresses)+len(req.IPAddresses) == 0 {
		return nil, errors.New("csr: the request names no one: set a subject (CN at least) or alternative names")
	}
	exts := slices.Clone(req.ExtraExtensions)
	if req.KeyUsage != 0 {
		exts = append(exts, keyUsageExtension(req.KeyUsage))
	}
	if len(req.ExtKeyUsage) > 0 {
		ext, err := extKeyUsageExtension(req.ExtKeyUsage)
		if err != nil {
			return nil, fmt.Errorf("csr: %w", err)
		}
		exts = append(exts, ext)
	}
	seen := map[string]bool{}
	for _, e := range exts {
		if seen[e.Id.String()] {
			return nil, fmt.Errorf("csr: extension %s is given twice (KeyUsage/ExtKeyUsage and ExtraExtensions?)", e.Id)
		}
		seen[e.Id.String()] = true
	}
	tmpl := &x509.CertificateRequest{
		Subject:            req.Subject,
		DNSNames:           req.DNSNames,
		EmailAddresses:     req.EmailAddresses,
		IPAddresses:        req.IPAddresses,
		ExtraExtensions:    exts,
		SignatureAlgorithm: alg,
	}
	const badSignature = "csr: the key's signature on the request does not verify " +
		"(a signer returning raw r||s instead of DER ECDSA signatures does this): %w"
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		// crypto/x509 checks the signer's signature itself and says so in this wording.
		if strings.Contains(err.Error(), "signature returned by signer is invalid") {
			return nil, fmt.Errorf(badSignature, err)
		}
		return nil, fmt.Errorf("csr: sign the request: %w", err)
	}
	parsed, err := x509.ParseCertificateRequest(der)
	if err == nil {
		err = parsed.CheckSignature()
	}
	if err != nil {
		return nil, fmt.Errorf(badSignature, err)
	}
	return der, nil
}

// SignatureAlgorithmFor picks the signature algorithm for a public key: SHA-256 with RSA
// (PKCS#1 v1.5, what every CA accepts), ECDSA with the hash matching the curve, Ed25519.
func SignatureAlgorithmFor(pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return x509.ECDSAWithSHA256, nil
		case elliptic.P384():
			return x509.ECDSAWithSHA384, nil
		case elliptic.P521():
			return x509.ECDSAWithSHA512, nil
		}
		return 0, fmt.Errorf("ECDSA curve %s is not supported: use P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return x509.PureEd25519, nil
	case nil:
		return 0, errors.New("the signer has no public key")
	}
	return 0, fmt.Errorf("key type %T is not supported: requests are made for RSA, ECDSA and Ed25519 keys", pub)
}

var (
	oidExtKeyUsage  = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
		x509.ExtKeyUsageAny:             {2, 5, 29, 37, 0},
		x509.ExtKeyUsageServerAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 1},
		x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
		x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
		x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
		x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
		x509.ExtKeyUsageOCSPSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 9},
	}
)

// keyUsageExtension encodes KeyUsage as RFC 5280 does (crypto/x509 only does it for
// certificates): a BIT STRING with bit 0 first, trailing zero bits dropped.
func keyUsageExtension(ku x509.KeyUsage) pkix.Extension {
	reverse := func(b byte) byte {
		var r byte
		for i := 0; i < 8; i++ {
			r = r<<1 | b&1
			b >>= 1
		}
		return r
	}
	bits := []byte{reverse(byte(ku)), reverse(byte(ku >> 8))}
	if bits[1] == 0 {
		bits = bits[:1]
	}
	length := len(bits) * 8
	for i := len(bits) - 1; i >= 0; i-- {
		b := bits[i]
		if b != 0 {
			for b&1 == 0 {
				b >>= 1
				length--
			}
			break
		}
		length -= 8
	}
	v, _ := asn1.Marshal(asn1.BitString{Bytes: bits, BitLength: length}) // cannot fail
	return pkix.Extension{Id: oidKeyUsage, Critical: true, Value: v}
}

func extKeyUsageExtension(usages []x509.ExtKeyUsage) (pkix.Extension, error) {
	oids := make([]asn1.ObjectIdentifier, 0, len(usages))
	for _, u := range usages {
		oid, ok := extKeyUsageOIDs[u]
		if !ok {
			return pkix.Extension{}, fmt.Errorf("extended key usage %d is not supported here: put its OID in ExtraExtensions", u)
		}
		oids = append(oids, oid)
	}
	v, err := asn1.Marshal(oids)
	return pkix.Extension{Id: oidExtKeyUsage, Value: v}, err
}

// subjectAttrs are the short names ParseSubject knows, in the order they are encoded after
// pkix.Name's own fields; keys are lower-case.
var subjectAttrs = []struct {
	names []string
	oid   asn1.ObjectIdentifier
}{
	{[]string{"sn", "surname"}, asn1.ObjectIdentifier{2, 5, 4, 4}},
	{[]string{"g", "gn", "givenname"}, asn1.ObjectIdentifier{2, 5, 4, 42}},
	{[]string{"t", "title"}, asn1.ObjectIdentifier{2, 5, 4, 12}},
	{[]string{"uid", "userid"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}},
	{[]string{"dc", "domaincomponent"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}},
	{[]string{"emailaddress", "e", "email"}, oidEmailAddress},
}

// ParseSubject makes a distinguished name from short attribute names, as a Lua table gives
// them: CN, C, O, OU, L, ST, STREET, POSTALCODE, SERIALNUMBER, SN (surname), G (given name),
// T (title), UID, DC, emailAddress, or a dotted OID. Names are case-insensitive; each has one
// value (use pkix.Name directly for repeated attributes).
func ParseSubject(fields map[string]string) (pkix.Name, error) {
	var n pkix.Name
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic errors and ExtraNames order for unknown OIDs
	extra := map[string]pkix.AttributeTypeAndValue{}
	seen := map[string]string{}
	for _, k := range keys {
		v := strings.TrimSpace(fields[k])
		if v == "" {
			return n, fmt.Errorf("subject: %s is empty", k)
		}
		lk := strings.ToLower(strings.TrimSpace(k))
		canon := lk
		switch lk {
		case "cn", "commonname":
			canon, n.CommonName = "cn", v
		case "c", "countryname":
			if len(v) != 2 || !isLetters(v) {
				return n, fmt.Errorf("subject: C must be a two-letter country code such as KZ, not %q", v)
			}
			canon, n.Country = "c", []string{strings.ToUpper(v)}
		case "o", "organizationname":
			canon, n.Organization = "o", []string{v}
		case "ou", "organizationalunitname":
			canon, n.OrganizationalUnit = "ou", []string{v}
		case "l", "localityname":
			canon, n.Locality = "l", []string{v}
		case "st", "stateorprovincename":
			canon, n.Province = "st", []string{v}
		case "street", "streetaddress":
			canon, n.StreetAddress = "street", []string{v}
		case "postalcode":
			n.PostalCode = []string{v}
		case "serialnumber":
			n.SerialNumber = v
		default:
			atv, err := extraAttribute(lk, v)
			if err != nil {
				return n, fmt.Errorf("subject: %s: %w", k, err)
			}
			canon = atv.Type.String()
			extra[canon] = atv
		}
		if prev, dup := seen[canon]; dup {
			return n, fmt.Errorf("subject: %s and %s name the same attribute", prev, k)
		}
		seen[canon] = k
	}
	for _, a := range subjectAttrs {
		if atv, ok := extra[a.oid.String()]; ok {
			n.ExtraNames = append(n.ExtraNames, atv)
			delete(extra, a.oid.String())
		}
	}
	rest := make([]string, 0, len(extra))
	for k := range extra {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	for _, k := range rest {
		n.ExtraNames = append(n.ExtraNames, extra[k])
	}
	return n, nil
}

func extraAttribute(lk, v string) (pkix.AttributeTypeAndValue, error) {
	var oid asn1.ObjectIdentifier
	for _, a := range subjectAttrs {
		if slices.Contains(a.names, lk) {
			oid = a.oid
		}
	}
	if oid == nil {
		parsed, err := parseOID(lk)
		if err != nil {
			return pkix.AttributeTypeAndValue{}, errors.New("unknown attribute: use CN, C, O, OU, L, ST, STREET, POSTALCODE, SERIALNUMBER, SN, G, T, UID, DC, emailAddress or a dotted OID")
		}
		oid = parsed
	}
	var value any = v
	if oid.Equal(oidEmailAddress) || oid.Equal(asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}) {
		// RFC 5280 wants emailAddress and domainComponent as IA5String; asn1 would pick
		// UTF8String for "@".
		for _, r := range v {
			if r >= 0x80 {
				return pkix.AttributeTypeAndValue{}, fmt.Errorf("%q is not ASCII", v)
			}
		}
		value = asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(v)}
	}
	return pkix.AttributeTypeAndValue{Type: oid, Value: value}, nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, errors.New("not an OID")
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 {
			return nil, errors.New("not an OID")
		}
		v := 0
		for _, r := range p {
			if r < '0' || r > '9' {
				return nil, errors.New("not an OID")
			}
			v = v*10 + int(r-'0')
		}
		oid[i] = v
	}
	return oid, nil
}

func isLetters(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
