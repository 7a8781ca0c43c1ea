package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// ProtocolVersion is the version of the JSON-lines protocol the host speaks, sent in the
// hello line. Version 2 is a superset of version 1 (see the package documentation).
const ProtocolVersion = 2

// JSON is the JSON-lines front-end for a GUI or web page driving the run; the protocol is
// described in the package documentation and docs/protocol.md.
//
// A goroutine reads the driver's lines from the first Ask or Begin on, so that a cancel
// line is seen at any moment, not only while a prompt waits; the other lines queue up for
// the next Ask.
type JSON struct {
	lines     *lineReader
	startOnce sync.Once
	qmu       sync.Mutex
	queue     []lineResult  // lines read and not yet taken; a final error stays at the end
	notify    chan struct{} // a line was queued

	askMu sync.Mutex // one Ask at a time

	// cmu guards the run's cancellation: pending (the prompt waiting, "" for none), cancel
	// (from Begin) and cancelled (a cancel line arrived).
	cmu       sync.Mutex
	pending   string
	cancel    context.CancelCauseFunc
	cancelled bool

	mu        sync.Mutex // guards out and the fields below, so that lines never interleave
	out       io.Writer
	hello     *jsonHello // set by Begin; sent before the first other line
	helloSent bool
	ended     bool // the result line was sent: nothing follows it

	runID string
	now   func() time.Time // the clock of progress lines; tests stop it

	chrome Chrome // the words of refused answers (chrome.go)

	fmu   sync.Mutex
	files map[string][]byte // file prompts answered with their content, by name: this run's only
}

// NewJSON returns a JSON-lines front-end reading answer lines from in and writing event
// lines to out.
func NewJSON(in io.Reader, out io.Writer) *JSON {
	return &JSON{lines: newLineReader(in), out: out, notify: make(chan struct{}, 1), runID: newRunID(), now: time.Now}
}

// newRunID is 128 random bits in hex: what a driver and support quote to name one run.
func newRunID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RunID is the run id the hello line carries.
func (j *JSON) RunID() string { return j.runID }

// Interactive is true: the protocol is meant for a GUI with a person in front of it. A
// driver that is a program must honour "human_only" itself.
func (j *JSON) Interactive() bool { return true }

// The event lines. Field order here is the order on the wire.
type (
	jsonHello struct {
		Type      string `json:"type"`
		Protocol  int    `json:"protocol"`
		RunID     string `json:"run_id"`
		Command   string `json:"command,omitempty"`
		Procedure string `json:"procedure,omitempty"`
		Version   string `json:"version,omitempty"`
		Language  string `json:"language,omitempty"`
		Tokenrun  string `json:"tokenrun"`
		APILevel  int    `json:"api_level,omitempty"`
	}
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
		Hints     *jsonHints   `json:"hints,omitempty"`
	}
	jsonChoice struct {
		Value string `json:"value"`
		Label string `json:"label"`
	}
	jsonHints struct {
		MinLength int        `json:"min_length,omitempty"`
		MaxLength int        `json:"max_length,omitempty"`
		Pattern   string     `json:"pattern,omitempty"`
		Allowed   string     `json:"allowed,omitempty"`
		Example   string     `json:"example,omitempty"`
		Rules     []jsonRule `json:"rules,omitempty"`
	}
	jsonRule struct {
		ID   string `json:"id"`
		Text string `json:"text"`
		Max  int    `json:"max,omitempty"`
	}
	jsonError struct { // a driver line the protocol cannot use
		Type    string `json:"type"`
		ID      string `json:"id"`
		Message string `json:"message"`
		Code    string `json:"code"`
	}
	jsonInvalid struct {
		Type     string   `json:"type"`
		ID       string   `json:"id"`
		Message  string   `json:"message"`
		Code     string   `json:"code"`
		Problems []string `json:"problems,omitempty"`
	}
	jsonSay struct {
		Type  string         `json:"type"`
		Level string         `json:"level"`
		Text  string         `json:"text"`
		Key   string         `json:"key,omitempty"`
		Args  map[string]any `json:"args,omitempty"`
	}
	jsonProgress struct {
		Type     string   `json:"type"`
		ID       string   `json:"id"`
		Label    string   `json:"label"`
		Fraction *float64 `json:"fraction"` // null when unknown
		Note     string   `json:"note,omitempty"`
		Elapsed  float64  `json:"elapsed"`
		Attempt  int      `json:"attempt,omitempty"`
		RetryIn  *float64 `json:"retry_in,omitempty"`
	}
	jsonDone struct {
		Type    string  `json:"type"`
		ID      string  `json:"id"`
		Label   string  `json:"label"`
		OK      bool    `json:"ok"`
		Note    string  `json:"note,omitempty"`
		Elapsed float64 `json:"elapsed"`
	}
	jsonSigned struct {
		Type  string `json:"type"`
		In    string `json:"in"`
		Out   string `json:"out"`
		Index int    `json:"index"`
		Total int    `json:"total"`
	}
	jsonResult struct {
		Type    string         `json:"type"`
		Outcome string         `json:"outcome"`
		Code    string         `json:"code,omitempty"`
		Exit    int            `json:"exit"`
		Message string         `json:"message,omitempty"`
		Result  map[string]any `json:"result,omitempty"`
	}
	// jsonAnswer is a line from the driver. Pointers tell a missing field from an empty
	// one; unknown fields are ignored so drivers may send more than this version reads.
	jsonAnswer struct {
		Type   string  `json:"type"` // "hello" from a driver that announces itself; else empty
		ID     *string `json:"id"`
		Value  *string `json:"value"`
		Cancel bool    `json:"cancel"`
		// Person marks an answer a person typed (a GUI's form field), as opposed to one a
		// program filled in. Only a secret so marked may spend a last PIN try.
		Person bool `json:"person"`
		// Data is the chosen file's content in base64, for a file prompt answered by a page
		// that cannot hand over a path (a browser): the value is then the file's name.
		Data *string `json:"data"`
	}
)

