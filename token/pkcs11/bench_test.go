//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// BenchmarkSign compares a Signer with direct miekg/pkcs11 calls on one session (C_SignInit
// + C_Sign, the same mechanism and pre-hashed input): the Signer's own overhead (pool, lock,
// DigestInfo or r||s-to-ASN.1) must stay within a few percent.
//
// signer and raw run one after the other, so load from other processes shifts them
// differently; interleaved alternates the two in one loop and reports both and the ratio
// (signer throughput as a percentage of raw), which load affects equally.
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	f := softhsmFixture(b)
	f.login(b)
	digest := digestOf(crypto.SHA256)
	for _, kc := range []struct {
		name  string
		req   token.KeyRequest
		mech  uint
		input []byte
	}{
		{"rsa2048", token.KeyRequest{Type: token.RSA, Bits: 2048}, p11.CKM_RSA_PKCS, append(append([]byte(nil), digestInfoPrefix[crypto.SHA256]...), digest...)},
		{"ecp256", token.KeyRequest{Type: token.EC, Curve: "P-256"}, p11.CKM_ECDSA, digest},
	} {
		key, err := f.tok.GenerateKey(ctx, kc.req)
		require.NoError(b, err)
		s, err := f.tok.Signer(ctx, key)
		require.NoError(b, err)
		signer := func(b *testing.B) {
			if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
		// raw signs on a session of its own, opened outside the Token.
		withRaw := func(b *testing.B, fn func(raw func(*testing.B))) {
			f.raw(b, func(c *p11.Ctx, sh p11.SessionHandle) {
				hs := findRaw(b, c, sh, p11.CKO_PRIVATE_KEY, key.ID)
				require.Len(b, hs, 1)
				mech := []*p11.Mechanism{p11.NewMechanism(kc.mech, nil)}
				fn(func(b *testing.B) {
					if err := c.SignInit(sh, mech, hs[0]); err != nil {
						b.Fatal(err)
					}
					if _, err := c.Sign(sh, kc.input); err != nil {
						b.Fatal(err)
					}
				})
			})
		}

		b.Run(kc.name+"/signer", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				signer(b)
			}
		})
		b.Run(kc.name+"/raw", func(b *testing.B) {
			withRaw(b, func(raw func(*testing.B)) {
				b.ReportAllocs()
				for b.Loop() {
					raw(b)
				}
			})
		})
		b.Run(kc.name+"/interleaved", func(b *testing.B) {
			withRaw(b, func(raw func(*testing.B)) {
				var ds, dr time.Duration
				for b.Loop() {
					t0 := time.Now()
					signer(b)
					t1 := time.Now()
					raw(b)
					ds, dr = ds+t1.Sub(t0), dr+time.Since(t1)
				}
				n := float64(b.N)
				b.ReportMetric(float64(ds.Nanoseconds())/n, "signer-ns/op")
				b.ReportMetric(float64(dr.Nanoseconds())/n, "raw-ns/op")
				b.ReportMetric(100*float64(dr)/float64(ds), "signer-%-of-raw")
			})
		})
	}
}
