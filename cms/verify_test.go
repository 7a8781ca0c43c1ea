package cms

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// sdParts is a SignedData taken apart into its DER elements, so that tests can make the
// messages other tools (or attackers) make.
type sdParts struct {
	contentType asn1.ObjectIdentifier
	version     []byte
	digestAlgs  []byte
	eci         []byte
	certs       []byte // the [0] element, or nil
	signerInfos [][]byte
}

func splitSD(t testing.TB, sig []byte) sdParts {
	t.Helper()
	var p sdParts
	in := cryptobyte.String(sig)
	var ci, inner, sd, sis cryptobyte.String
	require.True(t, in.ReadASN1(&ci, cbasn1.SEQUENCE))
	require.True(t, ci.ReadASN1ObjectIdentifier(&p.contentType))
	require.True(t, ci.ReadASN1(&inner, contextTag(0)))
	require.True(t, inner.ReadASN1(&sd, cbasn1.SEQUENCE))
	var el cryptobyte.String
	require.True(t, sd.ReadASN1Element(&el, cbasn1.INTEGER))
	p.version = el
	require.True(t, sd.ReadASN1Element(&el, cbasn1.SET))
	p.digestAlgs = el
	require.True(t, sd.ReadASN1Element(&el, cbasn1.SEQUENCE))
	p.eci = el
	if sd.PeekASN1Tag(contextTag(0)) {
		require.True(t, sd.ReadASN1Element(&el, contextTag(0)))
		p.certs = el
	}
	require.True(t, sd.ReadASN1(&sis, cbasn1.SET))
	for !sis.Empty() {
		require.True(t, sis.ReadASN1Element(&el, cbasn1.SEQUENCE))
		p.signerInfos = append(p.signerInfos, el)
	}
	return p
}

