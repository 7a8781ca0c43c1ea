package bundle

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenrun/tokenrun/scripts"
)

// FuzzReadVerify: any archive is read or refused, quickly and without a panic; one that
// reads is verified with its manifest re-signed by a trusted key, so the fuzzer reaches the
// manifest, the hashes and the loading of the tree, what a bank's own hostile bundle would.
// Whatever verifies has a SemVer version and only clean paths.
func FuzzReadVerify(f *testing.F) {
	k, err := GenerateKey("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	dir := filepath.Join(f.TempDir(), "tree")
	if err := os.CopyFS(dir, scripts.FS); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Pack(dir, k, &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	small := Files{
		"manifest.yaml": []byte("version: 1.0.0\napi: 1\nprocedures: {a: a.lua}\nfiles: {a.lua: " +
			sha256hex([]byte("return {}")) + "}\n"),
		"a.lua": []byte("return {}"),
	}
	small["manifest.sig"] = ed25519.Sign(k.Key, small["manifest.yaml"])
	buf.Reset()
	if err := writeArchive(&buf, small); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	keys := Keyring{k.Public()}
	f.Fuzz(func(t *testing.T, archive []byte) {
		files, err := Read(bytes.NewReader(archive))
		if err != nil {
			return
		}
		if m, ok := files[manifestName]; ok {
			files[signatureName] = ed25519.Sign(k.Key, m)
		}
		b, err := Verify(files, keys, "fuzz.bundle")
		if err != nil {
			return
		}
		if !scripts.IsVersion(b.Manifest.Version) {
			t.Fatalf("verified a bundle of version %q", b.Manifest.Version)
		}
		for name := range b.Files {
			if checkPath(name) != nil {
				t.Fatalf("verified a bundle holding %q", name)
			}
		}
	})
}
