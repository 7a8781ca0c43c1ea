package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var paymentOrder = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<PaymentOrder><Number>17</Number><Amount>150000.00</Amount><Currency>KZT</Currency>
<Beneficiary>ТОО "Ромашка"</Beneficiary><BIN>123456789012</BIN></PaymentOrder>
`)

func TestSignVerifyRoundTrip(t *testing.T) {
	pki := newPKI(t, "RoundTrip")
	signedAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	tests := []struct {
		kind     string
		wantHash crypto.Hash
	}{
		{kindRSA2048, crypto.SHA256},
		{kindP256, crypto.SHA256},
		{kindP384, crypto.SHA384},
		{kindP521, crypto.SHA512},
	}
	for _, tc := range tests {
		for _, detached := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/detached=%v", tc.kind, detached), func(t *testing.T) {
				key := tokenKey(t, tc.kind, "signer")
				cert := pki.issueNow(t, key.Public(), "Signer "+tc.kind)
				sig, err := Sign(paymentOrder, key, cert, SignOptions{
					Detached: detached, Time: signedAt, Chain: []*x509.Certificate{pki.inter},
				})
				require.NoError(t, err)

				// Our output is DER: re-encoding changes nothing.
				again, err := toDER(sig)
				require.NoError(t, err)
				assert.Equal(t, sig, again, "output is not DER")
				assert.Equal(t, !detached, bytes.Contains(sig, paymentOrder), "document embedded")

				var content []byte
				if detached {
					content = paymentOrder
				}
				v, err := Verify(sig, content, VerifyOptions{Roots: pki.roots})
				require.NoError(t, err)
				assert.Empty(t, v.Problems)
				assert.True(t, v.OK())
				assert.NoError(t, v.Err())
				assert.True(t, v.SignatureValid)
				assert.True(t, v.ContentMatches)
				assert.True(t, v.ChainTrusted)
				assert.True(t, v.CertValidAtSigningTime)
				assert.True(t, v.HasSigningTime)
				assert.True(t, signedAt.Equal(v.SigningTime), "signing time %v, want %v", v.SigningTime, signedAt)
				assert.Equal(t, cert.Subject.String(), v.Subject)
				assert.Equal(t, pki.inter.Subject.String(), v.Issuer)
				assert.Equal(t, strings.ToUpper(hex.EncodeToString(cert.SerialNumber.Bytes())), v.Serial)
				assert.Equal(t, cert.Raw, v.Certificate.Raw)
				require.Len(t, v.Chain, 3)
				assert.Equal(t, pki.root.Raw, v.Chain[2].Raw)
				assert.Equal(t, tc.wantHash, v.Hash)
				assert.Equal(t, detached, v.Detached)
				if detached {
					assert.Nil(t, v.Content)
				} else {
					assert.Equal(t, paymentOrder, v.Content)
				}
			})
		}
	}
}

func TestSignEmptyDocument(t *testing.T) {
	pki := newPKI(t, "Empty")
	key := tokenKey(t, kindP256, "signer")
	cert := pki.issueNow(t, key.Public(), "Signer")
	for _, detached := range []bool{true, false} {
		sig, err := Sign(nil, key, cert, SignOptions{Detached: detached, Chain: []*x509.Certificate{pki.inter}})
		require.NoError(t, err)
		content := []byte(nil)
		if detached {
			content = []byte{}
		}
		v, err := Verify(sig, content, VerifyOptions{Roots: pki.roots})
		require.NoError(t, err)
		assert.True(t, v.OK(), "detached=%v: %v", detached, v.Problems)
		assert.Equal(t, detached, v.Detached)
	}
}

func TestSignTimeDefaultsToNow(t *testing.T) {
	pki := newPKI(t, "Now")
	key := tokenKey(t, kindP256, "signer")
	cert := pki.issueNow(t, key.Public(), "Signer")
	before := time.Now().Truncate(time.Second)
	sig, err := Sign(paymentOrder, key, cert, SignOptions{})
	require.NoError(t, err)
	after := time.Now()
	v, err := Verify(sig, nil, VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter)})
	require.NoError(t, err)
	assert.True(t, v.OK(), v.Problems)
	assert.False(t, v.SigningTime.Before(before))
	assert.False(t, v.SigningTime.After(after))
}

func TestSignFarFutureTimeUsesGeneralizedTime(t *testing.T) {
	pki := newPKI(t, "Y2050")
	key := tokenKey(t, kindP256, "signer")
	at := time.Date(2051, 3, 1, 12, 0, 0, 0, time.UTC)
	cert := pki.issue(t, key.Public(), "Signer", at.Add(-time.Hour), at.Add(time.Hour))
	sig, err := Sign(paymentOrder, key, cert, SignOptions{Time: at, Chain: []*x509.Certificate{pki.inter}})
	require.NoError(t, err)
	assert.True(t, bytes.Contains(sig, []byte("20510301120000Z")))
	v, err := Verify(sig, nil, VerifyOptions{Roots: pki.roots, At: at})
	require.NoError(t, err)
	// The test CAs do not reach 2051; everything else holds.
	assert.True(t, v.SignatureValid && v.ContentMatches && v.CertValidAtSigningTime, v.Problems)
	assert.True(t, at.Equal(v.SigningTime))
}

func TestSignRefuses(t *testing.T) {
	pki := newPKI(t, "Refuse")
	rsaKey := tokenKey(t, kindRSA2048, "signer")
	ecKey := tokenKey(t, kindP256, "signer")
	ecCert := pki.issueNow(t, ecKey.Public(), "EC signer")
	otherEC := tokenKey(t, kindP256, "other")
	p224 := tokenKey(t, kindP224, "signer")
	ed := tokenKey(t, kindEd25519, "signer")

	tests := []struct {
		name    string
		key     crypto.Signer
		cert    *x509.Certificate
		opts    SignOptions
		wantErr error
		wantMsg []string
	}{
		{"rsa key, ecdsa certificate", rsaKey, ecCert, SignOptions{}, ErrKeyMismatch,
			[]string{"RSA-2048", "P-256", "EC signer"}},
		{"other ecdsa key", otherEC, ecCert, SignOptions{}, ErrKeyMismatch, []string{"P-256"}},
		{"p-224", p224, pki.issueNow(t, p224.Public(), "P224"), SignOptions{}, ErrUnsupported, []string{"P-224"}},
		{"ed25519", ed, pki.issueNow(t, ed.Public(), "Ed"), SignOptions{}, ErrUnsupported, []string{"Ed25519"}},
		{"sha-1", ecKey, ecCert, SignOptions{Hash: crypto.SHA1}, ErrUnsupported, []string{"SHA-1"}},
		{"nil key", nil, ecCert, SignOptions{}, nil, []string{"no signer"}},
		{"nil certificate", ecKey, nil, SignOptions{}, nil, []string{"no certificate"}},
		{"certificate template", ecKey, &x509.Certificate{PublicKey: ecKey.Public()}, SignOptions{}, nil, []string{"no DER encoding"}},
		{"nil chain entry", ecKey, ecCert, SignOptions{Chain: []*x509.Certificate{pki.inter, nil}}, nil, []string{"chain certificate 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := Sign(paymentOrder, tc.key, tc.cert, tc.opts)
			require.Error(t, err)
			assert.Nil(t, sig)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			for _, m := range tc.wantMsg {
				assert.Contains(t, err.Error(), m)
			}
			_, err = NewSigner(tc.key, tc.cert, tc.opts)
			assert.Error(t, err)
		})
	}
}

func TestSignHashOverride(t *testing.T) {
	pki := newPKI(t, "Hash")
	key := tokenKey(t, kindRSA2048, "signer")
	cert := pki.issueNow(t, key.Public(), "Signer")
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		s, err := NewSigner(key, cert, SignOptions{Hash: h, Chain: []*x509.Certificate{pki.inter}})
		require.NoError(t, err)
		assert.Equal(t, h, s.Hash())
		sig, err := s.Sign(paymentOrder)
		require.NoError(t, err)
		v, err := Verify(sig, nil, VerifyOptions{Roots: pki.roots})
		require.NoError(t, err)
		assert.True(t, v.OK(), v.Problems)
		assert.Equal(t, h, v.Hash)
	}
}

// countingSigner fails from its failAt-th call on (1-based; 0 never).
type countingSigner struct {
	crypto.Signer
	calls, failAt int
}

var errTokenRemoved = errors.New("token removed")

func (c *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.calls++
	if c.failAt > 0 && c.calls >= c.failAt {
		return nil, errTokenRemoved
	}
	return c.Signer.Sign(r, d, o)
}

func TestSignBatch(t *testing.T) {
	pki := newPKI(t, "Batch")
	key := tokenKey(t, kindP256, "signer")
	cert := pki.issueNow(t, key.Public(), "Batch signer")
	docs := make([][]byte, 5)
	for i := range docs {
		docs[i] = []byte(fmt.Sprintf("payment order %d", i))
	}

	t.Run("all", func(t *testing.T) {
		s, err := NewSigner(key, cert, SignOptions{Detached: true, Chain: []*x509.Certificate{pki.inter}})
		require.NoError(t, err)
		assert.Equal(t, cert, s.Certificate())
		sigs, err := s.SignBatch(context.Background(), docs)
		require.NoError(t, err)
		require.Len(t, sigs, len(docs))
		for i, sig := range sigs {
			v, err := Verify(sig, docs[i], VerifyOptions{Roots: pki.roots})
			require.NoError(t, err)
			assert.True(t, v.OK(), "doc %d: %v", i, v.Problems)
			// Each signature is bound to its own document.
			v, err = Verify(sig, docs[(i+1)%len(docs)], VerifyOptions{Roots: pki.roots})
			require.NoError(t, err)
			assert.False(t, v.ContentMatches)
		}
	})
	t.Run("key fails midway", func(t *testing.T) {
		cs := &countingSigner{Signer: key, failAt: 3}
		s, err := NewSigner(cs, cert, SignOptions{Detached: true})
		require.NoError(t, err)
		sigs, err := s.SignBatch(context.Background(), docs)
		var be *BatchError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, 2, be.Index)
		assert.ErrorIs(t, err, errTokenRemoved)
		assert.Contains(t, err.Error(), "batch document 2")
		assert.Len(t, sigs, 2)
	})
	t.Run("cancelled", func(t *testing.T) {
		s, err := NewSigner(key, cert, SignOptions{})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sigs, err := s.SignBatch(ctx, docs)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, sigs)
	})
}

// rawECDSASigner returns r||s, as PKCS#11 does, instead of crypto.Signer's ASN.1.
type rawECDSASigner struct{ k *ecdsa.PrivateKey }

func (r rawECDSASigner) Public() crypto.PublicKey { return r.k.Public() }
func (r rawECDSASigner) Sign(_ io.Reader, d []byte, _ crypto.SignerOpts) ([]byte, error) {
	sig, err := ecdsa.SignASN1(rand.Reader, r.k, d)
	if err != nil {
		return nil, err
	}
	var rr, ss []byte
	in := cryptobyte.String(sig)
	var seq cryptobyte.String
	in.ReadASN1(&seq, cbasn1.SEQUENCE)
	seq.ReadASN1Bytes(&rr, cbasn1.INTEGER)
	seq.ReadASN1Bytes(&ss, cbasn1.INTEGER)
	out := make([]byte, 64)
	copy(out[32-len(bytes.TrimLeft(rr, "\x00")):32], bytes.TrimLeft(rr, "\x00"))
	copy(out[64-len(bytes.TrimLeft(ss, "\x00")):], bytes.TrimLeft(ss, "\x00"))
	return out, nil
}

func TestSignRefusesRawECDSASignature(t *testing.T) {
	pki := newPKI(t, "Raw")
	k := rawKey(t, kindP256, "signer").(*ecdsa.PrivateKey)
	cert := pki.issueNow(t, k.Public(), "Signer")
	_, err := Sign(paymentOrder, rawECDSASigner{k}, cert, SignOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not ASN.1 DER")
}

func TestSignedAttributesAreInDEROrder(t *testing.T) {
	s := &Signer{}
	for _, at := range []time.Time{time.Now(), time.Date(2077, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for _, n := range []int{32, 48, 64} {
			attrs, err := s.signedAttrs(make([]byte, n), at)
			require.NoError(t, err)
			var prev []byte
			in := cryptobyte.String(attrs)
			for !in.Empty() {
				var el cryptobyte.String
				require.True(t, in.ReadASN1Element(&el, cbasn1.SEQUENCE))
				assert.True(t, bytes.Compare(prev, el) < 0)
				prev = el
			}
		}
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// A signature over a digest the caller computed is the detached signature over the document:
// it verifies with the document as content, and nothing else is accepted.
func TestSignDigest(t *testing.T) {
	pki := newPKI(t, "Digest")
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		kind string
		hash crypto.Hash
	}{{kindRSA2048, crypto.SHA256}, {kindP256, crypto.SHA256}, {kindP256, crypto.SHA512}, {kindP384, crypto.SHA384}} {
		t.Run(fmt.Sprintf("%s/%v", tc.kind, tc.hash), func(t *testing.T) {
			key := tokenKey(t, tc.kind, "signer")
			cert := pki.issueNow(t, key.Public(), "Digest "+tc.kind)
			s, err := NewSigner(key, cert, SignOptions{Detached: true, Time: at, Hash: tc.hash, Chain: []*x509.Certificate{pki.inter}})
			require.NoError(t, err)
			sig, err := s.SignDigest(sum(tc.hash, paymentOrder))
			require.NoError(t, err)
			want, err := s.Sign(paymentOrder)
			require.NoError(t, err)
			if tc.kind == kindRSA2048 { // PKCS#1 v1.5 is deterministic: the same bytes
				assert.Equal(t, want, sig)
			}
			v, err := Verify(sig, paymentOrder, VerifyOptions{Roots: pki.roots})
			require.NoError(t, err)
			assert.True(t, v.OK(), "%v", v.Problems)
			assert.True(t, v.Detached)
			assert.Equal(t, tc.hash, v.Hash)
			v, err = Verify(sig, []byte("another order"), VerifyOptions{Roots: pki.roots})
			require.NoError(t, err)
			assert.False(t, v.ContentMatches)
		})
	}
	key := tokenKey(t, kindP256, "signer")
	cert := pki.issueNow(t, key.Public(), "Digest refusals")
	attached, err := NewSigner(key, cert, SignOptions{Time: at})
	require.NoError(t, err)
	_, err = attached.SignDigest(sum(crypto.SHA256, paymentOrder))
	assert.ErrorContains(t, err, "always detached")
	detached, err := NewSigner(key, cert, SignOptions{Detached: true, Time: at})
	require.NoError(t, err)
	for _, bad := range [][]byte{nil, []byte("MTEK"), make([]byte, 48)} {
		_, err = detached.SignDigest(bad)
		assert.ErrorContains(t, err, "SHA-256 digest is 32", "%d bytes", len(bad))
	}
}
