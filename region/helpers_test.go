package region

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

// shipped is the scripts tree as the repository has it; absolute, so tests that change
// folder still find it.
var shipped = os.DirFS(must(filepath.Abs("../scripts")))

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// tree is the shipped regions and catalogs plus every fixture of testdata/regions and extra
// files, as one scripts tree.
func tree(t *testing.T, extra map[string][]byte) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	for _, pat := range []string{"regions/*.yaml", "messages/*.yaml"} {
		files, err := fs.Glob(shipped, pat)
		require.NoError(t, err)
		for _, f := range files {
			b, err := fs.ReadFile(shipped, f)
			require.NoError(t, err)
			m[f] = &fstest.MapFile{Data: b}
		}
	}
	fixtures, err := filepath.Glob("testdata/regions/*")
	require.NoError(t, err)
	for _, f := range fixtures {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		m["regions/"+filepath.Base(f)] = &fstest.MapFile{Data: b}
	}
	for k, v := range extra {
		m[k] = &fstest.MapFile{Data: v}
	}
	return m
}

// rootPEM is a fresh self-signed CA certificate in PEM, standing in for a CA's roots file.
func rootPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// fixtureTree is tree with the files the fixtures' ca.roots name.
func fixtureTree(t *testing.T) fstest.MapFS {
	t.Helper()
	return tree(t, map[string][]byte{
		"regions/almaty-roots.pem": rootPEM(t),
		"regions/not-pem.txt":      []byte("not a certificate\n"),
	})
}

// errorLines is an error's message split into its lines (an Errors has one per problem).
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	var es Errors
	if e, ok := err.(Errors); ok {
		es = e
	} else {
		return []string{err.Error()}
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}
