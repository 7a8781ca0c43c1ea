package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// benchOrder is a small payment order, the size of the documents banks batch.
var benchOrder = bytes.Repeat([]byte("<PaymentOrder amount=\"100.00\" currency=\"KZT\"/>\n"), 16) // 768 B

// sha256DigestInfo is the DER prefix PKCS #1 v1.5 puts before a SHA-256 digest
// (RFC 8017, 9.2): CKM_RSA_PKCS signs it and the digest as given.
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// BenchmarkSignPath measures CMS signatures made the way `tokenrun sign` makes them (one
// cms.Signer over the token's crypto.Signer, after one login) against bare C_SignInit +
// C_Sign on the same key, on a session of its own, in the same run: what the CMS layer and
// the token layer add on top of the token's own work. "interleaved" alternates the two in
// one loop, so that load from other processes shifts both alike, and reports the sign
// path's throughput as a percentage of raw. "file" is signOne: read the document, sign,
// write and fsync the signature.
func BenchmarkSignPath(b *testing.B) {
	ctx := context.Background()
	module := p11test.SoftHSM(b)
	tt := p11test.SoftHSMToken(b, "BENCH", "87654321", "12345678")
	ca := newGoCA(b, "Bench Root")
	p, err := pkcs11.Open(module)
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.Close() })
	sel, err := token.Select(ctx, p, token.SelectOptions{URI: &token.URI{Serial: tt.Serial}})
	require.NoError(b, err)
	info, err := sel.One()
	require.NoError(b, err)
	tok, err := p.Open(ctx, info)
	require.NoError(b, err)
	b.Cleanup(func() { _ = tok.Close() })
	require.NoError(b, tok.Login(ctx, token.User, tt.UserPIN))

	raw := rawSession(b, module, tt.Serial)
	digest := sha256.Sum256(benchOrder)
	doc := filepath.Join(b.TempDir(), "order.xml")
	require.NoError(b, os.WriteFile(doc, benchOrder, 0o600))

	for _, kc := range []struct {
		name  string
		req   token.KeyRequest
		mech  uint
		input []byte
	}{
		{"rsa2048", token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "rsa"}, p11.CKM_RSA_PKCS, append(append([]byte(nil), sha256DigestInfo...), digest[:]...)},
		{"ecp256", token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "ec"}, p11.CKM_ECDSA, digest[:]},
	} {
		key := enrollKey(b, tok, ca, kc.req, "Bench "+kc.name)
		// The same steps as signFiles after the login.
		cert, err := token.CertificateFor(ctx, tok, key)
		require.NoError(b, err)
		ks, err := tok.Signer(ctx, key)
		require.NoError(b, err)
		signer, err := cms.NewSigner(ks, cert, cms.SignOptions{Detached: true})
		require.NoError(b, err)
		sign := func(b *testing.B) {
			if _, err := signer.Sign(benchOrder); err != nil {
				b.Fatal(err)
			}
		}
		rawSign := raw.signer(b, key.ID, kc.mech, kc.input)

		b.Run(kc.name+"/sign", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sign(b)
			}
		})
		b.Run(kc.name+"/raw", func(b *testing.B) {
			for b.Loop() {
				rawSign(b)
			}
		})
		b.Run(kc.name+"/interleaved", func(b *testing.B) {
			var ds, dr time.Duration
			for b.Loop() {
				t0 := time.Now()
				sign(b)
				t1 := time.Now()
				rawSign(b)
				ds, dr = ds+t1.Sub(t0), dr+time.Since(t1)
			}
			n := float64(b.N)
			b.ReportMetric(float64(ds.Nanoseconds())/n, "sign-ns/op")
			b.ReportMetric(float64(dr.Nanoseconds())/n, "raw-ns/op")
			b.ReportMetric(n/ds.Seconds(), "sign-sigs/s")
			b.ReportMetric(100*float64(dr)/float64(ds), "sign-%-of-raw")
		})
		b.Run(kc.name+"/file", func(b *testing.B) {
			out := filepath.Join(b.TempDir(), "order.xml.p7s")
			group := atomicfile.NewGroup(signGroupFiles, signGroupDelay)
			defer group.Close()
			for b.Loop() {
				if err := signOne(ctx, signer, signJob{in: doc, out: out}, true, group, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rawToken is a session opened with miekg/pkcs11 directly, beside the token layer.
type rawToken struct {
	ctx *p11.Ctx
	sh  p11.SessionHandle
}

// rawSession opens a session on the token with serial. The library is already initialised
// by the token layer in this process; a second handle on it shares that state (and the
// login), so this one is neither finalised nor unloaded: the token layer does that.
func rawSession(b *testing.B, module, serial string) *rawToken {
	b.Helper()
	c := p11.New(module)
	require.NotNil(b, c, "load %s", module)
	if err := c.Initialize(); err != nil && !strings.Contains(err.Error(), "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
		b.Fatalf("C_Initialize: %v", err)
	}
	slots, err := c.GetSlotList(true)
	require.NoError(b, err)
	for _, s := range slots {
		ti, err := c.GetTokenInfo(s)
		if err != nil || strings.TrimSpace(ti.SerialNumber) != serial {
			continue
		}
		sh, err := c.OpenSession(s, p11.CKF_SERIAL_SESSION)
		require.NoError(b, err)
		b.Cleanup(func() { _ = c.CloseSession(sh) })
		return &rawToken{ctx: c, sh: sh}
	}
	b.Fatalf("no token with serial %s", serial)
	return nil
}

// signer returns one bare signature with the private key whose CKA_ID is id.
func (r *rawToken) signer(b *testing.B, id []byte, mech uint, input []byte) func(*testing.B) {
	b.Helper()
	tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_ID, id)}
	require.NoError(b, r.ctx.FindObjectsInit(r.sh, tmpl))
	hs, _, err := r.ctx.FindObjects(r.sh, 2)
	require.NoError(b, err)
	require.NoError(b, r.ctx.FindObjectsFinal(r.sh))
	require.Len(b, hs, 1, fmt.Sprintf("private key %x", id))
	m := []*p11.Mechanism{p11.NewMechanism(mech, nil)}
	return func(b *testing.B) {
		if err := r.ctx.SignInit(r.sh, m, hs[0]); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ctx.Sign(r.sh, input); err != nil {
			b.Fatal(err)
		}
	}
}
