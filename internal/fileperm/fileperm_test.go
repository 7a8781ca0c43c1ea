package fileperm

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOthersMayRead(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		unix bool // the answer where mode bits mean something
	}{
		{0o600, false},
		{0o400, false},
		{0o700, false},
		{0o640, true},
		{0o604, true},
		{0o644, true},
		{0o666, true}, // what Go reports for every writable file on Windows
		{0o620, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			assert.Equal(t, tt.unix && modeBits, OthersMayRead(tt.mode))
			assert.Equal(t, tt.unix && modeBits, OthersMayRead(tt.mode|fs.ModeDir), "the type bits do not count")
		})
	}

	assert.Equal(t, runtime.GOOS != "windows", modeBits, "Windows has ACLs, not mode bits")

	// A file tokenrun writes 0600 is never reported, on any system.
	path := filepath.Join(t.TempDir(), "pin.txt")
	require.NoError(t, os.WriteFile(path, []byte("12345678\n"), 0o600))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.False(t, OthersMayRead(st.Mode()))
}
