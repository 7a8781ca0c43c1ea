package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// FuzzLoadPKCS12Bytes: any bytes open or are refused with a *ContainerError of one of the
// three kinds, without a panic, and within the KDF bounds (a second or two, never minutes).
func FuzzLoadPKCS12Bytes(f *testing.F) {
	if b, err := os.ReadFile(gostFixture); err == nil {
		f.Add(b)
	}
	pki := newTestPKI(f, time.Now().AddDate(1, 0, 0))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	cert := pki.leaf(f, key.Public(), time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	for _, enc := range []*pkcs12.Encoder{pkcs12.Modern.WithIterations(2), pkcs12.LegacyDES.WithIterations(2), pkcs12.Modern2023.WithIterations(2)} {
		if b, err := enc.Encode(key, cert, nil, testPIN); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		_, err := LoadPKCS12Bytes(data, testPIN)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		if err == nil {
			return
		}
		var ce *ContainerError
		if !errors.As(err, &ce) {
			t.Fatalf("not a ContainerError: %v", err)
		}
		if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrDamagedContainer) && !errors.Is(err, ErrUnsupportedContainer) {
			t.Fatalf("no kind: %v", err)
		}
	})
}