// Codes of a JSON "error" line.
const (
	codeMalformed   = "MALFORMED"     // not JSON, not an object, a field of the wrong type, no id or value
	codeWrongPrompt = "WRONG_PROMPT"  // an answer for a prompt that is not the pending one
	codeLineTooLong = "LINE_TOO_LONG" // longer than maxLine
)

func (j *JSON) emit(v any) error {
	line, err := encodeLine(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ended {
		return nil // the result line is the last
	}
	if j.hello != nil && !j.helloSent {
		j.helloSent = true
		if _, isHello := v.(jsonHello); !isHello {
			h, err := encodeLine(*j.hello)
			if err != nil {
				return err
			}
			line = append(h, line...)
		}
	}
	if _, isResult := v.(jsonResult); isResult {
		j.ended = true
	}
	// One Write per line, so a line is never split between writers sharing out.
	_, err = j.out.Write(line)
	return err
}

func encodeLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Labels are shown as text, not embedded in HTML by us; "<" stays readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// start starts the goroutine that reads the driver's lines, once.
func (j *JSON) start() {
	j.startOnce.Do(func() { go j.read() })
}

// read reads the driver's lines until the input ends. A cancel line cancels the run at
// once; the others are queued for Ask.
func (j *JSON) read() {
	for {
		line, err := j.lines.readLine()
		if err == nil {
			if j.driverHello(line) {
				continue
			}
			j.maybeCancel(line)
		}
		j.qmu.Lock()
		j.queue = append(j.queue, lineResult{line, err})
		j.qmu.Unlock()
		select {
		case j.notify <- struct{}{}:
		default:
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return
		}
	}
}

// driverHello reports a hello line from the driver ({"type":"hello","protocol":2}), which
// needs no answer: the host speaks version 2 to every driver.
func (j *JSON) driverHello(line string) bool {
	var a jsonAnswer
	return json.Unmarshal([]byte(line), &a) == nil && a.Type == "hello" && a.ID == nil
}

// maybeCancel cancels the run for a cancel line that comes while no prompt is pending. One
// that comes while a prompt is pending is left to Ask, which gives the prompt up (and the
// run ends as cancelled, naming the prompt), as in version 1; one for another prompt than
// the pending one is stale (the driver lost track) and Ask answers it with an error.
func (j *JSON) maybeCancel(line string) {
	var a jsonAnswer
	if json.Unmarshal([]byte(line), &a) != nil || !a.Cancel {
		return
	}
	j.cmu.Lock()
	defer j.cmu.Unlock()
	if j.pending != "" {
		return
	}
	j.cancelled = true
	if j.cancel != nil {
		j.cancel(errCancelledByDriver)
	}
}

var errCancelledByDriver = cancelledf("cancelled by the driver")

// next takes the next line the driver sent, waiting for it or for ctx. The input's end
// stays queued, so that every later call sees it too.
func (j *JSON) next(ctx context.Context) (string, error) {
	j.start()
	for {
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		j.qmu.Lock()
		if len(j.queue) > 0 {
			r := j.queue[0]
			if r.err == nil || errors.Is(r.err, errLineTooLong) {
				j.queue = j.queue[1:]
			}
			j.qmu.Unlock()
			return r.line, r.err
		}
		j.qmu.Unlock()
		select {
		case <-j.notify:
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
}

// Begin sends the hello line before anything else and returns ctx, cancelled when the
// driver sends a cancel line (whether or not a prompt is pending).
func (j *JSON) Begin(ctx context.Context, info RunInfo) context.Context {
	j.mu.Lock()
	j.hello = &jsonHello{Type: "hello", Protocol: ProtocolVersion, RunID: j.runID, Command: info.Command,
		Procedure: info.Procedure, Version: info.Version, Language: info.Language, Tokenrun: info.Tokenrun, APILevel: info.APILevel}
	j.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	j.cmu.Lock()
	j.cancel = cancel
	if j.cancelled {
		cancel(errCancelledByDriver)
	}
	j.cmu.Unlock()
	j.start()
	return ctx
}

// Procedure fills in the hello line's procedure and version, unless it was sent already
// (a plain script that asked before it returned).
func (j *JSON) Procedure(name, version string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.hello != nil && !j.helloSent {
		j.hello.Procedure, j.hello.Version = name, version
	}
}

// End sends the result line, the last line of the run.
func (j *JSON) End(r RunResult) error {
	res := jsonResult{Type: "result", Outcome: r.Outcome, Code: r.Code, Exit: r.Exit, Message: r.Message, Result: r.Result}
	if _, err := encodeLine(res); err != nil {
		res.Result = nil // a value JSON cannot hold: the outcome still matters
	}
	err := j.emit(res)
	j.forgetFiles()
	j.cmu.Lock()
	if j.cancel != nil {
		j.cancel(context.Canceled) // the run is over; this only frees the context
	}
	j.cmu.Unlock()
	if err != nil {
		return fmt.Errorf("send the result: %w", err)
	}
	return nil
}

// Ask sends an ask line and reads answer lines until a valid answer for p arrives.
func (j *JSON) Ask(ctx context.Context, p Prompt) (string, error) {
	v, _, err := j.askSourced(ctx, p)
	return v, err
}

func askLine(p Prompt) jsonAsk {
	ask := jsonAsk{
		Type: "ask", ID: p.ID, Kind: p.Kind.String(), Label: p.label(), Help: p.Help,
		Default: p.Default, Secret: p.Kind == Secret, HumanOnly: p.HumanOnly, Optional: p.Optional,
	}
	for _, c := range p.Choices {
		ask.Choices = append(ask.Choices, jsonChoice(c))
	}
	if h := p.Hints; h != nil {
		ask.Hints = &jsonHints{MinLength: h.MinLength, MaxLength: h.MaxLength, Pattern: h.Pattern, Allowed: h.Allowed, Example: h.Example}
		for _, r := range h.Rules {
			ask.Hints.Rules = append(ask.Hints.Rules, jsonRule(r))
		}
	}
	return ask
}

// askSourced is Ask, also telling whether the answer line said a person typed it.
func (j *JSON) askSourced(ctx context.Context, p Prompt) (string, bool, error) {
	if err := p.Check(); err != nil {
		return "", false, err
	}
	j.askMu.Lock()
	defer j.askMu.Unlock()
	j.cmu.Lock()
	j.pending = p.ID
	j.cmu.Unlock()
	defer func() {
		j.cmu.Lock()
		j.pending = ""
		j.cmu.Unlock()
	}()

	ask := askLine(p)
	if err := j.emit(ask); err != nil {
		return "", false, promptErr(p.ID, err)
	}
	for {
		line, err := j.next(ctx)
		switch {
		case errors.Is(err, io.EOF):
			return "", false, noAnswerf("no answer for prompt '%s': input closed", p.ID)
		case errors.Is(err, errLineTooLong):
			if err := j.complain(ask, codeLineTooLong, fmt.Sprintf("answer line longer than %d bytes", maxLine)); err != nil {
				return "", false, promptErr(p.ID, err)
			}
			continue
		case errors.Is(err, errCancelledByDriver):
			return "", false, cancelledf("prompt '%s': cancelled by the driver", p.ID)
		case err != nil:
			return "", false, fmt.Errorf("prompt '%s': read answer: %w", p.ID, err)
		}
		if strings.TrimSpace(line) == "" {
			continue // blank lines are harmless keep-alives
		}
		raw, cancel, person, data, code, problem := parseAnswerData(line, p.ID)
		if problem == "" && data != nil {
			code, problem = j.keepFile(p, raw, *data)
		}
		if problem != "" {
			if err := j.complain(ask, code, problem); err != nil {
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
		inv := jsonInvalid{Type: "invalid", ID: p.ID, Message: retry.msg, Code: retry.code, Problems: retry.problems}
		if inv.Code == "" {
			inv.Code = CodeInvalidInput
		}
		if err := j.emit(inv); err != nil {
			return "", false, promptErr(p.ID, err)
		}
	}
}

// complain reports a line the protocol cannot use and repeats the ask, so a driver that
// lost track sees again what is pending.
func (j *JSON) complain(ask jsonAsk, code, message string) error {
	if err := j.emit(jsonError{Type: "error", ID: ask.ID, Message: message, Code: code}); err != nil {
		return err
	}
	return j.emit(ask)
}

// parseAnswer reads an answer line for prompt id. problem, when not empty, is a message
// for an "error" line, with its code; it never quotes the line, which may hold a secret.
func parseAnswer(line, id string) (value string, cancel, person bool, code, problem string) {
	value, cancel, person, _, code, problem = parseAnswerData(line, id)
	return value, cancel, person, code, problem
}

// parseAnswerData is parseAnswer, also returning the line's "data" (nil for none).
func parseAnswerData(line, id string) (value string, cancel, person bool, data *string, code, problem string) {
	var a jsonAnswer
	if err := json.Unmarshal([]byte(line), &a); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return "", false, false, nil, codeMalformed, fmt.Sprintf("malformed answer line: invalid JSON at byte %d", syn.Offset)
		case errors.As(err, &typ) && typ.Field != "":
			return "", false, false, nil, codeMalformed, fmt.Sprintf("malformed answer line: %q must be a %s", typ.Field, jsonType(typ.Field))
		default:
			return "", false, false, nil, codeMalformed, `malformed answer line: want an object with "id" and "value"`
		}
	}
	if a.Cancel && (a.ID == nil || *a.ID == id) {
		return "", true, false, nil, "", ""
	}
	switch {
	case a.ID == nil:
		return "", false, false, nil, codeMalformed, `malformed answer line: no "id"`
	case *a.ID != id && checkID(*a.ID) != nil:
		// Not quoted: it is no prompt id, and may be anything the driver got wrong.
		return "", false, false, nil, codeWrongPrompt, fmt.Sprintf("answer is for an unknown prompt id, but prompt '%s' is asked", id)
	case *a.ID != id:
		return "", false, false, nil, codeWrongPrompt, fmt.Sprintf("answer is for prompt '%s', but prompt '%s' is asked", *a.ID, id)
	case a.Value == nil:
		return "", false, false, nil, codeMalformed, `malformed answer line: no "value"`
	}
	return *a.Value, false, a.Person, a.Data, "", ""
}

// MaxFileData bounds the content a file prompt's answer may carry: the largest file a
// procedure reads from a prompt is an initial-key container, which readfile caps at 1 MiB.
const MaxFileData = 1 << 20

// keepFile holds the content a page sent with its answer to a file prompt, under the name
// it answered, for this run only (File; End forgets it). problem is for an error line.
func (j *JSON) keepFile(p Prompt, name, data string) (code, problem string) {
	switch {
	case p.Kind != File:
		return codeMalformed, `malformed answer line: "data" is only for a file prompt`
	case name == "" || strings.ContainsAny(name, "/\\\x00"):
		return codeMalformed, `malformed answer line: with "data", the value is the file's name, without folders`
	case base64.StdEncoding.DecodedLen(len(data)) > MaxFileData+2:
		return codeLineTooLong, fmt.Sprintf("the file is larger than %d bytes", MaxFileData)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return codeMalformed, `malformed answer line: "data" must be base64`
	}
	if len(b) > MaxFileData {
		return codeLineTooLong, fmt.Sprintf("the file is larger than %d bytes", MaxFileData)
	}
	j.fmu.Lock()
	defer j.fmu.Unlock()
	if j.files == nil {
		j.files = map[string][]byte{}
	}
	if old, ok := j.files[name]; ok {
		clear(old)
	}
	j.files[name] = b
	return "", ""
}

// File is the content a page sent for a file prompt answered name, in this run.
func (j *JSON) File(name string) ([]byte, bool) {
	j.fmu.Lock()
	defer j.fmu.Unlock()
	b, ok := j.files[name]
	return b, ok
}

// forgetFiles wipes the files the run was sent: they live in memory for the run only.
func (j *JSON) forgetFiles() {
	j.fmu.Lock()
	defer j.fmu.Unlock()
	for _, b := range j.files {
		clear(b)
	}
	j.files = nil
}

func jsonType(field string) string {
	if field == "cancel" || field == "person" {
		return "boolean"
	}
	return "string"
}

// Say sends a say line.
func (j *JSON) Say(ctx context.Context, level Level, text string) error {
	return j.SayMessage(ctx, Message{Level: level, Text: text})
}

// SayMessage sends a say line with the message's catalog key and arguments.
func (j *JSON) SayMessage(ctx context.Context, m Message) error {
	if err := m.Level.check(); err != nil {
		return err
	}
	line := jsonSay{Type: "say", Level: m.Level.String(), Text: m.Text, Key: m.Key, Args: m.Args}
	if line.Key == "" {
		line.Args = nil
	}
	if _, err := encodeLine(line); err != nil {
		line.Args = nil // arguments JSON cannot hold: the text says it all
	}
	if err := j.emit(line); err != nil {
		return fmt.Errorf("say: %w", err)
	}
	return nil
}

// Signed sends a signed line: one document of a sign batch is signed and written.
func (j *JSON) Signed(ctx context.Context, d SignedDocument) error {
	if err := j.emit(jsonSigned{Type: "signed", In: d.In, Out: d.Out, Index: d.Index, Total: d.Total}); err != nil {
		return fmt.Errorf("report a signature: %w", err)
	}
	return nil
}

// Progress sends a progress line with an unknown fraction, then one per Update and a
// progress_done line at the end.
func (j *JSON) Progress(ctx context.Context, id, label string) (Progress, error) {
	if label == "" {
		label = id
	}
	p := &jsonProgressBar{j: j, id: id, label: label, start: j.now()}
	if err := j.emit(jsonProgress{Type: "progress", ID: id, Label: label}); err != nil {
		return nil, fmt.Errorf("show progress: %w", err)
	}
	return p, nil
}

type jsonProgressBar struct {
	j         *JSON
	id, label string
	start     time.Time
	mu        sync.Mutex
	done      bool
}

// seconds is d in seconds, to the millisecond.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

func (p *jsonProgressBar) Update(fraction float64, note string) {
	p.Step(Step{Fraction: fraction, Note: note})
}

func (p *jsonProgressBar) Step(s Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	var f *float64
	// NaN cannot be encoded and means "unknown" anyway (a zero total).
	if s.Fraction >= 0 && !math.IsNaN(s.Fraction) {
		v := math.Min(s.Fraction, 1)
		f = &v
	}
	line := jsonProgress{Type: "progress", ID: p.id, Label: p.label, Fraction: f, Note: s.Note,
		Elapsed: seconds(p.j.now().Sub(p.start)), Attempt: max(s.Attempt, 0)}
	if s.RetryIn > 0 {
		r := seconds(s.RetryIn)
		line.RetryIn = &r
	}
	_ = p.j.emit(line)
}

func (p *jsonProgressBar) Done(ok bool, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	_ = p.j.emit(jsonDone{Type: "progress_done", ID: p.id, Label: p.label, OK: ok, Note: note, Elapsed: seconds(p.j.now().Sub(p.start))})
}
