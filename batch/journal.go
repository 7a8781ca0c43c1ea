package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/internal/readfile"
)

// The batch journal is JSON lines, appended and synced: a "start" record binds a row to the
// token it runs on before the procedure touches it, an "end" record keeps how it ended. A
// kill at any point leaves at most a torn last line, which is ignored: the row it was for is
// then unfinished (start without end) or not started, and the token's own enrollment journal
// says how far it got. A row bound to a token only ever runs on that token, and a token
// bound to a row never gets another: the enrollment journal on it belongs to that user.
type journalRecord struct {
	Event     string    `json:"event"` // batch, start, end
	Procedure string    `json:"procedure,omitempty"`
	Row       string    `json:"row,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	Label     string    `json:"label,omitempty"`
	Result    *Result   `json:"result,omitempty"`
	At        time.Time `json:"at"`
}

// rowState is what the journal knows of one row.
type rowState struct {
	serial, label string
	started       int // how many times it was started
	end           *Result
}

type batchJournal struct {
	mu   sync.Mutex
	f    *os.File
	rows map[string]*rowState
}

// journalKind bounds the batch journal: a few records of a few hundred bytes per row.
var journalKind = readfile.Kind{Name: "batch journal", Max: 256 << 20}

func openJournal(path, procedure string) (*batchJournal, error) {
	j := &batchJournal{rows: map[string]*rowState{}}
	data, err := readfile.Read(path, journalKind)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("batch journal: %w", err)
	default:
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			var rec journalRecord
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				break // the torn last line of a kill: ignored (only a last line can be torn)
			}
			switch rec.Event {
			case "batch":
				if rec.Procedure != "" && rec.Procedure != procedure {
					return nil, fmt.Errorf("%s is the journal of a %s batch, not %s: give another --report", path, rec.Procedure, procedure)
				}
			case "start":
				s := j.row(rec.Row)
				s.serial, s.label, s.end = rec.Serial, rec.Label, nil
				s.started++
			case "end":
				s := j.row(rec.Row)
				s.end = rec.Result
				if rec.Serial == "" {
					s.serial, s.label = "", "" // failed before the token was touched: not bound
				}
			}
		}
	}
	// A torn last line is cut off, so that the next record starts a line of its own.
	if len(data) > 0 && data[len(data)-1] != '\n' {
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			_ = os.Truncate(path, int64(i+1))
		} else {
			_ = os.Truncate(path, 0)
		}
	}
	j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("batch journal: %w", err)
	}
	if fi, err := j.f.Stat(); err == nil && fi.Size() == 0 {
		if err := j.append(journalRecord{Event: "batch", Procedure: procedure}); err != nil {
			j.f.Close()
			return nil, err
		}
	}
	return j, nil
}

func (j *batchJournal) row(id string) *rowState {
	s, ok := j.rows[id]
	if !ok {
		s = &rowState{}
		j.rows[id] = s
	}
	return s
}

func (j *batchJournal) append(rec journalRecord) error {
	rec.At = time.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	return nil
}

func (j *batchJournal) start(row, serial, label string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.append(journalRecord{Event: "start", Row: row, Serial: serial, Label: label}); err != nil {
		return err
	}
	s := j.row(row)
	s.serial, s.label, s.end = serial, label, nil
	s.started++
	return nil
}

func (j *batchJournal) end(res Result) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	serial := res.Serial
	if res.Untouched {
		serial = ""
	}
	if err := j.append(journalRecord{Event: "end", Row: res.Row, Serial: serial, Result: &res}); err != nil {
		return err
	}
	s := j.row(res.Row)
	s.end = &res
	if serial == "" {
		s.serial, s.label = "", ""
	}
	return nil
}

// state is a copy of what the journal knows of row id.
func (j *batchJournal) state(id string) rowState {
	j.mu.Lock()
	defer j.mu.Unlock()
	if s, ok := j.rows[id]; ok {
		return *s
	}
	return rowState{}
}

// boundRow is the row that token serial is bound to, "" for none.
func (j *batchJournal) boundRow(serial string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id, s := range j.rows {
		if s.serial == serial {
			return id
		}
	}
	return ""
}

func (j *batchJournal) close() error { return j.f.Close() }
