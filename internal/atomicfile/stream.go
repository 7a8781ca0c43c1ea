package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Writer is a file being written atomically, for content too large to hold (a signature
// that carries a gigabyte document): write to it, then Commit. Until then the content is in
// a temporary file next to the final name, which Abort, a failed Commit and RemoveTemps
// remove; a crash leaves at most that temporary file, never a part under the final name.
type Writer struct {
	f       *os.File
	path    string
	replace bool
	done    bool
}

// Create starts writing path. With replace, Commit replaces a file already there
// (rename(2)); without, Commit fails with an error wrapping fs.ErrExist if one is there, even
// one that appeared meanwhile (link(2) never replaces).
func Create(path string, perm os.FileMode, replace bool) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	track(f.Name())
	w := &Writer{f: f, path: path, replace: replace}
	if err := f.Chmod(perm); err != nil {
		w.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return w, nil
}

// Write writes to the temporary file.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("atomicfile: write after Commit or Abort")
	}
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("write %s: %w", w.path, err)
	}
	return n, err
}

// Path is the final name.
func (w *Writer) Path() string { return w.path }

// Abort throws the content away. It does nothing after Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
	untrack(w.f.Name())
}

// Commit makes the file durable under its final name: the data synced, the name put in
// place, the directory synced.
func (w *Writer) Commit() error {
	if err := w.place(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(w.path))
}

// place syncs the data and puts the name in place, without syncing the directory: after a
// crash the file is then either absent or whole, but may be absent. Group finishes the job.
func (w *Writer) place() error {
	if w.done {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	tmp := w.f.Name()
	fail := func(err error) error {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		return fail(err)
	}
	if w.replace {
		if err := os.Rename(tmp, w.path); err != nil {
			return fail(err)
		}
	} else {
		if err := os.Link(tmp, w.path); err != nil {
			return fail(err)
		}
		os.Remove(tmp)
	}
	w.done = true
	untrack(tmp)
	return nil
}

// Group commits many files and syncs their directories once per flush instead of once per
// file, which on ext4 is most of the cost of writing a thousand small files.
//
// The guarantee is the one Commit gives, for each file at the moment its report runs: a
// file's report (the caller's "-> FILE" line) runs only after its data was synced (before
// the name was placed, so the name never shows a part) and after a sync of its directory
// that began once its name was in place. So whatever a crash interrupts, every file already
// reported survives whole; the files placed but not yet reported may survive or not, and
// are whole if they do. Only the report is later, by at most MaxPending files or MaxDelay;
// the per-file data sync stays (without it a reported name could hold nothing after a
// crash, as on ext4 with delayed allocation). A failed flush reports none of its files and
// every later call returns the error.
type Group struct {
	// MaxPending is how many files wait for one directory sync at most; MaxDelay how long
	// the first of them waits at most before a sync runs anyway (from a timer, so a slow
	// next document does not hold back the reports of those done).
	MaxPending int
	MaxDelay   time.Duration

	mu      sync.Mutex
	dirs    map[string]bool
	reports []func()
	timer   *time.Timer
	err     error
	closed  bool
}

// NewGroup makes a Group that flushes every maxPending files or after maxDelay.
func NewGroup(maxPending int, maxDelay time.Duration) *Group {
	return &Group{MaxPending: maxPending, MaxDelay: maxDelay, dirs: map[string]bool{}}
}

// Commit places w (see Writer.Commit) and queues report to run once w is durable. report
// runs with the Group's lock held, from Commit, Flush, Close or the timer's goroutine, one
// at a time and in the order of the commits.
func (g *Group) Commit(w *Writer, report func()) error {
	g.mu.Lock()
	err := g.err
	g.mu.Unlock()
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.place(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dirs[filepath.Dir(w.path)] = true
	g.reports = append(g.reports, report)
	if len(g.reports) >= g.MaxPending {
		return g.flushLocked()
	}
	if g.timer == nil && !g.closed {
		g.timer = time.AfterFunc(g.MaxDelay, func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.timer = nil
			_ = g.flushLocked()
		})
	}
	return g.err
}

// Flush syncs the directories of the files committed so far and runs their reports.
func (g *Group) Flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.flushLocked()
}

// Close flushes and stops the timer; call it before the Group's files are relied on (and
// before reading what the reports changed).
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	return g.flushLocked()
}

func (g *Group) flushLocked() error {
	if g.err != nil {
		return g.err
	}
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	for dir := range g.dirs {
		if err := syncDir(dir); err != nil {
			g.err = err
			g.reports = nil
			return err
		}
	}
	clear(g.dirs)
	reports := g.reports
	g.reports = nil
	for _, r := range reports {
		if r != nil {
			r()
		}
	}
	return nil
}
