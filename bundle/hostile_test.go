package bundle

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVersionsAreSemVer: a version names an install directory; verify refuses anything but
// SemVer, before install could reach a path with it.
func TestVersionsAreSemVer(t *testing.T) {
	k := key(t)
	proc := []byte(`return { name = "a", version = "2.0.0", api = 1, description = "a", run = function() end }`)
	manifest := func(version, procVersion string) string {
		m := "version: '" + version + "'\napi: 1\nprocedures: {a: a.lua}\nfiles: {a.lua: " + sha256hex(proc) + "}\n"
		if procVersion != "" {
			m += "procedure_versions: {a: {version: '" + procVersion + "', api: 1}}\n"
		}
		return m
	}
	for _, tt := range []struct{ version, proc, want string }{
		{"3.0.0-x/../../../../evil", "", `version "3.0.0-x/../../../../evil" is not a semantic version`},
		{"3.0.0+../x", "", "is not a semantic version"},
		{"3.0.0-", "", "is not a semantic version"},
		{"3.0.0-rc..1", "", "is not a semantic version"},
		{"3.0.0-01", "", "is not a semantic version"},
		{"03.0.0", "", "is not a semantic version"},
		{"3.0.0-\u202etxt", "", `"3.0.0-\u202etxt" is not a semantic version`},
		{"3.0", "", "is not a semantic version"},
		{"+1.0.0", "", "is not a semantic version"},
		{"1.0.0-" + string(bytes.Repeat([]byte("a"), 80)), "", "is not a semantic version"},
		{"1.0.0", "1.0.0/../../x", `procedure "a" version "1.0.0/../../x", not a semantic version`},
		{"1.0.0-rc.1+build.5", "", ""},
		{"1.0.0-0.3.7", "2.0.0-alpha-1", ""},
	} {
		t.Run(tt.version, func(t *testing.T) {
			_, err := Verify(signed(t, k, manifest(tt.version, tt.proc), Files{"a.lua": proc}), Keyring{k.Public()}, "b")
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrContent)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// File names with terminal controls are shown escaped in every refusal.
func TestArchiveNamesAreEscaped(t *testing.T) {
	reg := func(name, data string) entry { return entry{hdr: tar.Header{Name: name}, data: data} }
	for _, name := range []string{"lib/\x1b]0;owned\x07.lua", "lib/a\nforged line.lua", "lib/\u202egnp.lua"} {
		_, err := Read(bytes.NewReader(rawArchive(t, reg(name, "x"), reg(name, "y"))))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), name)
		assert.NotContains(t, err.Error(), "\x1b")
		assert.NotContains(t, err.Error(), "\n")
	}
	k := key(t)
	proc := []byte(`return { name = "a", version = "2.0.0", api = 1, description = "a", run = function() end }`)
	m := "version: 1.0.0\napi: 1\nprocedures: {a: a.lua}\nfiles: {a.lua: " + sha256hex(proc) + "}\n"
	_, err := Verify(signed(t, k, m, Files{"a.lua": proc, "x\x1b[31m.lua": []byte("x")}), Keyring{k.Public()}, "b")
	require.ErrorIs(t, err, ErrContent)
	assert.Contains(t, err.Error(), `x\x1b[31m.lua is extra`)
}
