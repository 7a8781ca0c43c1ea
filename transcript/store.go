package transcript

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// Ext is the extension of kept transcripts.
const Ext = ".jsonl"

// Limits bound the transcripts kept in a directory. The newest is always kept, even alone
// over MaxBytes: it is the one a client is about to send.
type Limits struct {
	MaxFiles int
	MaxBytes int64
}

// DefaultLimits keep the last few runs, enough for support to ask for one after the fact.
var DefaultLimits = Limits{MaxFiles: 20, MaxBytes: 10 << 20}

// WriteFile writes a checked transcript to path atomically: a crash or a refused write
// never leaves half a transcript.
func WriteFile(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	return nil
}

// Keep writes a checked transcript into dir as START-NAME.jsonl and removes the oldest
// ones beyond lim. It returns the file written.
func Keep(dir, name string, start time.Time, data []byte, lim Limits) (string, error) {
	return keep(dir, name, start, lim, func(path string) error { return atomicfile.WriteNew(path, data, 0o600) })
}

// keep is Keep with write creating the file (failing with fs.ErrExist if it is there).
func keep(dir, name string, start time.Time, lim Limits, write func(path string) error) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("transcripts directory: %w", err)
	}
	base := start.UTC().Format("20060102T150405.000000Z") + "-" + safeName(name)
	path := filepath.Join(dir, base+Ext)
	// Two runs in the same microsecond are unlikely but must not overwrite each other.
	for i := 2; ; i++ {
		err := write(path)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("transcript: %w", err)
		}
		path = filepath.Join(dir, fmt.Sprintf("%s-%d%s", base, i, Ext))
	}
	return path, Prune(dir, lim)
}

func safeName(s string) string {
	s = strings.TrimSuffix(filepath.Base(s), ".lua")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// Prune removes the oldest transcripts in dir until at most lim.MaxFiles remain and they
// total at most lim.MaxBytes. Names start with the start time, so name order is age order.
func Prune(dir string, lim Limits) error {
	infos, err := files(dir)
	if err != nil {
		return err
	}
	var total int64
	for i := len(infos) - 1; i >= 0; i-- { // newest first
		total += infos[i].size
		keep := i == len(infos)-1 ||
			(lim.MaxFiles <= 0 || len(infos)-i <= lim.MaxFiles) && (lim.MaxBytes <= 0 || total <= lim.MaxBytes)
		if keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, infos[i].name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove old transcript: %w", err)
		}
	}
	return nil
}

type fileInfo struct {
	name    string
	size    int64
	modTime time.Time
}

// files lists dir's transcripts, oldest first; a missing dir has none.
func files(dir string) ([]fileInfo, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transcripts directory: %w", err)
	}
	var out []fileInfo
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), Ext) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, fileInfo{name: e.Name(), size: fi.Size(), modTime: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// Summary describes a kept transcript, from its header and footer.
type Summary struct {
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	Modified  time.Time `json:"modified"`
	Procedure string    `json:"procedure,omitempty"`
	Version   string    `json:"version,omitempty"`
	Start     time.Time `json:"start,omitzero"`
	Outcome   string    `json:"outcome,omitempty"` // "" when the footer is unreadable
	Code      string    `json:"code,omitempty"`
	Exit      int       `json:"exit"`
	Problem   string    `json:"problem,omitempty"` // why header or footer could not be read
}

// List summarises the transcripts kept in dir, newest first.
func List(dir string) ([]Summary, error) {
	infos, err := files(dir)
	if err != nil {
		return nil, err
	}
	out := []Summary{}
	for i := len(infos) - 1; i >= 0; i-- {
		fi := infos[i]
		s := Summary{Name: fi.name, Size: fi.size, Modified: fi.modTime.UTC()}
		if err := summarise(filepath.Join(dir, fi.name), &s); err != nil {
			s.Problem = err.Error()
		}
		out = append(out, s)
	}
	return out, nil
}

func summarise(path string, s *Summary) error {
	file, err := readfile.Open(path, readfile.Transcript)
	if err != nil {
		return err
	}
	defer file.Close()
	lr := NewLineReader(file)
	var first, last []byte
	for {
		line, _, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if first == nil {
			first = append([]byte{}, line...)
		}
		last = append(last[:0], line...)
	}
	var h Header
	if err := json.Unmarshal(first, &h); err != nil || h.Kind != KindHeader {
		return errors.New("no header on the first line")
	}
	s.Procedure, s.Version, s.Start = h.Procedure, h.Version, h.Start
	var f Footer
	if err := json.Unmarshal(last, &f); err != nil || f.Kind != KindFooter {
		return errors.New("no footer on the last line")
	}
	s.Outcome, s.Code, s.Exit = f.Outcome, f.Code, f.Exit
	return nil
}
