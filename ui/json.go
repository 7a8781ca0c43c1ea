package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
)

// JSON is the JSON-lines front-end for a GUI or web page driving the run; the protocol is
// described in the package documentation.
type JSON struct {
	lines *lineReader

	askMu sync.Mutex // one Ask at a time

	mu  sync.Mutex // guards out, so that lines never interleave
	out io.Writer

	chrome Chrome // the words of refused answers (chrome.go)
}

// NewJSON returns a JSON-lines front-end reading answer lines from in and writing event
// lines to out.
func NewJSON(in io.Reader, out io.Writer) *JSON {
	return &JSON{lines: newLineReader(in), out: out}
}

// Interactive is true: the protocol is meant for a GUI with a person in front of it. A
// driver that is a program must honour "human_only" itself.
func (j *JSON) Interactive() bool { return true }

// The event lines. Field order here is the order on the wire.
type (
	jsonAsk struct {
		Type      string       `json:"type"`
		ID        string       `json:"id"`
		Kind      string       `json:"kind"`
		Label     string       `json:"label"`
		Help      string       `json:"help,omitempty"`
		Default   string       `json:"default,omitempty"`
		Choices   []jsonChoice `json:"choices,omitempty"`
		Secret    bool         `json:"secret"`
		HumanOnly bool         `json:"human_only,omitempty"`
		Optional  bool         `json:"optional,omitempty"`
	}
	jsonChoice struct {
		Value string `json:"value"`
		Label string `json:"label"`
	}
	jsonMessage struct { // "error" and "invalid"
		Type    string `json:"type"`
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	jsonSay struct {
		Type  string `json:"type"`
		Level string `json:"level"`
		Text  string `json:"text"`
	}
	jsonProgress struct {
		Type     string   `json:"type"`
		ID       string   `json:"id"`
		Label    string   `json:"label"`
		Fraction *float64 `json:"fraction"` // null when unknown
		Note     string   `json:"note,omitempty"`
	}
	jsonDone struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Label string `json:"label"`
		OK    bool   `json:"ok"`
		Note  string `json:"note,omitempty"`
	}
	// jsonAnswer is a line from the driver. Pointers tell a missing field from an empty
	// one; unknown fields are ignored so drivers may send more than this version reads.
	jsonAnswer struct {
		ID     *string `json:"id"`
		Value  *string `json:"value"`
		Cancel bool    `json:"cancel"`
		// Person marks an answer a person typed (a GUI's form field), as opposed to one a
		// program filled in. Only a secret so marked may spend a last PIN try.
		Person bool `json:"person"`
	}
)

func (j *JSON) emit(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Labels are shown as text, not embedded in HTML by us; "<" stays readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// One Write per line, so a line is never split between writers sharing out.
	_, err := j.out.Write(buf.Bytes())
	return err
}

// Ask sends an ask line and reads answer lines until a valid answer for p arrives.
func (j *JSON) Ask(ctx context.Context, p Prompt) (string, error) {
	v, _, err := j.askSourced(ctx, p)
	return v, err
}

// askSourced is Ask, also telling whether the answer line said a person typed it.
func (j *JSON) askSourced(ctx context.Context, p Prompt) (string, bool, error) {
	if err := p.Check(); err != nil {
		return "", false, err
	}
	j.askMu.Lock()
	defer j.askMu.Unlock()

	ask := jsonAsk{
		Type: "ask", ID: p.ID, Kind: p.Kind.String(), Label: p.label(), Help: p.Help,
		Default: p.Default, Secret: p.Kind == Secret, HumanOnly: p.HumanOnly, Optional: p.Optional,
	}
	for _, c := range p.Choices {
		ask.Choices = append(ask.Choices, jsonChoice(c))
	}
	if err := j.emit(ask); err != nil {
		return "", false, promptErr(p.ID, err)
	}
	for {
		line, err := j.lines.read(ctx, j.lines.readLine)
		switch {
		case errors.Is(err, io.EOF):
			return "", false, noAnswerf("no answer for prompt '%s': input closed", p.ID)
		case errors.Is(err, errLineTooLong):
			if err := j.complain(ask, fmt.Sprintf("answer line longer than %d bytes", maxLine)); err != nil {
				return "", false, promptErr(p.ID, err)
			}
			continue
		case err != nil:
			return "", false, fmt.Errorf("prompt '%s': read answer: %w", p.ID, err)
		}
		if strings.TrimSpace(line) == "" {
			continue // blank lines are harmless keep-alives
		}
		raw, cancel, person, problem := parseAnswer(line, p.ID)
		if problem != "" {
			if err := j.complain(ask, problem); err != nil {
				return "", false, promptErr(p.ID, err)
			}
			continue
		}
		if cancel {
			return "", false, cancelledf("prompt '%s': cancelled by the driver", p.ID)
		}
		value, err := withChrome(p, j.chrome).resolve(raw, false)
		if err == nil {
			return value, person, nil
		}
		var retry *retryError
		if !errors.As(err, &retry) {
			return "", false, promptErr(p.ID, err)
		}
		if err := j.emit(jsonMessage{Type: "invalid", ID: p.ID, Message: retry.msg}); err != nil {
			return "", false, promptErr(p.ID, err)
		}
	}
}

