package scripts

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedSetLoads(t *testing.T) {
	s, err := Embedded()
	require.NoError(t, err)
	assert.Equal(t, "embedded", s.Source)
	assert.Contains(t, s.Names(), "tour")
	for name := range s.Manifest.Procedures {
		assert.NotNil(t, s.Procedures[name], name)
	}
}

func TestLoadErrors(t *testing.T) {
	ok := "version: 1.0.0\napi: 1\nprocedures: {a: a.lua}\n"
	tests := []struct {
		name string
		fs   fstest.MapFS
		err  string
	}{
		{"no manifest", fstest.MapFS{}, "manifest.yaml"},
		{"unknown key", fstest.MapFS{"manifest.yaml": {Data: []byte(ok + "extra: 1\n")}}, "field extra not found"},
		{"api too new", fstest.MapFS{"manifest.yaml": {Data: []byte("version: 2.0.0\napi: 99\nprocedures: {a: a.lua}\n")}}, "need script API 99"},
		{"missing procedure file", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}}, "procedure a"},
		{"syntax error names the file", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return {")}}, "a.lua:"},
		{"library syntax error", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return 1")},
			"lib/x.lua": {Data: []byte("local = 1")}}, "lib/x.lua:1:"},
		// Source that would crash gopher-lua's compiler is refused before it,
		// so a signed bundle carrying it fails pack, verify and install cleanly.
		{"hostile procedure", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)},
			"a.lua": {Data: []byte("return " + strings.Repeat("not ", 250000) + "true")}}, "a.lua:1: nesting too deep"},
		{"hostile library", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return 1")},
			"lib/x.lua": {Data: []byte("return " + strings.Repeat("{", 500000))}}, "lib/x.lua:1: nesting too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.fs, "test")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	s, err := Load(fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return 1")},
		"lib/policy.lua": {Data: []byte("return {}")}}, "test")
	require.NoError(t, err)
	assert.Contains(t, s.Libraries, "lib.policy")
}

// The digest names the scripts' content: a copy has the same, a changed byte another, and
// the manifest (which a signed bundle rewrites with its hashes) does not count.
func TestDigest(t *testing.T) {
	embedded, err := Embedded()
	require.NoError(t, err)
	require.Len(t, embedded.Digest, 64)

	copyWith := func(edit func(fstest.MapFS)) string {
		t.Helper()
		m := fstest.MapFS{}
		require.NoError(t, fs.WalkDir(FS, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(FS, name)
			m[name] = &fstest.MapFile{Data: data}
			return err
		}))
		edit(m)
		s, err := Load(m, "copy")
		require.NoError(t, err)
		return s.Digest
	}
	tests := []struct {
		name string
		edit func(fstest.MapFS)
		same bool
	}{
		{"a copy", func(fstest.MapFS) {}, true},
		{"a manifest comment", func(m fstest.MapFS) {
			m["manifest.yaml"].Data = append([]byte("# signed bundle\n"), m["manifest.yaml"].Data...)
		}, true},
		{"one byte of a procedure", func(m fstest.MapFS) {
			m["change_pin.lua"].Data = append(append([]byte{}, m["change_pin.lua"].Data...), ' ')
		}, false},
		{"a region's value", func(m fstest.MapFS) {
			m["regions/default.yaml"].Data = []byte(strings.Replace(string(m["regions/default.yaml"].Data), "wait: 60s", "wait: 61s", 1))
		}, false},
		{"one more file", func(m fstest.MapFS) { m["notes.txt"] = &fstest.MapFile{Data: []byte("x")} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.same, copyWith(tt.edit) == embedded.Digest)
		})
	}
}