func (p sdParts) bytes() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(p.contentType)
		b.AddASN1(contextTag(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(p.version)
				b.AddBytes(p.digestAlgs)
				b.AddBytes(p.eci)
				b.AddBytes(p.certs)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for _, si := range p.signerInfos {
						b.AddBytes(si)
					}
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// flipAt returns a copy of b with one byte of the first occurrence of what changed.
func flipAt(t testing.TB, b, what []byte, i int) []byte {
	t.Helper()
	at := bytes.Index(b, what)
	require.GreaterOrEqual(t, at, 0, "%q not found", what)
	out := bytes.Clone(b)
	out[at+i] ^= 0x01
	return out
}

func TestVerifyChecks(t *testing.T) {
	pki := newPKI(t, "Checks")
	other := newPKI(t, "Other")
	now := time.Now().Truncate(time.Second)
	key := tokenKey(t, kindP256, "signer")
	current := pki.issueNow(t, key.Public(), "Current")
	expired := pki.issue(t, key.Public(), "Expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	chain := []*x509.Certificate{pki.inter}

	sign := func(t *testing.T, cert *x509.Certificate, opts SignOptions) []byte {
		t.Helper()
		opts.Chain = chain
		s, err := NewSigner(key, cert, opts)
		require.NoError(t, err)
		sig, err := s.Sign(paymentOrder)
		require.NoError(t, err)
		return sig
	}
	altered := append(bytes.Clone(paymentOrder), '!')

	type want struct{ sig, content, chain, validAtTime bool }
	tests := []struct {
		name    string
		make    func(t *testing.T) (sig, content []byte, opts VerifyOptions)
		want    want
		problem string // substring of one problem; "" for none
	}{
		{"good detached", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{Detached: true}), paymentOrder, VerifyOptions{Roots: pki.roots}
		}, want{true, true, true, true}, ""},
		{"tampered detached content", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{Detached: true}), altered, VerifyOptions{Roots: pki.roots}
		}, want{true, false, true, true}, "the given content does not match"},
		{"tampered embedded content", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return flipAt(t, sign(t, current, SignOptions{}), []byte("150000"), 0), nil, VerifyOptions{Roots: pki.roots}
		}, want{true, false, true, true}, "the embedded content does not match"},
		{"tampered signature", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			sig := sign(t, current, SignOptions{})
			sig[len(sig)-1] ^= 0x01 // the signature is last in our encoding
			return sig, nil, VerifyOptions{Roots: pki.roots}
		}, want{false, true, true, true}, "signature does not verify"},
		{"tampered signing time", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			st := []byte(now.Add(-time.Minute).UTC().Format("060102150405Z"))
			sig := sign(t, current, SignOptions{Time: now.Add(-time.Minute)})
			return flipAt(t, sig, st, len(st)-2), nil, VerifyOptions{Roots: pki.roots}
		}, want{false, true, true, true}, "signature does not verify"},
		{"wrong root", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{}), nil, VerifyOptions{Roots: other.roots}
		}, want{true, true, false, true}, "does not chain to the given roots"},
		{"no roots", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{}), nil, VerifyOptions{}
		}, want{true, true, false, true}, "no trusted roots"},
		{"expired at signing time", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, expired, SignOptions{Time: now.Add(-time.Hour)}), nil, VerifyOptions{Roots: pki.roots}
		}, want{true, true, false, false}, "after the certificate expired"},
		{"not yet valid at signing time", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{Time: now.Add(-2 * time.Hour)}), nil, VerifyOptions{Roots: pki.roots}
		}, want{true, true, true, false}, "before the certificate became valid"},
		{"archived, judged now", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, expired, SignOptions{Time: now.Add(-36 * time.Hour)}), nil, VerifyOptions{Roots: pki.roots}
		}, want{true, true, false, true}, "expired"},
		{"archived, judged at its signing time", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, expired, SignOptions{Time: now.Add(-36 * time.Hour)}), nil,
				VerifyOptions{Roots: pki.roots, At: now.Add(-36 * time.Hour)}
		}, want{true, true, true, true}, ""},
		{"no signing time", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			s, err := NewSigner(key, current, SignOptions{Chain: chain})
			require.NoError(t, err)
			s.omitSigningTime = true
			sig, err := s.Sign(paymentOrder)
			require.NoError(t, err)
			return sig, nil, VerifyOptions{Roots: pki.roots}
		}, want{true, true, true, false}, "no signing-time attribute"},
		{"detached, no content given", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{Detached: true}), nil, VerifyOptions{Roots: pki.roots}
		}, want{true, false, true, true}, "no content was given"},
		{"attached, other content given", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{}), altered, VerifyOptions{Roots: pki.roots}
		}, want{true, false, true, true}, "differs from the content embedded"},
		{"attached, same content given", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			return sign(t, current, SignOptions{}), paymentOrder, VerifyOptions{Roots: pki.roots}
		}, want{true, true, true, true}, ""},
		{"signer certificate missing", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			p := splitSD(t, sign(t, current, SignOptions{}))
			p.certs = nil
			return p.bytes(), nil, VerifyOptions{Roots: pki.roots}
		}, want{false, true, false, false}, "neither in the message nor among the given"},
		{"signer certificate given apart", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			p := splitSD(t, sign(t, current, SignOptions{}))
			p.certs = nil
			return p.bytes(), nil, VerifyOptions{
				Roots: pki.roots, Intermediates: poolOf(pki.inter), Certificates: []*x509.Certificate{expired, current},
			}
		}, want{true, true, true, true}, ""},
		{"content type not signed as data", func(t *testing.T) ([]byte, []byte, VerifyOptions) {
			p := splitSD(t, sign(t, current, SignOptions{}))
			p.eci = bytes.Replace(p.eci, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01},
				[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x05}, 1)
			return p.bytes(), nil, VerifyOptions{Roots: pki.roots}
		}, want{true, false, true, true}, "signed content-type data differs from the message's digested-data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, content, opts := tc.make(t)
			v, err := Verify(sig, content, opts)
			require.NoError(t, err)
			got := want{v.SignatureValid, v.ContentMatches, v.ChainTrusted, v.CertValidAtSigningTime}
			assert.Equal(t, tc.want, got, "problems: %q", v.Problems)
			ok := tc.want == want{true, true, true, true}
			assert.Equal(t, ok, v.OK(), "problems: %q", v.Problems)
			if tc.problem == "" {
				assert.Empty(t, v.Problems)
				assert.NoError(t, v.Err())
			} else {
				assert.Contains(t, joined(v.Problems), tc.problem)
				require.Error(t, v.Err())
				assert.Contains(t, v.Err().Error(), tc.problem)
			}
		})
	}
}

func joined(p []string) string {
	var b bytes.Buffer
	for _, s := range p {
		b.WriteString(s)
		b.WriteString("\n")
	}
	return b.String()
}

func TestVerifyReportsSigner(t *testing.T) {
	pki := newPKI(t, "Report")
	key := tokenKey(t, kindRSA2048, "signer")
	cert := pki.issueNow(t, key.Public(), "Иванов Иван")
	at := time.Date(2025, 12, 31, 23, 59, 59, 0, time.FixedZone("ALMT", 5*3600))
	sig, err := Sign(paymentOrder, key, cert, SignOptions{Time: at})
	require.NoError(t, err)
	v, err := Verify(sig, nil, VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter)})
	require.NoError(t, err)
	assert.Contains(t, v.Subject, "CN=Иванов Иван")
	assert.Contains(t, v.Issuer, "CN=Report Issuing CA")
	assert.NotEmpty(t, v.Serial)
	assert.True(t, v.HasSigningTime)
	assert.True(t, at.Equal(v.SigningTime))
	// The certificate is issued an hour ago, after the claimed signing time.
	assert.False(t, v.CertValidAtSigningTime)
	assert.Contains(t, joined(v.Problems), "signed at 2025-12-31T18:59:59Z, before the certificate became valid")
}

