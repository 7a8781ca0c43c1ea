//go:build unix

package ui

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

// TestHostileAnswersFiles: each ends in an error naming the file (and line) when the file is
// loaded, before any prompt is asked and so before any token is touched.
func TestHostileAnswersFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(200_000_000))
	f.Close()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	var bomb strings.Builder
	bomb.WriteString("base: &a\n")
	for i := range 3000 {
		fmt.Fprintf(&bomb, "  - v%d\n", i)
	}
	bomb.WriteString("user_id: [" + strings.Repeat("*a, ", 999) + "*a]\n")

	for _, tt := range []struct {
		name, path, want string
	}{
		{"FIFO", fifo, "answers file " + fifo + " is not a regular file (it is a named pipe (FIFO))"},
		{"device", "/dev/zero", "answers file /dev/zero is not a regular file (it is a character device)"},
		{"200 MB", huge, "answers file " + huge + " is 200 MB, more than the 1 MiB an answers file may hold"},
		{"aliases", write("bomb.yaml", bomb.String()), "bomb.yaml:930: the YAML, with its aliases expanded, holds more than 100000 values and keys"},
		{"one huge answer", write("long.yaml", "user_id: "+strings.Repeat("x", 5000)+"\n"),
			"long.yaml:1: the answer for prompt 'user_id' is 5000 bytes, more than the 4096 an answer may hold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := LoadAnswers(tt.path, AnswersOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, time.Since(start), time.Second)
		})
	}
}
