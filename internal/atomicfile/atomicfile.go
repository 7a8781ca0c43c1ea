// Package atomicfile writes files so that a crash leaves either the old content or the new,
// never a part: a temporary file in the same directory, synced, then renamed (or linked)
// into place, then the directory synced so the rename itself survives.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// pending holds the temporary files being written now, so that a process stopping at once
// (a second Ctrl-C) can remove them: the normal paths remove their own.
var pending = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

func track(name string) {
	pending.Lock()
	pending.names[name] = true
	pending.Unlock()
}

func untrack(name string) {
	pending.Lock()
	delete(pending.names, name)
	pending.Unlock()
}

// RemoveTemps removes every temporary file a write in progress has made and returns how
// many it removed. It is for a process about to exit at once: a write it interrupts keeps the
// old content, as after a crash, and leaves nothing behind. It holds the registry's lock
// until it returns, so call it last.
func RemoveTemps() int {
	pending.Lock()
	n := 0
	for name := range pending.names {
		if os.Remove(name) == nil {
			n++
		}
	}
	pending.names = map[string]bool{}
	// Left locked on purpose: a writer that finishes now cannot register another file.
	return n
}

// WriteFile replaces path atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileFrom(path, bytes.NewReader(data), perm)
}

// WriteFileFrom is WriteFile for content read from r (a large file, streamed).
func WriteFileFrom(path string, r io.Reader, perm os.FileMode) error {
	tmp, err := writeTemp(path, r, perm)
	if err != nil {
		return err
	}
	defer untrack(tmp)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// WriteNew creates path atomically and fails with an error wrapping fs.ErrExist if it
// exists: link(2) never replaces a file, unlike rename(2). For what must never be lost.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return WriteNewFrom(path, bytes.NewReader(data), perm)
}

// WriteNewFrom is WriteNew for content read from r.
func WriteNewFrom(path string, r io.Reader, perm os.FileMode) error {
	tmp, err := writeTemp(path, r, perm)
	if err != nil {
		return err
	}
	defer untrack(tmp)
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func writeTemp(path string, r io.Reader, perm os.FileMode) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	track(f.Name())
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			untrack(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = io.Copy(f, r); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}

// syncDir makes a rename or link durable. Windows cannot open a directory for syncing; its
// renames are durable by the filesystem's journal.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
