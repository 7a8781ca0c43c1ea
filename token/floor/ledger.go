package floor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/token"
)

// maxLedger bounds what is read as a ledger file: a real one is a few hundred bytes.
const maxLedger = 64 << 10

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
	fh, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("safety floor: tries ledger: %w", err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() {
		return f, fmt.Errorf("safety floor: tries ledger %s is not a regular file: remove it", l.path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxLedger+1))
	if err != nil {
		return f, fmt.Errorf("safety floor: tries ledger: %w", err)
	}
	if len(b) > maxLedger || json.Unmarshal(b, &f) != nil {
		// A damaged ledger must not reset the count to zero: refuse, naming the way out.
		return f, fmt.Errorf("safety floor: tries ledger %s is damaged: check the token's tries with its own tool, then remove the file", l.path)
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
