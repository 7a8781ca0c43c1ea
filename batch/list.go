// Package batch runs one procedure for each row of a list of users, one token per row: tokens
// plugged in one after another or several at once, each row's outcome written to a report as
// it ends, and a journal beside the report so that a rerun continues where the last one
// stopped and never repeats a finished row. Running one row is the caller's (RunRow): the
// CLI wires it to the procedure runner, tests to whatever they need.
package batch

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/fileperm"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/textenc"
	"github.com/tokenrun/tokenrun/internal/yamlbound"
)

// Row is one line of the list: a user, the answers to the procedure's prompts, and the token
// it must run on when the list names one.
type Row struct {
	Num    int               // 1-based position in the list
	ID     string            // the id column, else the row number
	Token  string            // a PKCS#11 URI or a serial; "" for the next token plugged in
	Values map[string]string // prompt id -> answer as written (secrets may be file:/env: references)
}

// UserID is the row's user_id answer, for the report.
func (r Row) UserID() string { return r.Values["user_id"] }

// List is a batch's rows.
type List struct {
	Path    string
	Columns []string // prompt ids the list answers, in column order
	Rows    []Row
}

// Secret prompt ids: their values may be file:PATH or env:NAME references, never reach the
// report, and make a list readable by others worth a warning.
var secretIDs = map[string]bool{"otp_pin": true, "key_password": true, "current_pin": true, "new_pin": true,
	"new_pin_confirm": true, "so_pin": true, "token_pin_now": true}

// IsSecret reports whether the prompt id holds a secret.
func IsSecret(id string) bool { return secretIDs[id] }

// Reserved columns: not prompt answers.
const (
	colID    = "id"
	colToken = "token"
)

var columnName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// MaxRows bounds a list: a branch enrolls dozens of users a day, a bank's whole roll-out a
// few thousand; the journal and report are kept in memory per row.
const MaxRows = 100_000

// ReadList reads a CSV (UTF-8, or UTF-16 with a BOM as Excel's "Unicode text" and Notepad
// save it; a UTF-8 BOM tolerated; ';' or ',' detected from the header line) or YAML (a list
// of mappings) list of rows. A list holding secrets in clear that others may read is warned
// about on warn.
func ReadList(path string, warn io.Writer) (*List, error) {
	data, err := readfile.Read(path, readfile.BatchList)
	if err != nil {
		return nil, fmt.Errorf("read the batch list: %w", err)
	}
	if data, err = textenc.Decode(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: not UTF-8 text (save the list as UTF-8)", path)
	}
	var l *List
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		l, err = parseYAML(path, data)
	default:
		l, err = parseCSV(path, data)
	}
	if err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	if warn != nil && l.clearSecrets() {
		// Unix only (fileperm): on Windows the mode is made up and the ACL decides.
		if fi, err := os.Stat(path); err == nil && fileperm.OthersMayRead(fi.Mode()) {
			fmt.Fprintf(warn, "warning: %s holds secrets (PINs) and others may read it (mode %04o): chmod 600 it, or give them as file:PATH or env:NAME\n",
				path, fi.Mode().Perm())
		}
	}
	return l, nil
}

func parseCSV(path string, data []byte) (*List, error) {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	sep := ','
	if bytes.Count(first, []byte(";")) > bytes.Count(first, []byte(",")) {
		sep = ';'
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = sep
	r.TrimLeadingSpace = true
	records, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("%s: empty list: the first line names the columns (prompt ids, token, id)", path)
	}
	header := records[0]
	l := &List{Path: path}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if !columnName.MatchString(h) {
			return nil, fmt.Errorf("%s:1: column %d (%q) is no prompt id (letters, digits, '_', '.', '-')", path, i+1, h)
		}
		if seen[h] {
			return nil, fmt.Errorf("%s:1: column %s given twice", path, h)
		}
		seen[h] = true
		if h != colID && h != colToken {
			l.Columns = append(l.Columns, h)
		}
	}
	for n, rec := range records[1:] {
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		row := Row{Num: len(l.Rows) + 1, Values: map[string]string{}}
		for i, v := range rec {
			v = strings.TrimSpace(v)
			switch header[i] {
			case colID:
				row.ID = v
			case colToken:
				row.Token = v
			default:
				if v != "" {
					row.Values[header[i]] = v
				}
			}
		}
		_ = n
		l.Rows = append(l.Rows, row)
	}
	return l, nil
}

