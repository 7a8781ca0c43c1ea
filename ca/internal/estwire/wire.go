// Package estwire owns the RFC 7030 body encodings shared by the EST client (package ca) and
// the development CA's server (ca/devca): base64 bodies and "certs-only" PKCS#7. It lives in
// one place so that client and server cannot drift apart; interoperability with servers and
// clients we did not write is checked by the tests of both packages.
package estwire

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/smallstep/pkcs7"
)

// Media types of RFC 7030 section 4.
const (
	MediaPKCS7  = "application/pkcs7-mime"
	MediaPKCS10 = "application/pkcs10"
	// CertsOnly is the full Content-Type of a /cacerts or /simpleenroll answer.
	CertsOnly = "application/pkcs7-mime; smime-type=certs-only"
)

// EncodeBody base64-encodes der with 64-character lines, as RFC 7030 bodies are (PEM-like
// lines keep the body readable by `openssl base64 -d`, which rejects very long lines).
func EncodeBody(der []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(der)
	var b bytes.Buffer
	b.Grow(len(enc) + len(enc)/64 + 2)
	for len(enc) > 64 {
		b.WriteString(enc[:64])
		b.WriteByte('\n')
		enc = enc[64:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.Bytes()
}

// DecodeBody returns the DER in an EST body. RFC 7030 says base64; RFC 8951 tells both sides
// to ignore Content-Transfer-Encoding, and some servers and hand-written curl requests send
// raw DER anyway, so DER is accepted when the body is not base64 but parses as a DER SEQUENCE.
func DecodeBody(body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("body is empty")
	}
	compact := bytes.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, trimmed)
	der, b64err := base64.StdEncoding.DecodeString(string(compact))
	if b64err == nil {
		return der, nil
	}
	if looksLikeDER(body) {
		return body, nil
	}
	return nil, fmt.Errorf("body is neither base64 (RFC 7030) nor DER: %w", b64err)
}

// looksLikeDER says whether b is exactly one DER SEQUENCE (definite length).
func looksLikeDER(b []byte) bool {
	if len(b) < 2 || b[0] != 0x30 {
		return false
	}
	n := int(b[1])
	hdr := 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k {
			return false
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	return hdr+n == len(b)
}

// EncodeCertsOnly makes a degenerate PKCS#7 SignedData holding certs.
func EncodeCertsOnly(certs []*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("no certificates to encode")
	}
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	return pkcs7.DegenerateCertificate(raw)
}

// DecodeCertsOnly returns the certificates of a certs-only PKCS#7 (DER or BER).
func DecodeCertsOnly(der []byte) ([]*x509.Certificate, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#7 structure: %w", err)
	}
	if len(p7.Certificates) == 0 {
		return nil, errors.New("PKCS#7 structure holds no certificates")
	}
	return p7.Certificates, nil
}

// MediaType returns the lower-case media type and parameters of a Content-Type header value.
func MediaType(contentType string) (string, map[string]string, error) {
	if strings.TrimSpace(contentType) == "" {
		return "", nil, errors.New("no content type")
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", nil, fmt.Errorf("content type %q: %w", contentType, err)
	}
	return strings.ToLower(mt), params, nil
}
