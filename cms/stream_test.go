package cms

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pseudoDoc is n reproducible pseudorandom bytes, read without being held.
func pseudoDoc(n int64, seed uint64) io.Reader {
	return io.LimitReader(&prngReader{r: rand.New(rand.NewPCG(seed, 1))}, n)
}

type prngReader struct{ r *rand.Rand }

func (p *prngReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}

func pseudoBytes(t testing.TB, n int64, seed uint64) []byte {
	b, err := io.ReadAll(pseudoDoc(n, seed))
	require.NoError(t, err)
	return b
}

// TestSignStreamMatchesSign: detached and small attached signatures made from a stream are
// the DER Sign makes, byte for byte (RSA PKCS #1 v1.5 is deterministic, the time fixed).
func TestSignStreamMatchesSign(t *testing.T) {
	pki := newPKI(t, "Stream")
	key := tokenKey(t, kindRSA2048, "stream")
	cert := pki.issueNow(t, key.Public(), "Stream signer")
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, size := range []int64{0, 1, 5000, bufferAbove} {
		doc := pseudoBytes(t, size, 7)
		for _, detached := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/detached=%v", size, detached), func(t *testing.T) {
				s, err := NewSigner(key, cert, SignOptions{Detached: detached, Time: at})
				require.NoError(t, err)
				want, err := s.Sign(doc)
				require.NoError(t, err)
				var got bytes.Buffer
				require.NoError(t, s.SignStream(&got, bytes.NewReader(doc), size))
				assert.Equal(t, want, got.Bytes())
			})
		}
	}
}

// TestSignStreamLarge: a document above bufferAbove is streamed; the attached signature is
// BER with indefinite outer lengths and every reader here and OpenSSL accept both kinds,
// and catch a changed document.
func TestSignStreamLarge(t *testing.T) {
	bin := opensslPath(t)
	pki := newPKI(t, "StreamLarge")
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", certPEM(pki.root))
	const size = 3<<20 + 17
	doc := pseudoBytes(t, size, 11)
	docFile := writeFile(t, dir, "scan.pdf", doc)
	roots := poolOf(pki.root)

	for _, kind := range []string{kindRSA2048, kindP256, kindP384} {
		key := tokenKey(t, kind, "stream")
		cert := pki.issueNow(t, key.Public(), "Stream signer "+kind)
		for _, detached := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/detached=%v", kind, detached), func(t *testing.T) {
				s, err := NewSigner(key, cert, SignOptions{Detached: detached, Chain: []*x509.Certificate{pki.inter}})
				require.NoError(t, err)
				var sig bytes.Buffer
				require.NoError(t, s.SignStream(&sig, pseudoDoc(size, 11), size))
				assert.Less(t, sig.Len(), 8<<10+map[bool]int{false: size, true: 0}[detached])
				if !detached {
					assert.Equal(t, []byte{0x30, 0x80}, sig.Bytes()[:2], "streamed attached: indefinite length")
				}
				sigFile := writeFile(t, dir, kind+fmt.Sprint(detached)+".p7s", sig.Bytes())

				var content []byte
				var contentR io.Reader
				if detached {
					content, contentR = doc, bytes.NewReader(doc)
				}
				v, err := Verify(sig.Bytes(), content, VerifyOptions{Roots: roots})
				require.NoError(t, err)
				assert.True(t, v.OK(), "%v", v.Problems)
				v, err = VerifyReader(bytes.NewReader(sig.Bytes()), contentR, VerifyOptions{Roots: roots})
				require.NoError(t, err)
				assert.True(t, v.OK(), "%v", v.Problems)
				assert.Equal(t, detached, v.Detached)
				if !detached {
					assert.Equal(t, int64(size), v.ContentSize)
					assert.Nil(t, v.Content, "VerifyReader holds no content")
				}

				out := filepath.Join(dir, "out")
				args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
					"-CAfile", caFile, "-purpose", "any", "-out", out}
				if detached {
					args = append(args, "-content", docFile)
				}
				res, err := runOpenSSL(t, bin, args...)
				require.NoError(t, err, res)
				assert.Contains(t, res, "Verification successful")
				got, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(doc, got), "OpenSSL recovered the document")

				// One byte changed in the document: the content check fails.
				other := bytes.Clone(doc)
				other[size/2] ^= 1
				var tampered []byte
				var tamperedR io.Reader
				if detached {
					tampered, tamperedR = other, bytes.NewReader(other)
				} else {
					b := bytes.Clone(sig.Bytes())
					i := bytes.Index(b, doc[:64])
					require.Positive(t, i)
					b[i+size/2] ^= 1
					sig.Reset()
					sig.Write(b)
				}
				v, err = Verify(sig.Bytes(), tampered, VerifyOptions{Roots: roots})
				require.NoError(t, err)
				assert.False(t, v.ContentMatches)
				v, err = VerifyReader(bytes.NewReader(sig.Bytes()), tamperedR, VerifyOptions{Roots: roots})
				require.NoError(t, err)
				assert.False(t, v.ContentMatches)
				assert.False(t, v.OK())
			})
		}
	}
}

