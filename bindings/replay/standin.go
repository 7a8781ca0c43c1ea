package replay

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"sync"
)

// StandIn re-issues a client's certificates for the keys of a reproduction token. The
// client's private keys never left their token, so a reproduction generates new keys with
// the same ids and labels; a certificate the CA issued for a client's key (on the token at
// the start, or given back by a replayed ca.enroll) would not match them. Its stand-in keeps
// everything a procedure reads (subject, issuer name, serial, validity, extensions) and
// carries the new key, signed by a throwaway issuer key that exists only for this replay.
type StandIn struct {
	mu     sync.Mutex
	issuer crypto.Signer
	keys   map[string]crypto.PublicKey // the client's SubjectPublicKeyInfo DER -> the new key
	certs  map[string][]byte           // the client's certificate DER + the new key's DER -> stand-in
}

// NewStandIn makes a stand-in issuer.
func NewStandIn() (*StandIn, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("stand-in issuer key: %w", err)
	}
	return &StandIn{issuer: k, keys: map[string]crypto.PublicKey{}, certs: map[string][]byte{}}, nil
}

// Map says that the client's key with SubjectPublicKeyInfo spki is now the key pub.
func (s *StandIn) Map(spki []byte, pub crypto.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[string(spki)] = pub
}

// MapPEM is Map for the "PUBLIC KEY" PEM text token.Key.public_key has: recorded is the
// client's, live the reproduction's. Text that is no public key is ignored.
func (s *StandIn) MapPEM(recorded, live string) {
	rb, _ := pem.Decode([]byte(recorded))
	lb, _ := pem.Decode([]byte(live))
	if rb == nil || lb == nil || rb.Type != "PUBLIC KEY" || lb.Type != "PUBLIC KEY" {
		return
	}
	pub, err := x509.ParsePKIXPublicKey(lb.Bytes)
	if err != nil {
		return
	}
	s.Map(rb.Bytes, pub)
}

// Replace gives the stand-in of a certificate (DER, or PEM text) whose key has been mapped,
// in the same encoding; ok is false for anything else (a CA's certificate, not a
// certificate at all), which is to be used as it is.
func (s *StandIn) Replace(v string) (out string, ok bool) {
	if s == nil {
		return "", false
	}
	der, isPEM := []byte(v), false
	if bytes.HasPrefix(der, []byte("-----BEGIN CERTIFICATE-----")) {
		b, _ := pem.Decode(der)
		if b == nil {
			return "", false
		}
		der, isPEM = b.Bytes, true
	} else if len(der) == 0 || der[0] != 0x30 { // not a DER SEQUENCE: not worth parsing
		return "", false
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	pub, mapped := s.keys[string(c.RawSubjectPublicKeyInfo)]
	s.mu.Unlock()
	if !mapped {
		return "", false
	}
	standIn, err := s.Reissue(c, pub)
	if err != nil {
		return "", false
	}
	if isPEM {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: standIn})), true
	}
	return string(standIn), true
}

var oidSubjectKeyID = asn1.ObjectIdentifier{2, 5, 29, 14}

// Reissue gives the stand-in of c for pub: the same subject, issuer name, serial, validity
// and extensions (but the subject key identifier, which names the key), signed by the
// throwaway issuer. The same c and pub always give the same DER within a StandIn.
func (s *StandIn) Reissue(c *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("stand-in for %s: %w", c.Subject, err)
	}
	cacheKey := string(c.Raw) + "\x00" + string(pubDER)
	s.mu.Lock()
	defer s.mu.Unlock()
	if der, ok := s.certs[cacheKey]; ok {
		return der, nil
	}
	tmpl := &x509.Certificate{
		SerialNumber: c.SerialNumber,
		RawSubject:   c.RawSubject,
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		SubjectKeyId: keyID(pubDER),
	}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidSubjectKeyID) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: e.Id, Critical: e.Critical, Value: e.Value})
		}
	}
	// The parent gives the issuer name; its key is the throwaway one.
	parent := &x509.Certificate{RawSubject: c.RawIssuer, SubjectKeyId: c.AuthorityKeyId}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, s.issuer)
	if err != nil {
		return nil, fmt.Errorf("stand-in for %s: %w", c.Subject, err)
	}
	s.certs[cacheKey] = der
	return der, nil
}

// keyID is the RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey bits.
func keyID(spki []byte) []byte {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil
	}
	sum := sha1.Sum(info.Key.Bytes)
	return sum[:]
}
