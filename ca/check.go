package ca

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Errors of CheckIssued, for errors.Is: each is a different thing to tell the person (and
// none of them may lead to storing the certificate on the token).
var (
	ErrWrongKey         = errors.New("the certificate is for another key")
	ErrUntrustedChain   = errors.New("the certificate does not chain to the configured CA roots")
	ErrValidityMismatch = errors.New("the certificate's validity period is not the one asked for")
	ErrExpired          = errors.New("the certificate has expired")
	ErrNotYetValid      = errors.New("the certificate is not valid yet")
)

// ValidityTolerance is how far an issued certificate's validity period may differ from the one
// asked for: a calendar year is 365 or 366 days, and CAs back-date NotBefore by minutes to
// hours against clock skew.
const ValidityTolerance = 48 * time.Hour

// Year is the validity unit the bank's periods are given in (365 days; see ValidityTolerance
// for leap years).
const Year = 365 * 24 * time.Hour

// CheckIssued checks an issued certificate before it is stored on the token: it is for
// expectedPublicKey (the token key's), it is valid now, it chains to roots through chain, and,
// when wantValidity is not 0, its validity period is wantValidity within ValidityTolerance.
// The first failure is returned; each wraps its own Err* sentinel.
func CheckIssued(cert *x509.Certificate, chain []*x509.Certificate, expectedPublicKey crypto.PublicKey,
	roots *x509.CertPool, wantValidity time.Duration) error {
	return checkIssuedAt(time.Now(), cert, chain, expectedPublicKey, roots, wantValidity)
}

func checkIssuedAt(now time.Time, cert *x509.Certificate, chain []*x509.Certificate, expectedPublicKey crypto.PublicKey,
	roots *x509.CertPool, wantValidity time.Duration) error {
	const day = 24 * time.Hour
	switch {
	case cert == nil:
		return errors.New("check issued certificate: no certificate")
	case expectedPublicKey == nil:
		return errors.New("check issued certificate: no expected public key")
	case roots == nil:
		return errors.New("check issued certificate: no CA roots configured (the system's are never assumed)")
	}
	who := fmt.Sprintf("certificate %q (serial %x)", cert.Subject.String(), cert.SerialNumber)
	if !samePublicKey(cert.PublicKey, expectedPublicKey) {
		return fmt.Errorf("%s: %w: it must be for the key generated on the token; do not store it, "+
			"and report the mix-up to the bank", who, ErrWrongKey)
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("%s: %w: it was valid until %s", who, ErrExpired, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%s: %w: it is valid from %s (check this computer's clock)", who, ErrNotYetValid,
			cert.NotBefore.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range chain {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		// What the certificate is for is the CA's decision; here only the chain matters.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("%s, issued by %q: %w: %w", who, cert.Issuer.String(), ErrUntrustedChain, err)
	}
	if wantValidity > 0 {
		got := cert.NotAfter.Sub(cert.NotBefore)
		if diff := (got - wantValidity).Abs(); diff > ValidityTolerance {
			return fmt.Errorf("%s: %w: asked for %s, it is valid for %s (%s to %s): check the registration type on the acceptance act",
				who, ErrValidityMismatch, days(wantValidity), days(got),
				cert.NotBefore.UTC().Format(time.DateOnly), cert.NotAfter.UTC().Format(time.DateOnly))
		}
	}
	return nil
}

// days says a duration the way a validity period is said.
func days(d time.Duration) string {
	n := d.Round(time.Hour).Hours() / 24
	if n == float64(int64(n)) {
		return fmt.Sprintf("%d days", int64(n))
	}
	return fmt.Sprintf("%.1f days", n)
}