func parseYAML(path string, data []byte) (*List, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty list", path)
	}
	lim := yamlbound.Config
	lim.Nodes = 4 * MaxRows * 10
	if err := yamlbound.Check(path, &doc, lim); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: a batch list is a YAML list of mappings, one per user", path, root.Line)
	}
	l := &List{Path: path}
	cols := map[string]bool{}
	for _, item := range root.Content {
		if item.Kind == yaml.AliasNode {
			item = item.Alias
		}
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: each row is a mapping of prompt id to answer", path, item.Line)
		}
		row := Row{Num: len(l.Rows) + 1, Values: map[string]string{}}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			if v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			if k.Kind != yaml.ScalarNode || !columnName.MatchString(k.Value) {
				return nil, fmt.Errorf("%s:%d: a column is a prompt id (letters, digits, '_', '.', '-')", path, k.Line)
			}
			// A secret as single runs' answers files give it: {file: PATH} or {env: NAME}.
			if v.Kind == yaml.MappingNode && len(v.Content) == 2 && v.Content[0].Kind == yaml.ScalarNode &&
				v.Content[1].Kind == yaml.ScalarNode && (v.Content[0].Value == "file" || v.Content[0].Value == "env") {
				if !IsSecret(k.Value) {
					return nil, fmt.Errorf("%s:%d: %s is a {%s: ...} source, which only a secret column takes", path, k.Line, k.Value, v.Content[0].Value)
				}
				v = &yaml.Node{Kind: yaml.ScalarNode, Value: v.Content[0].Value + ":" + v.Content[1].Value}
			}
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%s:%d: %s must be a single value, {file: PATH} or {env: NAME}", path, k.Line, k.Value)
			}
			val := v.Value
			if v.Tag == "!!null" {
				val = ""
			}
			switch k.Value {
			case colID:
				row.ID = val
			case colToken:
				row.Token = val
			default:
				if _, dup := row.Values[k.Value]; dup {
					return nil, fmt.Errorf("%s:%d: %s given twice in one row", path, k.Line, k.Value)
				}
				if val != "" {
					row.Values[k.Value] = val
				}
				if !cols[k.Value] {
					cols[k.Value] = true
					l.Columns = append(l.Columns, k.Value)
				}
			}
		}
		l.Rows = append(l.Rows, row)
	}
	return l, nil
}

// check gives every row an id and refuses what cannot be run as asked.
func (l *List) check() error {
	if len(l.Rows) == 0 {
		return fmt.Errorf("%s: the list has no rows", l.Path)
	}
	if len(l.Rows) > MaxRows {
		return fmt.Errorf("%s: %d rows, more than the %d a batch takes: split the list", l.Path, len(l.Rows), MaxRows)
	}
	ids := map[string]int{}
	tokens := map[string]int{}
	for i := range l.Rows {
		r := &l.Rows[i]
		if r.ID == "" {
			r.ID = strconv.Itoa(r.Num)
		}
		if n, dup := ids[r.ID]; dup {
			return fmt.Errorf("%s: rows %d and %d have the same id %q", l.Path, n, r.Num, r.ID)
		}
		ids[r.ID] = r.Num
		if r.Token != "" {
			if n, dup := tokens[r.Token]; dup {
				return fmt.Errorf("%s: rows %d and %d name the same token %q: one token, one user", l.Path, n, r.Num, r.Token)
			}
			tokens[r.Token] = r.Num
		}
		for k, v := range r.Values {
			if len(v) > 4096 {
				return fmt.Errorf("%s: row %s: the %s value is %d bytes, more than an answer may hold", l.Path, r.ID, k, len(v))
			}
		}
	}
	return nil
}

// clearSecrets reports whether a secret column holds a value itself rather than a reference.
func (l *List) clearSecrets() bool {
	for _, r := range l.Rows {
		for k, v := range r.Values {
			if IsSecret(k) && !isReference(v) {
				return true
			}
		}
	}
	return false
}

func isReference(v string) bool { return strings.HasPrefix(v, "file:") || strings.HasPrefix(v, "env:") }

// Answers are the row's answers over the common ones, with secret references resolved: a
// file:PATH reads the file (a PIN file: one line, its newline dropped), env:NAME the
// environment variable. Errors name the row and prompt, never a value.
func (r Row) Answers(common map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range common {
		out[k] = v
	}
	for k, v := range r.Values {
		out[k] = v
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := out[k]
		if !IsSecret(k) || !isReference(v) {
			continue
		}
		switch {
		case strings.HasPrefix(v, "file:"):
			b, err := readfile.Read(strings.TrimPrefix(v, "file:"), readfile.PIN)
			if err == nil {
				b, err = textenc.Decode(b) // saved by Notepad or PowerShell: see ReadList
			}
			if err != nil {
				return nil, fmt.Errorf("row %s: %s: %w", r.ID, k, err)
			}
			line, _, _ := strings.Cut(string(b), "\n") // its first line, as single runs read a PIN file
			out[k] = strings.TrimSuffix(line, "\r")
		default:
			name := strings.TrimPrefix(v, "env:")
			val, ok := os.LookupEnv(name)
			if !ok {
				return nil, fmt.Errorf("row %s: %s: the environment variable %s is not set", r.ID, k, name)
			}
			out[k] = val
		}
	}
	return out, nil
}

// ErrUsage marks a list or option that cannot be run as given.
var ErrUsage = errors.New("batch usage")

// ReadCommon reads an answers file (--answers: YAML, prompt id to answer) as the answers
// every row shares, bounded as answers files are.
func ReadCommon(path string) (map[string]string, error) {
	data, err := readfile.Read(path, readfile.Answers)
	if err != nil {
		return nil, fmt.Errorf("read answers: %w", err)
	}
	if data, err = textenc.Decode(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]string{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	if err := yamlbound.Check(path, &doc, yamlbound.Config); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: answers must be a mapping of prompt id to answer", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode || !columnName.MatchString(k.Value) {
			return nil, fmt.Errorf("%s:%d: a prompt id has only letters, digits, '_', '.' and '-'", path, k.Line)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: the answer for %s must be a single value", path, k.Line, k.Value)
		}
		if v.Tag != "!!null" {
			out[k.Value] = v.Value
		}
	}
	return out, nil
}
