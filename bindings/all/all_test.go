package all

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runtime/luadoc"
)

var update = flag.Bool("update", false, "rewrite the generated types goldens and docs/"+ReferenceFile)

// TestRegistry: every module registers when built with nil dependencies, so reading the
// metadata never needs (or panics on) a live token, front-end, journal or region.
func TestRegistry(t *testing.T) {
	reg, err := Registry()
	require.NoError(t, err)
	var names []string
	for _, m := range reg.Modules() {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"ca", "journal", "policy", "sign", "token", "ui"}, names)
}

// TestCodesCoverDocs: each code a Doc names is in the documented set.
func TestCodesCoverDocs(t *testing.T) {
	known := map[string]bool{}
	for _, c := range Codes() {
		known[c.Name] = true
	}
	for _, m := range Modules() {
		fs := m.Funcs
		for _, ty := range m.Types {
			fs = append(fs, ty.Methods...)
		}
		for _, f := range fs {
			for _, c := range luadoc.Codes(f) {
				assert.True(t, known[c], "%s.%s names %s, which Codes does not list", m.Name, f.Name, c)
			}
		}
	}
}

// TestTypes keeps testdata/types, the LuaLS definitions, in step with the bindings.
func TestTypes(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteTypes(dir)
	require.NoError(t, err)
	require.Len(t, files, len(Modules()))
	for _, f := range files {
		got, err := os.ReadFile(f)
		require.NoError(t, err)
		golden := filepath.Join("testdata", "types", filepath.Base(f))
		if *update {
			require.NoError(t, os.WriteFile(golden, got, 0o644))
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err, "run go test ./bindings/all -run TestTypes -update")
		assert.Equal(t, string(want), string(got), "%s is out of date: go test ./bindings/all -run TestTypes -update", golden)
	}
}

// TestDocs fails when docs/lua-reference.md no longer says what the bindings register.
func TestDocs(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteReference(&b))
	file := filepath.Join("..", "..", "docs", ReferenceFile)
	if *update {
		require.NoError(t, os.WriteFile(file, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "run go test ./bindings/all -run TestDocs -update")
	assert.Equal(t, string(want), b.String(), "docs/%s is out of date: go test ./bindings/all -run TestDocs -update (or tokenrun scripts docs --out docs)", ReferenceFile)
}
