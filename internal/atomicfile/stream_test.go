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
		require.NoError(t, g.Commit(w, func() {
			mu.Lock()
			defer mu.Unlock()
			// Reported only once on disk under its name.
			_, err := os.Stat(filepath.Join(dir, name))
			assert.NoError(t, err)
			got = append(got, name)
		}))
	}
	require.NoError(t, g.Close())
	assert.Equal(t, "abcdefg", strings.Join(got, ""), "all reported, in order, by Close")
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

// TestGroupCommitFailure: a name that cannot be placed stops the flush there: the files
// before it are reported, it and those after it are removed, and the error stays.
func TestGroupCommitFailure(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c"), []byte("old"), 0o644))
	g := NewGroup(10, time.Hour)
	var got []string
	for _, name := range []string{"a", "b", "c", "d"} {
		w, err := Create(filepath.Join(dir, name), 0o644, false)
		require.NoError(t, err)
		w.Write([]byte("new"))
		require.NoError(t, g.Commit(w, func() { got = append(got, name) }))
	}
	err := g.Close()
	require.ErrorIs(t, err, fs.ErrExist)
	assert.Contains(t, err.Error(), filepath.Join(dir, "c"))
	assert.Equal(t, []string{"a", "b"}, got)
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"a", "b", "c"}, names, "d removed, no temporary file left")
	b, _ := os.ReadFile(filepath.Join(dir, "c"))
	assert.Equal(t, "old", string(b))

	require.ErrorIs(t, g.Flush(), fs.ErrExist, "the error stays")
}

// TestGroupManyFiles: a flush of many files (the syncfs path on Linux) in two directories
// places and reports them all.
func TestGroupManyFiles(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	g := NewGroup(1000, time.Hour)
	n := 0
	for i := range 40 {
		w, err := Create(filepath.Join(dirs[i%2], string(rune('A'+i))), 0o644, i%3 == 0)
		require.NoError(t, err)
		w.Write([]byte{byte(i)})
		require.NoError(t, g.Commit(w, func() { n++ }))
	}
	require.NoError(t, g.Close())
	assert.Equal(t, 40, n)
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		assert.Len(t, entries, 20, "no temporary file left in %s", d)
	}
}
