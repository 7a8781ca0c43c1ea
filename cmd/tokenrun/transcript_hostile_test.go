//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/transcript"
)

// withHeader rewrites a transcript's header.
func withHeader(t *testing.T, raw []byte, edit func(*transcript.Header)) []byte {
	t.Helper()
	first, rest, _ := bytes.Cut(raw, []byte("\n"))
	var h transcript.Header
	require.NoError(t, json.Unmarshal(first, &h))
	edit(&h)
	b, err := json.Marshal(h)
	require.NoError(t, err)
	return append(append(b, '\n'), rest...)
}

// TestReplayNeverOpensPathsTheTranscriptNames: the roots come from the transcript; a path in
// its header (/etc/shadow, a FIFO that would hang) is never opened.
func TestReplayNeverOpensPathsTheTranscriptNames(t *testing.T) {
	_, file := recordEnroll(t)
	h, _, _, raw := readTranscript(t, file)
	require.Contains(t, h.CARoots, "-----BEGIN CERTIFICATE-----", "the roots' content is recorded")
	var roots string
	for _, kv := range h.Set {
		if v, ok := strings.CutPrefix(kv, "ca.roots="); ok {
			roots = v
		}
	}
	require.True(t, filepath.IsAbs(roots), "ca.roots is recorded with an absolute path: %v", h.Set)

	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, tt := range []struct {
		name string
		edit func(*transcript.Header)
		ok   bool
		note string
	}{
		{"names /etc/shadow", func(h *transcript.Header) { h.Set = append(h.Set, "ca.roots=/etc/shadow") }, true, ""},
		{"names a FIFO", func(h *transcript.Header) { h.Set = append(h.Set, "ca.roots="+fifo) }, true, ""},
		{"names a FIFO and has no roots", func(h *transcript.Header) {
			h.Set = append(h.Set, "ca.roots="+fifo)
			h.CARoots = ""
		}, false, "does not open that file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(tt.name)+".jsonl")
			require.NoError(t, os.WriteFile(f, withHeader(t, raw, tt.edit), 0o600))
			start := time.Now()
			r := tokenrun(t, "", "replay", f)
			assert.Less(t, time.Since(start), 20*time.Second)
			if tt.ok {
				require.Equal(t, runner.ExitOK, r.code, r.err)
			}
			assert.Contains(t, r.err, tt.note)
			assert.NotContains(t, r.err, "shadow: permission")
		})
	}
}

func TestReplayRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "t.jsonl")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	long := filepath.Join(dir, "long.jsonl")
	require.NoError(t, os.WriteFile(long, []byte(`{"kind":"header","format":2,"x":"`+strings.Repeat("x", transcript.MaxLine+10)+`"}`+"\n"), 0o600))
	for path, want := range map[string]string{
		fifo:        "transcript " + fifo + " is not a regular file (it is a named pipe (FIFO))",
		"/dev/zero": "transcript /dev/zero is not a regular file",
		long:        "transcript line 1 is longer than the 8388608 bytes a line may hold",
	} {
		start := time.Now()
		r := tokenrun(t, "", "replay", path)
		assert.Equal(t, runner.ExitUsage, r.code, r.err)
		assert.Contains(t, r.err, want)
		assert.Less(t, time.Since(start), 5*time.Second)
	}
}
