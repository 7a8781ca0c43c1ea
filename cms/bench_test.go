package cms

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"testing"
)

// benchDoc is the size of a typical payment order (an XML document of a few kilobytes).
var benchDoc = bytes.Repeat([]byte("<PaymentOrder/>\n"), 128) // 2 KiB

// BenchmarkSign measures one CMS signature: "oneshot" is Sign (key check and set-up each
// time), "reuse" is Signer.Sign as a batch does. Compare with BenchmarkRawSign on the same
// key to see the CMS overhead as a ratio; with a token, the key call dominates both.
func BenchmarkSign(b *testing.B) {
	pki := newPKI(b, "Bench")
	for _, kind := range []string{kindRSA2048, kindP256} {
		key := tokenKey(b, kind, "signer")
		cert := pki.issueNow(b, key.Public(), "Bench "+kind)
		b.Run(kind+"/oneshot", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Sign(benchDoc, key, cert, SignOptions{Detached: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"/reuse", func(b *testing.B) {
			s, err := NewSigner(key, cert, SignOptions{Detached: true})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(benchDoc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawSign is only the key's Sign on a SHA-256 digest: the floor for BenchmarkSign.
func BenchmarkRawSign(b *testing.B) {
	digest := sha256.Sum256(benchDoc)
	for _, kind := range []string{kindRSA2048, kindP256} {
		key := tokenKey(b, kind, "signer")
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify is for reference: verification is not on the batch path.
func BenchmarkVerify(b *testing.B) {
	pki := newPKI(b, "BenchVerify")
	for _, kind := range []string{kindRSA2048, kindP256} {
		key := tokenKey(b, kind, "signer")
		cert := pki.issueNow(b, key.Public(), "Bench "+kind)
		sig, err := Sign(benchDoc, key, cert, SignOptions{Detached: true})
		if err != nil {
			b.Fatal(err)
		}
		opts := VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter)}
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := Verify(sig, benchDoc, opts)
				if err != nil || !v.OK() {
					b.Fatal(err, v.Problems)
				}
			}
		})
	}
}

// cannedSigner answers every Sign with one fixed signature: what remains is the CMS work
// alone (digest, attributes, DER), in absolute terms, whatever the key's speed.
type cannedSigner struct {
	pub crypto.PublicKey
	sig []byte
}

func (c cannedSigner) Public() crypto.PublicKey { return c.pub }
func (c cannedSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return c.sig, nil
}

func BenchmarkSignOverhead(b *testing.B) {
	pki := newPKI(b, "BenchOverhead")
	digest := sha256.Sum256(benchDoc)
	for _, kind := range []string{kindRSA2048, kindP256} {
		key := tokenKey(b, kind, "signer")
		cert := pki.issueNow(b, key.Public(), "Bench "+kind)
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		s, err := NewSigner(cannedSigner{key.Public(), sig}, cert, SignOptions{Detached: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(benchDoc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
