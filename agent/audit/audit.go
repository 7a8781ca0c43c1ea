// Package audit owns what the signing agent leaves under TOKENRUN_HOME for the client and for
// support: the audit log (one JSON line per request and per refused connection: time,
// origin, method, the documents' SHA-256 and sizes, the certificate's serial, the outcome;
// never a document's content or a PIN) and the state file of a running agent. It has no Lua
// and no network, so `tokenrun diagnose` reads both without the agent's dependencies.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// Dir is the agent's folder under the data directory.
func Dir(home string) string { return filepath.Join(home, "agent") }

const (
	logFile   = "audit.jsonl"
	stateFile = "state.json"
	// MaxLog is the size past which the log is rotated to audit.jsonl.1 (one generation is
	// kept): a line is a few hundred bytes, so this is tens of thousands of requests.
	MaxLog = 10 << 20
)

// Outcomes of an Entry.
const (
	Signed    = "signed"    // every document was signed and the signatures sent
	Shown     = "shown"     // the certificate was shown to the page (getKeyInfo)
	Cancelled = "cancelled" // the person declined, or did not answer in time
	Failed    = "error"     // the request failed: Code says why
	Refused   = "refused"   // the connection or request was refused before anyone was asked
)

// Doc is one document of a request as the log keeps it.
type Doc struct {
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// Entry is one line of the audit log.
type Entry struct {
	Time      time.Time `json:"time"`
	Origin    string    `json:"origin,omitempty"`
	Method    string    `json:"method,omitempty"` // kz.gov.pki.knca.basics.sign; "connect" for a handshake
	RequestID string    `json:"request_id,omitempty"`
	Documents []Doc     `json:"documents,omitempty"`
	Attached  bool      `json:"attached,omitempty"`
	Digested  bool      `json:"digested,omitempty"`
	// CertificateSerial is the serial of the certificate the signatures were made with (or
	// the one shown), as openssl x509 -serial writes it.
	CertificateSerial string `json:"certificate_serial,omitempty"`
	Outcome           string `json:"outcome"`
	Code              string `json:"code,omitempty"`   // the error code of a failure or refusal
	Reason            string `json:"reason,omitempty"` // why a connection or request was refused, in English
	DurationMS        int64  `json:"duration_ms,omitempty"`
}

// Log is the audit log, appended to and synced line by line: a signature the page received
// is in the log even if the machine stops right after.
type Log struct {
	mu   sync.Mutex
	path string
}

// Open opens (creating) the log in dir.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{path: filepath.Join(dir, logFile)}, nil
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Write appends e.
func (l *Log) Write(e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if fi, err := os.Stat(l.path); err == nil && fi.Size()+int64(len(line)) > MaxLog {
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("audit log: rotate: %w", err)
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// Tail is the last n entries of the log in dir (older first); none when there is no log. A
// line that does not parse is skipped: the tail is for reading, not for proof.
func Tail(dir string, n int) ([]Entry, error) {
	b, err := readfile.Read(filepath.Join(dir, logFile), readfile.Record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	var out []Entry
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		var e Entry
		if json.Unmarshal(lines[i], &e) == nil {
			out = append(out, e)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// State is what a running agent says about itself, for `tokenrun diagnose`.
type State struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	URL     string    `json:"url"` // ws://127.0.0.1:13579 or wss://...
	Region  string    `json:"region"`
	Origins []string  `json:"origins"`
	Person  string    `json:"person"` // who is asked: terminal, json, wizard
	Version string    `json:"version"`
}

// WriteState records s in dir; RemoveState removes it when the agent stops.
func WriteState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), append(b, '\n'), 0o600)
}

// RemoveState removes the state file of dir.
func RemoveState(dir string) error {
	err := os.Remove(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Running reports whether the agent that wrote s still runs (its process is there; a pid
// reused since by another process would count too, which the start time lets support see).
func (s *State) Running() bool { return s != nil && s.PID > 0 && alive(s.PID) }

// ReadState is the state an agent left in dir; nil when none is there. A state whose process
// is gone (killed without removing it) is still returned: the caller checks the pid.
func ReadState(dir string) (*State, error) {
	b, err := readfile.Read(filepath.Join(dir, stateFile), readfile.Record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("agent state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}
