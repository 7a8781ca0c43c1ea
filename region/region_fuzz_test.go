package region

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// fuzzTree is the shipped catalogs and default region, with the fuzzed file as regions/fuzz.yaml.
func fuzzTree(f *testing.F) fstest.MapFS {
	m := fstest.MapFS{}
	for _, pat := range []string{"regions/default.yaml", "messages/*.yaml"} {
		files, _ := fs.Glob(shipped, pat)
		for _, p := range files {
			b, err := fs.ReadFile(shipped, p)
			if err != nil {
				f.Fatal(err)
			}
			m[p] = &fstest.MapFile{Data: b}
		}
	}
	return m
}

// FuzzRegionFile: any region file loads or is refused with errors naming the file, quickly
// and without a panic.
func FuzzRegionFile(f *testing.F) {
	base := fuzzTree(f)
	if b, err := fs.ReadFile(shipped, "regions/default.yaml"); err == nil {
		f.Add(b)
	}
	seeds, _ := filepath.Glob("testdata/regions/*.yaml")
	for _, p := range seeds {
		if b, err := readFixture(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("subject: &a {O: x}\nvalidity: [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree := fstest.MapFS{}
		for k, v := range base {
			tree[k] = v
		}
		tree["regions/fuzz.yaml"] = &fstest.MapFile{Data: data}
		r, err := Load(tree, "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), "regions/") && !strings.Contains(err.Error(), "messages/") {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		_ = r.Map()
	})
}

// FuzzSet: any --set assignments apply or are refused without a panic, leaving the region
// as it was on refusal.
func FuzzSet(f *testing.F) {
	for _, s := range []string{
		"ca.url=https://127.0.0.1:8443", "password.min_length=8", "validity=[{id: 1y, years: 1}]",
		"messages.ru.enroll_done=Готово", "messages.xx.y=1", "key.type=ec", "ca.timeout=5s",
		"subject.O=ACME", "validity=[&a {id: x, years: 1}, *a]", "token.wait=0/0",
	} {
		f.Add(s, "key.curve=P-256")
	}
	r0, err := Load(shipped, "default")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.Contains(a, "ca.roots") || strings.Contains(b, "ca.roots") {
			return // reads a file: covered by the table tests
		}
		r := r0.clone()
		before := r.Map()
		if err := r.Set(a, b); err != nil {
			if len(r.Map()) != len(before) {
				t.Fatal("a refused Set changed the region")
			}
		}
	})
}

func readFixture(p string) ([]byte, error) { return os.ReadFile(p) }
