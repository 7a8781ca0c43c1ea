// Package journal owns enrollment progress: one small file per token serial, rewritten
// atomically at each step, so that an interrupted enrollment (lost connection, crash, token
// pulled) continues on the next run instead of starting over. A finished journal is kept in
// done/, never deleted: it may hold an issued certificate.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// ErrNotFound: no journal for that token.
var ErrNotFound = errors.New("no journal")

// Step is one recorded step.
type Step struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Entry is the progress of one procedure on one token.
type Entry struct {
	Serial    string         `json:"serial"`
	Procedure string         `json:"procedure"`
	Started   time.Time      `json:"started"`
	Updated   time.Time      `json:"updated"`
	Step      string         `json:"step"`
	Data      map[string]any `json:"data"`
	History   []Step         `json:"history"`
}

// Store keeps journals in one directory.
type Store struct {
	dir string
	now func() time.Time
}

// Open opens (creating) the journal directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "done"), 0o700); err != nil {
		return nil, fmt.Errorf("journal directory: %w", err)
	}
	return &Store{dir: dir, now: time.Now}, nil
}

// Dir is where the journals are.
func (s *Store) Dir() string { return s.dir }

var serialRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (s *Store) path(serial string) (string, error) {
	if !serialRe.MatchString(serial) {
		return "", fmt.Errorf("journal: token serial %q cannot name a file", serial)
	}
	return filepath.Join(s.dir, serial+".json"), nil
}

// Load returns the open journal of the token, or an error wrapping ErrNotFound.
func (s *Store) Load(serial string) (*Entry, error) {
	p, err := s.path(serial)
	if err != nil {
		return nil, err
	}
	b, err := readfile.Read(p, readfile.Record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("token %s: %w", serial, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		// Never overwritten silently: it may be the only record of an issued certificate.
		return nil, fmt.Errorf("journal %s is damaged (%v): move it aside and contact support", p, err)
	}
	return &e, nil
}

// secretWords are data keys a journal refuses: PINs and passwords never reach the disk.
var secretWords = []string{"pin", "password", "secret", "passphrase"}

func checkNoSecrets(prefix string, v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			lk := strings.ToLower(k)
			for _, w := range secretWords {
				if strings.Contains(lk, w) {
					return fmt.Errorf("journal: field %s%s looks like a secret; secrets are never written down", prefix, k)
				}
			}
			if err := checkNoSecrets(prefix+k+".", x); err != nil {
				return err
			}
		}
	case []any:
		for _, x := range v {
			if err := checkNoSecrets(prefix, x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Record moves the token's journal to step, merging data into what it holds, and writes it
// atomically before returning: once Record returns, a crash cannot lose the step.
func (s *Store) Record(serial, procedure, step string, data map[string]any) (*Entry, error) {
	if err := checkNoSecrets("", data); err != nil {
		return nil, err
	}
	e, err := s.Load(serial)
	switch {
	case errors.Is(err, ErrNotFound):
		e = &Entry{Serial: serial, Procedure: procedure, Started: s.now().UTC(), Data: map[string]any{}}
	case err != nil:
		return nil, err
	}
	now := s.now().UTC()
	e.Step, e.Updated = step, now
	e.History = append(e.History, Step{Name: step, At: now})
	for k, v := range data {
		e.Data[k] = v
	}
	if err := s.write(e); err != nil {
		return nil, err
	}
	return e, nil
}

// Forget removes data fields from the token's journal, keeping its step: what was typed but
// turned out wrong (a user ID the CA refused), so that a rerun asks for it again. It is
// written atomically before it returns; a field that is not there is no error.
func (s *Store) Forget(serial string, fields ...string) (*Entry, error) {
	e, err := s.Load(serial)
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		delete(e.Data, f)
	}
	e.Updated = s.now().UTC()
	if err := s.write(e); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) write(e *Entry) error {
	p, err := s.path(e.Serial)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return atomicfile.WriteFile(p, append(b, '\n'), 0o600)
}

// Finish closes the token's journal: it is kept under done/ with the time it finished.
func (s *Store) Finish(serial string) error {
	p, err := s.path(serial)
	if err != nil {
		return err
	}
	dst := filepath.Join(s.dir, "done", fmt.Sprintf("%s-%s.json", serial, s.now().UTC().Format("20060102T150405.000000000")))
	if err := os.Rename(p, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("token %s: %w", serial, ErrNotFound)
		}
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Open lists the journals still open (unfinished procedures), oldest first.
func (s *Store) Open() ([]*Entry, error) {
	matches, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, m := range matches {
		e, err := s.Load(strings.TrimSuffix(filepath.Base(m), ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}
