package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriterCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.p7s")
	w, err := Create(p, 0o644, false)
	require.NoError(t, err)
	_, err = w.Write([]byte("one"))
	require.NoError(t, err)
	_, err = os.Stat(p)
	require.ErrorIs(t, err, fs.ErrNotExist, "nothing under the final name before Commit")
	require.NoError(t, w.Commit())
	b, _ := os.ReadFile(p)
	assert.Equal(t, "one", string(b))

	// Without replace an existing file stays; with it, it is replaced.
	w, err = Create(p, 0o644, false)
	require.NoError(t, err)
	w.Write([]byte("two"))
	require.ErrorIs(t, w.Commit(), fs.ErrExist)
	w, err = Create(p, 0o644, true)
	require.NoError(t, err)
	w.Write([]byte("three"))
	require.NoError(t, w.Commit())
	b, _ = os.ReadFile(p)
	assert.Equal(t, "three", string(b))

	w, err = Create(filepath.Join(dir, "b.p7s"), 0o644, false)
	require.NoError(t, err)
	w.Write([]byte("gone"))
	w.Abort()
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1, "no temporary file left behind")
}

func TestGroupReportsAfterFlushInOrder(t *testing.T) {
	dir := t.TempDir()
	g := NewGroup(3, time.Hour)
	var mu sync.Mutex
	var got []string
	for i := 0; i < 7; i++ {
		name := string(rune('a' + i))
		w, err := Create(filepath.Join(dir, name), 0o644, false)
		require.NoError(t, err)
		w.Write([]byte(name))
		require.NoError(t, g.Commit(w, func() { mu.Lock(); got = append(got, name); mu.Unlock() }))
		mu.Lock()
		// Reported in groups of three, never before the group's directory sync.
		assert.Equal(t, (i+1)/3*3, len(got), "after %d commits", i+1)
		mu.Unlock()
	}
	require.NoError(t, g.Close())
	assert.Equal(t, "abcdefg", strings.Join(got, ""))
}

func TestGroupTimerFlushes(t *testing.T) {
	g := NewGroup(1000, 10*time.Millisecond)
	w, err := Create(filepath.Join(t.TempDir(), "x"), 0o644, false)
	require.NoError(t, err)
	done := make(chan struct{})
	require.NoError(t, g.Commit(w, func() { close(done) }))
	<-done // the report comes without another Commit or Flush
	require.NoError(t, g.Close())
}

func TestGroupCommitFailure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	g := NewGroup(10, time.Hour)
	w, err := Create(p, 0o644, false)
	require.NoError(t, err)
	reported := false
	require.ErrorIs(t, g.Commit(w, func() { reported = true }), fs.ErrExist)
	require.NoError(t, g.Close())
	assert.False(t, reported)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1)
}
