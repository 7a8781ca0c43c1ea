package floor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/token"
)

// ledger is one token's failed tries counted by tokenrun, in one small JSON file written
// atomically. It is read and written only under the token's lock.
type ledger struct {
	path string
	name string
}

type ledgerFile struct {
	Token    string         `json:"token"`    // for people reading the file
	Failures map[string]int `json:"failures"` // role -> failed tries since the last success
	Updated  time.Time      `json:"updated"`
}

func (f ledgerFile) failures(r token.Role) int { return f.Failures[r.String()] }

func (l *ledger) read() (ledgerFile, error) {
	var f ledgerFile
	b, err := readfile.Read(l.path, readfile.Floor)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil || json.Unmarshal(b, &f) != nil {
		// A damaged ledger must not reset the count to zero: refuse, naming the way out.
		return f, fmt.Errorf("safety floor: tries ledger %s is damaged or not a file: check the token's tries with its own tool, then remove it", l.path)
	}
	return f, nil
}

func (l *ledger) set(r token.Role, n int) error {
	f, err := l.read()
	if err != nil {
		return err
	}
	if f.failures(r) == n && (n > 0 || f.Failures != nil) {
		return nil
	}
	if f.Failures == nil {
		f.Failures = map[string]int{}
	}
	f.Failures[r.String()] = n
	f.Token, f.Updated = l.name, time.Now().UTC()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := ensureDir(filepath.Dir(l.path)); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(l.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("safety floor: cannot record the PIN try: %w", err)
	}
	return nil
}
