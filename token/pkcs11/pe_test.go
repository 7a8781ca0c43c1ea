//go:build cgo

package pkcs11

import (
	"debug/pe"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePE is the smallest file debug/pe reads: a DOS header pointing at a PE signature and a
// COFF header with no sections, for machine and characteristics.
func fakePE(t *testing.T, machine, characteristics uint16) string {
	t.Helper()
	const at = 0x80 // debug/pe reads a 96-byte DOS header first
	b := make([]byte, at+4+20)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], at) // e_lfanew
	copy(b[at:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[at+4:], machine)
	binary.LittleEndian.PutUint16(b[at+4+18:], characteristics)
	path := filepath.Join(t.TempDir(), "module.dll")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// checkPE is what a Windows client reads when --module names the wrong file; it runs on any
// host, so it is tested here with the machine this test runs on as tokenrun's.
func TestCheckPE(t *testing.T) {
	if _, ok := peMachines[machineOf(runtime.GOARCH)]; !ok {
		t.Skipf("no Windows build for %s", runtime.GOARCH)
	}
	other := uint16(pe.IMAGE_FILE_MACHINE_I386)
	if runtime.GOARCH == "386" {
		other = pe.IMAGE_FILE_MACHINE_AMD64
	}
	dll := uint16(pe.IMAGE_FILE_DLL | pe.IMAGE_FILE_EXECUTABLE_IMAGE)
	text := filepath.Join(t.TempDir(), "readme.dll")
	require.NoError(t, os.WriteFile(text, []byte("not a library"), 0o644))

	tests := []struct {
		name string
		path string
		want []string // "" means accepted
	}{
		{"this machine's DLL", fakePE(t, machineOf(runtime.GOARCH), dll), nil},
		{"another machine's DLL", fakePE(t, other, dll), []string{"the library is built for", "but this tokenrun is " + peMachines[machineOf(runtime.GOARCH)].name}},
		{"an exe", fakePE(t, machineOf(runtime.GOARCH), pe.IMAGE_FILE_EXECUTABLE_IMAGE), []string{"not a DLL", ".dll file"}},
		{"not PE at all", text, []string{"not a PE file", ".dll file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkPE(tt.path)
			if tt.want == nil {
				assert.Empty(t, got)
			}
			for _, w := range tt.want {
				assert.Contains(t, got, w)
			}
		})
	}
	if runtime.GOARCH == "amd64" {
		assert.Contains(t, checkPE(fakePE(t, pe.IMAGE_FILE_MACHINE_I386, dll)), "SysWOW64",
			"a 32-bit DLL given to a 64-bit tokenrun says where the 64-bit one usually is")
	}
}

// Each system's words name its own kind of library: a Windows client told about ".so files"
// and ldd is lost.
func TestLibraryKinds(t *testing.T) {
	for _, tt := range []struct{ goos, ext, deps string }{
		{"linux", ".so", "ldd"},
		{"windows", ".dll", "driver is installed"},
		{"darwin", ".dylib", "otool -L"},
	} {
		t.Run(tt.goos, func(t *testing.T) {
			k := libraryKinds(tt.goos)
			assert.Equal(t, tt.ext, k.ext)
			assert.Contains(t, k.depsHint("/x/m"+tt.ext), tt.deps)
			assert.NotEmpty(t, k.where)
		})
	}
}
