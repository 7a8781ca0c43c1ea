package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
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
	shut    bool // f is closed, the content written (Group holds no descriptor per file)
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
	if !w.shut {
		w.f.Close()
	}
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
// crash the file is then either absent or whole, but may be absent.
func (w *Writer) place() error {
	if err := w.syncData(); err != nil {
		return err
	}
	return w.name()
}

// shutFile closes the temporary file once its content is all written, so that files
// waiting in a Group hold no descriptor; syncData opens it again if it needs one.
func (w *Writer) shutFile() error {
	if w.done || w.shut {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	if err := w.f.Close(); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.shut = true
	return nil
}

// syncData makes the content durable and closes the temporary file.
func (w *Writer) syncData() error {
	if w.done {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	f := w.f
	if w.shut {
		// fsync syncs the file, whichever descriptor wrote it.
		var err error
		if f, err = os.OpenFile(w.f.Name(), os.O_RDWR, 0); err != nil {
			w.Abort()
			return fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		w.Abort()
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	err := f.Close()
	w.shut = true
	if err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// name puts the synced temporary file under its final name.
func (w *Writer) name() error {
	tmp := w.f.Name()
	var err error
	if w.replace {
		err = os.Rename(tmp, w.path)
	} else if err = os.Link(tmp, w.path); err == nil {
		os.Remove(tmp)
	}
	if err != nil {
		w.Abort()
		if errors.Is(err, fs.ErrExist) {
			return existsError{w.path}
		}
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.done = true
	untrack(tmp)
	return nil
}

// existsError: a file without replace found its name taken. It names only the final path,
// not the temporary file link(2) was given.
type existsError struct{ path string }

func (e existsError) Error() string        { return e.path + " exists" }
func (e existsError) Is(target error) bool { return target == fs.ErrExist }

// Group commits many files with far fewer waits for the disk than a Commit each, and waits
// on the disk beside the caller's work rather than in its way: on ext4 a thousand small files
// cost a thousand file syncs and a thousand directory syncs, each a journal commit, most of
// the time of signing them.
//
// The guarantee is the one Commit gives, for each file at the moment its report runs (the
// caller's "-> FILE" line). A flush first makes the data of every file waiting durable (on
// Linux, from syncfsFrom files on, with one syncfs(2) for their filesystem; otherwise an
// fsync each, in parallel), then puts each under its final name, in order, then syncs their
// directories once, and only then runs their reports. So a name never shows a part (the data was durable before the name appeared),
// and every file reported survives a crash, name and content. A crash before a report can
// lose that file; it was never reported. Only the reports are later: a flush starts once
// MaxPending files wait or the first has waited MaxDelay.
//
// Flushes run on the Group's own goroutine while the caller goes on writing the next files;
// Commit waits for one only when 4×MaxPending files wait. A file waiting holds no descriptor.
//
// A file whose name cannot be placed (without replace: one appeared meanwhile) stops the
// flush there: the files before it are reported, it and those after it are removed, and that
// error is returned by every later call.
type Group struct {
	maxPending int
	maxDelay   time.Duration

	mu      sync.Mutex // pending, timer, err, closed; held while kick is sent or closed
	pending []pendingFile
	timer   *time.Timer
	err     error
	closed  bool

	flushMu sync.Mutex // one flush at a time, so reports keep the commits' order
	kick    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

type pendingFile struct {
	w      *Writer
	report func()
}

// fsyncAll syncs each writer's data, syncWorkers at a time, and closes their files.
func fsyncAll(writers []*Writer) []error {
	errs := make([]error, len(writers))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(syncWorkers, len(writers)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = writers[i].syncData()
			}
		}()
	}
	for i := range writers {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// syncWorkers is how many file syncs a flush runs at once: enough for ext4 to batch them
// into few journal commits, few enough to be threads nobody notices.
const syncWorkers = 16

// NewGroup makes a Group that flushes once maxPending files wait or the first has waited
// maxDelay. Close it.
func NewGroup(maxPending int, maxDelay time.Duration) *Group {
	g := &Group{maxPending: max(maxPending, 1), maxDelay: maxDelay,
		kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	go func() {
		defer close(g.stopped)
		for range g.kick {
			_ = g.flush()
		}
	}()
	return g
}

// Commit queues w to be made durable and report to run once it is. Reports run one at a
// time, in the order of the commits, on the Group's goroutine or in Flush or Close. The
// error may be an earlier file's (it names its path).
func (g *Group) Commit(w *Writer, report func()) error {
	g.mu.Lock()
	if g.err != nil {
		err := g.err
		g.mu.Unlock()
		w.Abort()
		return err
	}
	if err := w.shutFile(); err != nil {
		g.mu.Unlock()
		return err
	}
	g.pending = append(g.pending, pendingFile{w, report})
	n := len(g.pending)
	if n == 1 && g.timer == nil {
		g.timer = time.AfterFunc(g.maxDelay, g.wake)
	}
	g.mu.Unlock()
	switch {
	case n >= 4*g.maxPending:
		return g.flush()
	case n >= g.maxPending:
		g.wake()
	}
	return nil
}

func (g *Group) wake() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Flush makes the files committed so far durable and runs their reports.
func (g *Group) Flush() error { return g.flush() }

// Close flushes, stops the Group's goroutine and returns the first error; call it before
// the Group's files are relied on (and before reading what the reports changed). Commit
// must not be called after Close.
func (g *Group) Close() error {
	g.once.Do(func() {
		g.mu.Lock()
		g.closed = true
		close(g.kick)
		g.mu.Unlock()
		<-g.stopped
	})
	return g.flush()
}

func (g *Group) flush() error {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	files, failed := g.pending, g.err
	g.pending = nil
	g.mu.Unlock()
	if failed != nil {
		for _, p := range files {
			p.w.Abort()
		}
		return failed
	}
	if len(files) == 0 {
		return nil
	}

	// 1. The data of every file.
	writers := make([]*Writer, len(files))
	for i, p := range files {
		writers[i] = p.w
	}
	errs := syncAllData(writers)

	// 2. The names, in order, up to the first failure.
	placed := 0
	var err error
	for i, p := range files {
		if err = errs[i]; err == nil {
			err = p.w.name()
		}
		if err != nil {
			break
		}
		placed++
	}
	for _, p := range files[placed:] {
		p.w.Abort()
	}

	// 3. Their directories, once each.
	dirs := map[string]bool{}
	for _, p := range files[:placed] {
		d := filepath.Dir(p.w.path)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		if derr := syncDir(d); derr != nil {
			err, placed = derr, 0
			break
		}
	}

	// 4. Only now may they be reported.
	for _, p := range files[:placed] {
		if p.report != nil {
			p.report()
		}
	}
	if err != nil {
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
	}
	return err
}
