package floor

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Tries is one token's failed tries as the ledger counts them, for support's diagnosis.
type Tries struct {
	Token    string         `json:"token"`
	Failures map[string]int `json:"failures"` // role -> failed tries since the last success
	Updated  time.Time      `json:"updated"`
}

// State is what the floor keeps under dir now: the tokens with failed tries counted, and
// the runs holding a token. A file that does not read is named in Problems, never fatal:
// the diagnosis of a damaged data directory must still be written.
type State struct {
	Tries    []Tries  `json:"tries"`
	Held     []Holder `json:"held"`
	Problems []string `json:"problems,omitempty"`
}

// ReadState reads the floor's files under dir ($TOKENRUN_HOME/floor).
func ReadState(dir string) State {
	s := State{Tries: []Tries{}, Held: []Holder{}}
	paths, _ := filepath.Glob(filepath.Join(dir, "tries", "*.json"))
	sort.Strings(paths)
	for _, p := range paths {
		f, err := (&ledger{path: p}).read()
		if err != nil {
			s.Problems = append(s.Problems, err.Error())
			continue
		}
		if failed(f.Failures) {
			s.Tries = append(s.Tries, Tries{Token: f.Token, Failures: f.Failures, Updated: f.Updated})
		}
	}
	holders, _ := filepath.Glob(filepath.Join(dir, "locks", "*.holder"))
	sort.Strings(holders)
	for _, p := range holders {
		// A holder file is removed before its lock is released; one left behind is a run
		// that was killed (the kernel dropped the lock): say so only while it still holds.
		lock := strings.TrimSuffix(p, ".holder") + ".lock"
		if !heldNow(lock) {
			continue
		}
		s.Held = append(s.Held, readHolder(p))
	}
	return s
}

func failed(m map[string]int) bool {
	for _, n := range m {
		if n > 0 {
			return true
		}
	}
	return false
}

// heldNow reports whether another open file holds the lock at path.
func heldNow(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	ok, err := tryLockFile(f)
	return err == nil && !ok
}
