package cms

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzVerify: whatever the input, Verify returns a verdict or an error naming the problem,
// and never panics. Seeded with good signatures, attached and detached, so mutations start
// from real structure.
func FuzzVerify(f *testing.F) {
	pki := newPKI(f, "Fuzz")
	key := tokenKey(f, kindP256, "signer")
	cert := pki.issueNow(f, key.Public(), "Fuzz signer")
	for _, detached := range []bool{false, true} {
		sig, err := Sign([]byte("payment order 1"), key, cert, SignOptions{Detached: detached, Time: time.Now()})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sig, detached)
	}
	// A BER form: indefinite lengths and a constructed OCTET STRING.
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
		0xa0, 0x80, 0x24, 0x80, 0x04, 0x01, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, false)
	opts := VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter)}
	f.Fuzz(func(t *testing.T, sig []byte, detached bool) {
		var content []byte
		if detached {
			content = []byte("payment order 1")
		}
		v, err := Verify(sig, content, opts)
		if err != nil {
			if v != nil {
				t.Fatalf("verdict and error together: %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupported: %v", err)
			}
			return
		}
		if v == nil {
			t.Fatal("no verdict and no error")
		}
		if v.OK() && len(v.Problems) > 0 {
			t.Fatalf("OK with problems: %q", v.Problems)
		}
		if !v.OK() && v.Err() == nil {
			t.Fatal("not OK but Err is nil")
		}
	})
}

// FuzzVerifyReader: the streaming reader never panics, and every error it returns wraps
// ErrMalformed or ErrUnsupported, as Verify's do; when Verify accepts a DER message's
// structure, so does VerifyReader, with the same answer to OK.
func FuzzVerifyReader(f *testing.F) {
	pki := newPKI(f, "FuzzStream")
	key := tokenKey(f, kindP256, "signer")
	cert := pki.issueNow(f, key.Public(), "Fuzz signer")
	for _, detached := range []bool{false, true} {
		sig, err := Sign([]byte("payment order 1"), key, cert, SignOptions{Detached: detached, Time: time.Now()})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sig, detached)
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
		0xa0, 0x80, 0x24, 0x80, 0x04, 0x01, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, false)
	opts := VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter)}
	f.Fuzz(func(t *testing.T, sig []byte, detached bool) {
		var content []byte
		var r io.Reader
		if detached {
			content = []byte("payment order 1")
			r = bytes.NewReader(content)
		}
		v, err := VerifyReader(bytes.NewReader(sig), r, opts)
		if err != nil {
			if v != nil {
				t.Fatalf("verdict and error together: %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupported: %v", err)
			}
			return
		}
		if v == nil {
			t.Fatal("no verdict and no error")
		}
		if w, werr := Verify(sig, content, opts); werr == nil && w.OK() != v.OK() {
			t.Fatalf("Verify says OK=%v, VerifyReader OK=%v", w.OK(), v.OK())
		}
	})
}