// complain reports a line the protocol cannot use and repeats the ask, so a driver that
// lost track sees again what is pending.
func (j *JSON) complain(ask jsonAsk, message string) error {
	if err := j.emit(jsonMessage{Type: "error", ID: ask.ID, Message: message}); err != nil {
		return err
	}
	return j.emit(ask)
}

// parseAnswer reads an answer line for prompt id. problem, when not empty, is a message
// for an "error" line; it never quotes the line, which may hold a secret.
func parseAnswer(line, id string) (value string, cancel, person bool, problem string) {
	var a jsonAnswer
	if err := json.Unmarshal([]byte(line), &a); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return "", false, false, fmt.Sprintf("malformed answer line: invalid JSON at byte %d", syn.Offset)
		case errors.As(err, &typ) && typ.Field != "":
			return "", false, false, fmt.Sprintf("malformed answer line: %q must be a %s", typ.Field, jsonType(typ.Field))
		default:
			return "", false, false, `malformed answer line: want an object with "id" and "value"`
		}
	}
	if a.Cancel && (a.ID == nil || *a.ID == id) {
		return "", true, false, ""
	}
	switch {
	case a.ID == nil:
		return "", false, false, `malformed answer line: no "id"`
	case *a.ID != id && checkID(*a.ID) != nil:
		// Not quoted: it is no prompt id, and may be anything the driver got wrong.
		return "", false, false, fmt.Sprintf("answer is for an unknown prompt id, but prompt '%s' is asked", id)
	case *a.ID != id:
		return "", false, false, fmt.Sprintf("answer is for prompt '%s', but prompt '%s' is asked", *a.ID, id)
	case a.Value == nil:
		return "", false, false, `malformed answer line: no "value"`
	}
	return *a.Value, false, a.Person, ""
}

func jsonType(field string) string {
	if field == "cancel" {
		return "boolean"
	}
	return "string"
}

// Say sends a say line.
func (j *JSON) Say(ctx context.Context, level Level, text string) error {
	if err := level.check(); err != nil {
		return err
	}
	if err := j.emit(jsonSay{Type: "say", Level: level.String(), Text: text}); err != nil {
		return fmt.Errorf("say: %w", err)
	}
	return nil
}

// Progress sends a progress line with an unknown fraction, then one per Update and a
// progress_done line at the end.
func (j *JSON) Progress(ctx context.Context, id, label string) (Progress, error) {
	if label == "" {
		label = id
	}
	p := &jsonProgressBar{j: j, id: id, label: label}
	if err := j.emit(jsonProgress{Type: "progress", ID: id, Label: label}); err != nil {
		return nil, fmt.Errorf("show progress: %w", err)
	}
	return p, nil
}

type jsonProgressBar struct {
	j         *JSON
	id, label string
	mu        sync.Mutex
	done      bool
}

func (p *jsonProgressBar) Update(fraction float64, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	var f *float64
	// NaN cannot be encoded and means "unknown" anyway (a zero total).
	if fraction >= 0 && !math.IsNaN(fraction) {
		v := math.Min(fraction, 1)
		f = &v
	}
	_ = p.j.emit(jsonProgress{Type: "progress", ID: p.id, Label: p.label, Fraction: f, Note: note})
}

func (p *jsonProgressBar) Done(ok bool, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	_ = p.j.emit(jsonDone{Type: "progress_done", ID: p.id, Label: p.label, OK: ok, Note: note})
}