// TestVerifyReaderAgreesWithVerify: on OpenSSL's own streamed (BER, segmented content)
// output and on our DER, VerifyReader gives Verify's verdict.
func TestVerifyReaderAgreesWithVerify(t *testing.T) {
	bin := opensslPath(t)
	pki := newPKI(t, "Agree")
	dir := t.TempDir()
	k := rawKey(t, kindP256, "agree")
	c := pki.issueNow(t, k.Public(), "Agree signer")
	certF, keyF := writeFile(t, dir, "s.crt", certPEM(c)), writeFile(t, dir, "s.key", keyPEM(t, k))
	doc := pseudoBytes(t, 200_000, 3)
	docF := writeFile(t, dir, "doc", doc)
	roots := poolOf(pki.root)
	for _, extra := range [][]string{{"-stream"}, {"-stream", "-nodetach"}, {}, {"-nodetach"}, {"-noattr", "-nodetach", "-stream"}, {"-noattr"}} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			out := filepath.Join(dir, "o.p7s")
			args := append([]string{"cms", "-sign", "-binary", "-outform", "DER", "-in", docF,
				"-signer", certF, "-inkey", keyF, "-out", out}, extra...)
			res, err := runOpenSSL(t, bin, args...)
			require.NoError(t, err, res)
			sig, err := os.ReadFile(out)
			require.NoError(t, err)
			for _, content := range [][]byte{nil, doc, append(bytes.Clone(doc), 'x')} {
				want, werr := Verify(sig, content, VerifyOptions{Roots: roots})
				var r io.Reader
				if content != nil {
					r = bytes.NewReader(content)
				}
				got, gerr := VerifyReader(bytes.NewReader(sig), r, VerifyOptions{Roots: roots})
				require.Equal(t, werr == nil, gerr == nil, "%v / %v", werr, gerr)
				if werr != nil {
					continue
				}
				want.Content = nil
				want.Chain, got.Chain = nil, nil
				assert.Equal(t, want, got)
			}
		})
	}
}

// TestVerifyReaderMalformed: cut or padded messages are ErrMalformed, never a hang or panic.
func TestVerifyReaderMalformed(t *testing.T) {
	pki := newPKI(t, "Malformed")
	key := tokenKey(t, kindP256, "malformed")
	cert := pki.issueNow(t, key.Public(), "M")
	s, err := NewSigner(key, cert, SignOptions{})
	require.NoError(t, err)
	var big bytes.Buffer
	require.NoError(t, s.SignStream(&big, pseudoDoc(bufferAbove+100, 1), bufferAbove+100))
	small, err := s.Sign([]byte("order"))
	require.NoError(t, err)
	for name, sig := range map[string][]byte{"streamed": big.Bytes(), "der": small} {
		for _, cut := range []int{0, 1, 2, 10, 40, len(sig) / 2, len(sig) - 300, len(sig) - 1} {
			_, err := VerifyReader(bytes.NewReader(sig[:cut]), nil, VerifyOptions{})
			assert.ErrorIs(t, err, ErrMalformed, "%s cut at %d", name, cut)
		}
		_, err := VerifyReader(bytes.NewReader(append(bytes.Clone(sig), 0)), nil, VerifyOptions{})
		assert.ErrorIs(t, err, ErrMalformed, "%s with trailing data", name)
	}
}

// TestSignStreamSizeMismatch: a document that holds fewer or more bytes than announced (it
// changed while being read) is an error, never a signature.
func TestSignStreamSizeMismatch(t *testing.T) {
	pki := newPKI(t, "Mismatch")
	key := tokenKey(t, kindP256, "mismatch")
	cert := pki.issueNow(t, key.Public(), "M")
	for _, detached := range []bool{true, false} {
		s, err := NewSigner(key, cert, SignOptions{Detached: detached})
		require.NoError(t, err)
		for _, size := range []int64{100, 2 << 20} {
			for _, delta := range []int64{-1, 1} {
				err := s.SignStream(io.Discard, pseudoDoc(size+delta, 1), size)
				assert.True(t, errors.Is(err, errSizeChanged), "detached=%v size=%d delta=%d: %v", detached, size, delta, err)
			}
		}
		assert.Error(t, s.SignStream(io.Discard, pseudoDoc(1, 1), MaxStreamDocument+1))
	}
}

// TestSignStreamMemory: signing and verifying 64 MiB allocates a small fraction of that.
func TestSignStreamMemory(t *testing.T) {
	pki := newPKI(t, "Memory")
	key := tokenKey(t, kindP256, "memory")
	cert := pki.issueNow(t, key.Public(), "M")
	const size = 64 << 20
	for _, detached := range []bool{true, false} {
		s, err := NewSigner(key, cert, SignOptions{Detached: detached, Chain: []*x509.Certificate{pki.inter}})
		require.NoError(t, err)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		go func() { done <- s.SignStream(pw, pseudoDoc(size, 2), size); pw.Close() }()
		var content io.Reader
		if detached {
			content = pseudoDoc(size, 2)
		}
		v, err := VerifyReader(pr, content, VerifyOptions{Roots: poolOf(pki.root)})
		require.NoError(t, err)
		require.NoError(t, <-done)
		runtime.ReadMemStats(&after)
		assert.True(t, v.OK(), "%v", v.Problems)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "detached=%v: bytes allocated to sign and verify 64 MiB", detached)
	}
}
