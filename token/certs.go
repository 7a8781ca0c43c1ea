package token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Conditions of CertificateFor.
var (
	// ErrNoCertificate: no certificate on the token has the key's CKA_ID: enroll first.
	ErrNoCertificate = errors.New("no certificate next to key")
	// ErrCertificateMismatch: the certificates with the key's CKA_ID hold another public key.
	ErrCertificateMismatch = errors.New("the certificate next to the key holds another public key")
)

// Name names a key for people: its label, or its id in hex when it has none.
func (k *Key) Name() string {
	switch {
	case k == nil:
		return "(none)"
	case k.Label != "":
		return k.Label
	case len(k.ID) == 0:
		return "with an empty id"
	}
	return "with id " + k.IDHex()
}

// CertificateFor returns the certificate stored next to key: the one with the key's CKA_ID,
// as PKCS#11 pairs them. Among several with that id, certificates for another key are
// skipped (a stale one left by a re-key), and one valid now is preferred, the most recently
// issued first.
func CertificateFor(ctx context.Context, tok Token, key *Key) (*x509.Certificate, error) {
	if key == nil {
		return nil, errors.New("certificate for key: no key given")
	}
	certs, err := tok.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	var sameID, forKey []*x509.Certificate
	for _, c := range certs {
		if c.X509 == nil || !bytes.Equal(c.ID, key.ID) {
			continue
		}
		sameID = append(sameID, c.X509)
		if key.Public == nil || samePublicKey(key.Public, c.X509.PublicKey) {
			forKey = append(forKey, c.X509)
		}
	}
	if len(sameID) == 0 {
		return nil, fmt.Errorf("%w %s: enroll first (no certificate on the token has the key's id %s)", ErrNoCertificate, key.Name(), key.IDHex())
	}
	if len(forKey) == 0 {
		return nil, fmt.Errorf("key %s: %w (%q): enroll again to replace it", key.Name(), ErrCertificateMismatch, sameID[0].Subject.String())
	}
	now := time.Now()
	best := forKey[0]
	for _, c := range forKey[1:] {
		bestValid, cValid := validAt(best, now), validAt(c, now)
		if (cValid && !bestValid) || (cValid == bestValid && c.NotBefore.After(best.NotBefore)) {
			best = c
		}
	}
	return best, nil
}

func validAt(c *x509.Certificate, t time.Time) bool {
	return !t.Before(c.NotBefore) && !t.After(c.NotAfter)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	if e, ok := a.(interface{ Equal(crypto.PublicKey) bool }); ok {
		return e.Equal(b)
	}
	// Keys of types outside the standard library: compare encodings.
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}

// ErrSeveralKeys: a key URI matches more than one key; add id= to pick one.
var ErrSeveralKeys = errors.New("several keys match")

// MatchKey reports whether key has the object label and id the URI gives.
func (u *URI) MatchKey(k *Key) bool {
	return (u.Object == "" || k.Label == u.Object) && (len(u.ID) == 0 || bytes.Equal(k.ID, u.ID))
}

// FindKey returns the one private key the URI names by object= (label) and/or id=. Private
// keys are private objects: the user must be logged in. Errors wrap ErrNotFound (naming the
// keys there are) or ErrSeveralKeys (naming their ids).
func FindKey(ctx context.Context, tok Token, u *URI) (*Key, error) {
	keys, err := tok.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var found []*Key
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		names = append(names, fmt.Sprintf("%s (id %s)", k.Label, k.IDHex()))
		if u.MatchKey(k) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		have := "it holds no key pair"
		if len(names) > 0 {
			have = "its keys: " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("key %s: %w (%s)", u.keyQuery(), ErrNotFound, have)
	}
	ids := make([]string, len(found))
	for i, k := range found {
		ids[i] = k.IDHex()
	}
	return nil, fmt.Errorf("%w: %d keys %s (ids %s)", ErrSeveralKeys, len(found), u.keyQuery(), strings.Join(ids, ", "))
}

// keyQuery names what the URI asks for, for messages.
func (u *URI) keyQuery() string {
	var parts []string
	if u.Object != "" {
		parts = append(parts, fmt.Sprintf("labelled %q", u.Object))
	}
	if len(u.ID) > 0 {
		parts = append(parts, fmt.Sprintf("with id %x", u.ID))
	}
	return strings.Join(parts, " ")
}
