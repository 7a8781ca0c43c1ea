//go:build unix

package region

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileRegionFiles: region files and --set values made to cost memory or time end in
// an error naming the file and line, quickly.
func TestHostileRegionFiles(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("subject: &a\n")
	for i := range 3000 {
		fmt.Fprintf(&bomb, "  K%d: v\n", i)
	}
	bomb.WriteString("validity:\n")
	for range 3000 {
		bomb.WriteString("  - *a\n")
	}
	big := "language: ru\n" + strings.Repeat("# padding\n", 110_000)
	for _, tt := range []struct {
		name, file, want string
	}{
		{"anchor used 3000 times holding 3000 keys", bomb.String(),
			"regions/hostile.yaml:1983: the YAML, with its aliases expanded, holds more than 100000 values and keys"},
		{"over the size cap", big, "regions/hostile.yaml: region file regions/hostile.yaml is 1.1 MB, more than the 1 MiB a region file may hold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Load(tree(t, map[string][]byte{"regions/hostile.yaml": []byte(tt.file)}), "hostile")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

func TestHostileRoots(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "roots.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	bigRoots := filepath.Join(dir, "big.pem")
	f, err := os.Create(bigRoots)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(3<<30))
	f.Close()
	for _, tt := range []struct {
		set, want string
	}{
		{"ca.roots=/dev/zero", "--set ca.roots: cannot read the root certificates: ca.roots /dev/zero is not a regular file (it is a character device)"},
		{"ca.roots=" + fifo, "is not a regular file (it is a named pipe (FIFO))"},
		{"ca.roots=" + dir, "is not a regular file (it is a directory)"},
		{"ca.roots=" + bigRoots, "is 3 GiB, more than the 1 MiB a ca.roots may hold"},
		{"ca.roots=/etc", "is not a regular file (it is a directory)"},
	} {
		t.Run(tt.set, func(t *testing.T) {
			start := time.Now()
			r := loadDefault(t)
			err := r.Set("ca.url=https://127.0.0.1:8443", tt.set)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, time.Since(start), time.Second, "must not block on a FIFO")
		})
	}
	// In a region file, an absolute path is read from disk the same way.
	_, err = Load(tree(t, map[string][]byte{"regions/zero.yaml": []byte("ca:\n  url: https://127.0.0.1:8443\n  roots: /dev/zero\n")}), "zero")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "regions/zero.yaml:3: ca.roots: cannot read the root certificates: ca.roots /dev/zero is not a regular file")
}

// A --set with a language that is not one is blamed on --set, not on the line of the
// default region where messages: starts.
func TestSetMessagesOfUnknownLanguageBlamesSet(t *testing.T) {
	r := loadDefault(t)
	err := r.Set("messages.xx.y=1")
	require.Error(t, err)
	assert.Equal(t, []string{`--set messages.xx: "xx" is not a language: use kk, ru or en`}, errorLines(err))
}

func TestSetValueAliasBomb(t *testing.T) {
	r := loadDefault(t)
	v := "[" + strings.Repeat("&a [x, x, x, x, x, x, x, x], ", 1) + strings.Repeat("*a, ", 900) + "*a]"
	start := time.Now()
	err := r.Set("validity=" + v)
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Second)
}
