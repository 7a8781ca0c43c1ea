//go:build unix

package ca

import (
	"bytes"
	"encoding/asn1"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"
)

var (
	oidHMACSHA256Alg = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// kdfPFX is a container shaped like a real AES/PBKDF2 one whose MAC and PBKDF2 ask for the
// given iteration counts. Its encrypted part is filler: the check comes before decryption.
func kdfPFX(t *testing.T, macIter, kdfIter int) []byte { return kdfPFXSafes(t, macIter, kdfIter, 1) }

// kdfPFXSafes is kdfPFX with n encrypted safes, each with its own PBKDF2.
func kdfPFXSafes(t *testing.T, macIter, kdfIter, n int) []byte {
	t.Helper()
	pbkdf2Params := mustMarshal(t, struct {
		Salt       []byte
		Iterations int
		PRF        fxAlg
	}{filler("kdf-salt", 16), kdfIter, fxAlg{Algorithm: oidHMACSHA256Alg, Parameters: asn1.NullRawValue}})
	pbes2Params := mustMarshal(t, struct {
		KDF fxAlg
		Enc fxAlg
	}{
		fxAlg{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: pbkdf2Params}},
		fxAlg{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: octets(t, filler("iv", 16))}},
	})
	encData := mustMarshal(t, fxEncryptedData{Version: 0, Info: fxEncryptedContentInfo{
		ContentType: oidPKCS7Data,
		Algorithm:   fxAlg{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: pbes2Params}},
		Content:     filler("encrypted-safe", 512),
	}})
	var safes []fxContentInfo
	for range n {
		safes = append(safes, fxContentInfo{ContentType: oidEncryptedData, Content: explicit(t, encData)})
	}
	authSafe := mustMarshal(t, safes)
	var mac fxMacData
	mac.Mac.Algorithm = fxAlg{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}
	mac.Mac.Digest = filler("mac", 32)
	mac.Salt = filler("mac-salt", 16)
	mac.Iterations = macIter
	return mustMarshal(t, fxPFX{
		Version:  3,
		AuthSafe: fxContentInfo{ContentType: oidPKCS7Data, Content: explicit(t, octets(t, authSafe))},
		MacData:  mac,
	})
}

// patchIterations replaces every 3-byte INTEGER equal to 65536 (the count the container was
// made with) by 8,388,607, keeping every length as it was.
func patchIterations(t *testing.T, der []byte, first bool) []byte {
	old, repl := []byte{2, 3, 1, 0, 0}, []byte{2, 3, 0x7f, 0xff, 0xff}
	require.True(t, bytes.Contains(der, old))
	if first {
		return bytes.Replace(der, old, repl, 1)
	}
	return bytes.ReplaceAll(der, old, repl)
}

func TestLoadPKCS12RefusesUnboundedKDFWork(t *testing.T) {
	pki := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	key, cert := keyAndCert(t, pki, "ecdsa")
	modern, err := pkcs12.Modern.WithIterations(65536).Encode(key, cert, nil, testPIN)
	require.NoError(t, err)
	legacy, err := pkcs12.LegacyDES.WithIterations(65536).Encode(key, cert, nil, testPIN)
	require.NoError(t, err)
	_, err = LoadPKCS12Bytes(modern, testPIN)
	require.NoError(t, err, "65,536 iterations is a real container")

	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"MAC of 50 million", kdfPFX(t, 50_000_000, 2048), "its MAC asks for 50000000 iterations, more than the 1000000"},
		{"MAC of 2^31-1", kdfPFX(t, 1<<31-1, 2048), "its MAC asks for 2147483647 iterations"},
		{"PBKDF2 of 2^31-1", kdfPFX(t, 2048, 1<<31-1), "its PBKDF2 asks for 2147483647 iterations"},
		{"PBKDF2 of 2^62", kdfPFX(t, 2048, 1<<62), "its PBKDF2 asks for 4611686018427387904 iterations"},
		{"negative", kdfPFX(t, -5, 2048), ""},
		{"zero", kdfPFX(t, 2048, 0), ""},
		{"a million each: within the bounds, then the MAC fails", kdfPFX(t, 1_000_000, 1_000_000), "password does not open"},
		{"each under, together over", kdfPFXSafes(t, 1_000_000, 1_000_000, 3), "ask for 4000000 iterations in all, more than the 3000000"},
		{"go-pkcs12 Modern, MAC patched", patchIterations(t, modern, true), "iterations, more than"},
		{"go-pkcs12 Modern, all patched", patchIterations(t, modern, false), "iterations, more than"},
		{"go-pkcs12 LegacyDES (PKCS#12 PBE), all patched", patchIterations(t, legacy, false), "iterations, more than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := LoadPKCS12Bytes(tt.data, testPIN)
			require.Error(t, err)
			if tt.want != "" {
				assert.Contains(t, err.Error(), tt.want)
			}
			assert.Less(t, time.Since(start), 2*time.Second)
		})
	}

}

func TestLoadPKCS12NotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "Key.pfx")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "video.pfx")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(700_000_000))
	f.Close()
	for path, want := range map[string]string{
		fifo:        fifo + ": the key container is damaged or is not a PKCS#12 (.pfx) file: it is not a regular file (it is a named pipe (FIFO)): check that the right file was chosen",
		"/dev/zero": "/dev/zero: the key container is damaged or is not a PKCS#12 (.pfx) file: it is not a regular file (it is a character device)",
		big:         "it is 700 MB, more than the 1 MiB a key container may hold",
	} {
		start := time.Now()
		_, err := LoadPKCS12(path, testPIN)
		require.ErrorIs(t, err, ErrDamagedContainer)
		assert.Contains(t, err.Error(), want)
		assert.Less(t, time.Since(start), time.Second)
	}
}
