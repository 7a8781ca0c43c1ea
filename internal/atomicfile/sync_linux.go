//go:build linux

package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// syncfsFrom is how many files a flush makes durable with syncfs(2) instead of one fsync
// each. On ext4 each fsync of a new file is a journal commit and a cache flush of the disk
// (about 1 ms on the CI machine's disk, more when others use it); syncfs is one of each for
// the whole filesystem. It also flushes whatever else is dirty there, which for a few files
// could cost more than it saves; for many it is far less than their fsyncs.
const syncfsFrom = 8

// syncAllData makes the content of every writer durable and closes their files; errs[i] is
// writers[i]'s failure (that writer is then aborted).
func syncAllData(writers []*Writer) []error {
	if len(writers) < syncfsFrom {
		return fsyncAll(writers)
	}
	errs := make([]error, len(writers))
	dirs := map[string]error{}
	for i, w := range writers {
		if w.done {
			errs[i] = fmt.Errorf("atomicfile: Commit after Commit or Abort")
			continue
		}
		if !w.shut {
			if err := w.shutFile(); err != nil {
				errs[i] = err
				continue
			}
		}
		dirs[filepath.Dir(w.path)] = nil
	}
	// One call per directory: directories on one filesystem make the later calls cheap.
	for dir := range dirs {
		dirs[dir] = syncfs(dir)
	}
	for i, w := range writers {
		if errs[i] != nil {
			continue
		}
		if err := dirs[filepath.Dir(w.path)]; err != nil {
			errs[i] = fmt.Errorf("write %s: %w", w.path, err)
			w.Abort()
		}
	}
	return errs
}

func syncfs(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync the filesystem of %s: %w", dir, err)
	}
	return nil
}