func TestVerifyMalformed(t *testing.T) {
	pki := newPKI(t, "Malformed")
	key := tokenKey(t, kindP256, "signer")
	cert := pki.issueNow(t, key.Public(), "Signer")
	s, err := NewSigner(key, cert, SignOptions{Chain: []*x509.Certificate{pki.inter}})
	require.NoError(t, err)
	sig, err := s.Sign(paymentOrder)
	require.NoError(t, err)
	parts := splitSD(t, sig)

	withParts := func(f func(p *sdParts)) []byte {
		p := splitSD(t, sig)
		f(&p)
		return p.bytes()
	}
	// A SignerInfo with signing-time twice; the signature need not be valid, as parsing refuses.
	dupTime := func() []byte {
		attrs, err := s.signedAttrs(make([]byte, 32), time.Now())
		require.NoError(t, err)
		st := mustDER(func(b *cryptobyte.Builder) {
			addAttr(b, oidAttrSigningTime, func(b *cryptobyte.Builder) { b.AddASN1UTCTime(time.Now().UTC()) })
		})
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(1)
			b.AddBytes(s.sid)
			b.AddBytes(s.digestAlg)
			b.AddASN1(contextTag(0), func(b *cryptobyte.Builder) { b.AddBytes(attrs); b.AddBytes(st) })
			b.AddBytes(s.sigAlg)
			b.AddASN1OctetString([]byte{1, 2, 3})
		})
		return withParts(func(p *sdParts) { p.signerInfos = [][]byte{b.BytesOrPanic()} })
	}

	tests := []struct {
		name    string
		in      []byte
		wantErr error
		want    string
	}{
		{"empty", nil, ErrMalformed, "empty input"},
		{"pem", pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: sig}), ErrMalformed, "PEM text, not DER"},
		{"base64", []byte(base64.StdEncoding.EncodeToString(sig)), ErrMalformed, "base64 text, not DER"},
		{"binary junk", []byte{0x01, 0x02, 0x03, 0xff}, ErrMalformed, "not DER: starts with 0x01"},
		{"truncated header", sig[:1], ErrMalformed, "truncated"},
		{"truncated body", sig[:len(sig)/2], ErrMalformed, "truncated: element at offset 0 needs"},
		{"truncated by one", sig[:len(sig)-1], ErrMalformed, "truncated"},
		{"trailing data", append(bytes.Clone(sig), 0, 0), ErrMalformed, "2 bytes of trailing data"},
		{"indefinite primitive", []byte{0x30, 0x80, 0x04, 0x80, 0x00, 0x00}, ErrMalformed, "not DER: primitive element at offset 2 has an indefinite length"},
		{"certificate, not CMS", cert.Raw, ErrMalformed, "not a CMS ContentInfo"},
		{"enveloped data", withParts(func(p *sdParts) { p.contentType = oidEnvelopedData }), ErrMalformed, "not SignedData: the content type is enveloped-data"},
		{"no signers", withParts(func(p *sdParts) { p.signerInfos = nil }), ErrMalformed, "no signers"},
		{"junk signer", withParts(func(p *sdParts) { p.signerInfos = [][]byte{{0x30, 0x03, 0x02, 0x01, 0x01}} }), ErrMalformed, "SignerInfo: signer identifier missing"},
		{"signing time twice", dupTime(), ErrMalformed, "signing-time appears more than once"},
		{"two signers", withParts(func(p *sdParts) { p.signerInfos = append(p.signerInfos, parts.signerInfos[0]) }), ErrUnsupported, "2 signers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Verify(tc.in, nil, VerifyOptions{Roots: pki.roots})
			require.Error(t, err)
			assert.Nil(t, v)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.want)
			assert.False(t, errors.Is(err, ErrKeyMismatch))
		})
	}
}

// TestVerifyNeverPanics cuts and alters a good signature at every byte: each result must be
// an error or a verdict, and a verdict from a cut message is impossible.
func TestVerifyNeverPanics(t *testing.T) {
	pki := newPKI(t, "Robust")
	key := tokenKey(t, kindP256, "signer")
	cert := pki.issueNow(t, key.Public(), "Signer")
	sig, err := Sign([]byte("short order"), key, cert, SignOptions{})
	require.NoError(t, err)
	opts := VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter)}
	for n := 0; n < len(sig); n++ {
		_, err := Verify(sig[:n], nil, opts)
		require.Error(t, err, "prefix of %d bytes", n)
		require.ErrorIs(t, err, ErrMalformed)
	}
	for i := range sig {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(sig)
			b[i] ^= mask
			v, err := Verify(b, nil, opts)
			if err == nil {
				require.NotNil(t, v)
			}
		}
	}
}
