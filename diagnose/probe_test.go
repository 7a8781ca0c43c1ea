package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On Windows, diagnose finds the drivers' DLLs where their installers put them, under the
// folders Windows names by variable: here a fake root stands in for C:\.
func TestKnownModulesWindows(t *testing.T) {
	root := t.TempDir()
	env := map[string]string{
		"SystemRoot":        filepath.Join(root, "Windows"),
		"ProgramFiles":      filepath.Join(root, "Program Files"),
		"ProgramFiles(x86)": filepath.Join(root, "Program Files (x86)"),
	}
	installed := map[string]string{ // path under root -> the name diagnose gives it
		"Windows/System32/eTPKCS11.dll":                                "SafeNet eToken",
		"Windows/SysWOW64/jcPKCS11-2.dll":                              "JaCarta (32-bit)",
		"Windows/System32/rtPKCS11ECP.dll":                             "Rutoken",
		"Program Files/OpenSC Project/OpenSC/pkcs11/opensc-pkcs11.dll": "OpenSC",
		"Program Files (x86)/KAZTOKEN/kztoken.dll":                     "KAZTOKEN (guessed name)",
		"Program Files/Kaztoken/KZ_PKCS11.dll":                         "KAZTOKEN (guessed name)",
	}
	for p := range installed {
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte("MZ"), 0o644))
	}
	// Neither a folder with a DLL's name nor a DLL elsewhere counts.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "Windows", "System32", "opensc-pkcs11.dll"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "Windows", "eTPKCS11.dll"), []byte("MZ"), 0o644))

	cands := KnownModules("windows", "amd64", func(k string) string { return env[k] })
	got := map[string]string{}
	for _, c := range present(cands) {
		rel, err := filepath.Rel(root, c.Path)
		require.NoError(t, err)
		got[filepath.ToSlash(rel)] = c.Name
	}
	assert.Equal(t, installed, got)
	for _, c := range cands {
		assert.True(t, strings.HasPrefix(c.Path, root) || strings.HasPrefix(c.Path, `C:\SoftHSM2`), "%s is under the folders the variables name", c.Path)
	}
}

// Without the variables (a stripped environment), the Windows defaults are used.
func TestKnownModulesWindowsDefaults(t *testing.T) {
	cands := KnownModules("windows", "amd64", func(string) string { return "" })
	var paths []string
	for _, c := range cands {
		paths = append(paths, c.Path)
	}
	assert.Contains(t, paths, filepath.Join(`C:\Windows`, "System32", "eTPKCS11.dll"))
	assert.Contains(t, paths, filepath.Join(`C:\Program Files`, "OpenSC Project", "OpenSC", "pkcs11", "opensc-pkcs11.dll"))
	assert.Contains(t, paths, filepath.Join(`C:\Program Files (x86)`, "KAZTOKEN", "kztoken.dll"))
}

// On Linux the list follows the architecture's multiarch folder, and keeps the Debian paths
// support has always been given.
func TestKnownModulesUnix(t *testing.T) {
	paths := func(goos, goarch string) []string {
		var p []string
		for _, c := range KnownModules(goos, goarch, os.Getenv) {
			p = append(p, c.Path)
		}
		return p
	}
	amd64 := paths("linux", "amd64")
	for _, p := range []string{
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so",
		"/usr/lib/opencryptoki/libopencryptoki.so",
		"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
		"/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
		"/usr/lib64/pkcs11/opensc-pkcs11.so",
	} {
		assert.Contains(t, amd64, p)
	}
	arm64 := paths("linux", "arm64")
	assert.Contains(t, arm64, "/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so")
	for _, p := range arm64 {
		assert.NotContains(t, p, "x86_64", "an arm64 tokenrun cannot load an amd64 module")
	}
	assert.Contains(t, paths("darwin", "arm64"), "/Library/OpenSC/lib/opensc-pkcs11.so")
	for _, goos := range []string{"linux", "darwin", "freebsd"} {
		for _, p := range paths(goos, "arm64") {
			assert.True(t, strings.HasPrefix(p, "/"), "%s: %s", goos, p)
			assert.NotContains(t, p, ".dll")
		}
	}
}
