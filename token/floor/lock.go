package floor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/flock"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/token"
)

// Holder is what holds a token: written beside the lock by the run that took it.
type Holder struct {
	Command string    `json:"command"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Token   string    `json:"token"`
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "another tokenrun run"
	}
	return fmt.Sprintf("%s (pid %d, since %s)", h.Command, h.PID, h.Started.Local().Format("15:04:05"))
}

// lock is a held token lock: the open lock file (the kernel drops the lock with it) and the
// holder file beside it.
type lock struct {
	f      *os.File
	holder string
}

// takeLock takes the token's lock, waiting up to opts.LockWait for another run to end.
func takeLock(ctx context.Context, dir string, id ID, info token.Info, opts Options) (*lock, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, id.Key+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("safety floor: token lock: %w", err)
	}
	holderPath := filepath.Join(dir, id.Key+".holder")
	start := time.Now()
	deadline := start.Add(opts.LockWait)
	told := false
	for {
		ok, err := flock.TryLock(f, true)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("safety floor: token lock %s: %w", path, err)
		}
		if ok {
			break
		}
		h := readHolder(holderPath)
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, &token.Error{Op: "open", Err: fmt.Errorf("%w: %s is held by %s; waited %s: try again when it has finished",
				token.ErrTokenBusy, info.Name(), h, opts.LockWait.Round(time.Second)), RetriesLeft: -1}
		}
		// The holder writes its file just after it takes the lock: give it a moment, so the
		// person is told who holds the token rather than "another run".
		if !told && opts.Waiting != nil && (h.PID != 0 || time.Since(start) > time.Second) {
			opts.Waiting(info, h)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s, held by %s: %w", info.Name(), h, context.Cause(ctx))
		case <-time.After(min(opts.Poll, time.Until(deadline)+time.Millisecond)):
		}
	}
	h := Holder{Command: opts.Command, PID: os.Getpid(), Started: time.Now().UTC(), Token: id.Name}
	b, _ := json.Marshal(h)
	// The holder file only informs a waiting run; failing to write it must not stop this one.
	_ = atomicfile.WriteFile(holderPath, b, 0o600)
	return &lock{f: f, holder: holderPath}, nil
}

// release removes the holder file while the lock is still held (so it never removes the
// next holder's), then drops the lock.
func (l *lock) release() {
	_ = os.Remove(l.holder)
	_ = l.f.Close()
}

// readHolder reads what holds a lock; a missing or unreadable file is "another run".
func readHolder(path string) Holder {
	var h Holder
	if b, err := readfile.Read(path, readfile.Floor); err == nil {
		_ = json.Unmarshal(b, &h)
	}
	return h
}

// tryLockFile takes f's lock without waiting (and drops it with f).
func tryLockFile(f *os.File) (bool, error) { return flock.TryLock(f, true) }
