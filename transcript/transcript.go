// Package transcript owns the record of one procedure run: a JSON-lines file with a header
// (what ran, where, on which token), every call the script made into a host module with its
// arguments and results in order (prompts included, with their answers), and a footer (how
// it ended). Support reads it after the fact; a later replay can feed the recorded results
// back, which is why every call is kept in full and in order.
//
// Secrets are replaced by runtime.Redacted where the call is observed (runtime, per
// runtime.Func.Secret). This package adds the second line of defence: before a transcript is
// written it is searched for every secret typed during the run (Secrets), and a match
// refuses the write, leaving no file.
package transcript

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
)

// FormatVersion is the version of the record format, in every header. It goes up when a
// reader (a replay, a support tool) would misread a newer file.
//
// Format 2 records a handle with data fields (token.Key, ca.Identity) as
// {"$handle": "<tostring text>", "type": "<type>", "fields": {...}} (see runtime.CallEvent)
// where format 1 kept only its text; other handles are their text in both.
const FormatVersion = 2

// Record kinds, the "kind" field of every line.
const (
	KindHeader = "header"
	KindCall   = "call"
	KindFooter = "footer"
)

// Header is the first line: what ran and where.
type Header struct {
	Kind      string `json:"kind"`
	Format    int    `json:"format"`
	Command   string `json:"command"`   // the tokenrun command: "enroll", "run", ...
	Procedure string `json:"procedure"` // the procedure's name, or the script file for a plain script
	Version   string `json:"version,omitempty"`

	ScriptsVersion string `json:"scripts_version,omitempty"`
	ScriptsSource  string `json:"scripts_source,omitempty"` // "embedded", a directory, or the installed bundle's id (version and manifest hash)
	ScriptsDigest  string `json:"scripts_digest,omitempty"` // scripts.Set.Digest: the same scripts, the same digest

	RuntimeVersion string `json:"runtime_version"`
	APILevel       int    `json:"api_level"`

	Region   string `json:"region,omitempty"`
	Language string `json:"language,omitempty"`
	// Set are the --set overrides applied to the region, and Args the procedure's ctx.args:
	// with Region and Language, what a replay needs to give the script the same ctx.
	Set  []string       `json:"set,omitempty"`
	Args map[string]any `json:"args,omitempty"`

	// Module is the PKCS#11 library path, or "software token".
	Module string `json:"module"`
	// Tokens are the tokens present when the run started, with their PIN flags: the
	// starting state support needs to understand what the procedure decided.
	Tokens []Token `json:"tokens"`

	OS    string    `json:"os"`
	Arch  string    `json:"arch"`
	Start time.Time `json:"start"`
}

// Token is a token present at the start.
type Token struct {
	Label        string          `json:"label"`
	Serial       string          `json:"serial"`
	Manufacturer string          `json:"manufacturer"`
	Model        string          `json:"model"`
	Initialized  bool            `json:"initialized"`
	UserPINSet   bool            `json:"user_pin_initialized"`
	UserPIN      token.PINStatus `json:"user_pin"`
	SOPIN        token.PINStatus `json:"so_pin"`
	MinPINLen    int             `json:"min_pin_len,omitempty"`
	MaxPINLen    int             `json:"max_pin_len,omitempty"`
	// Certificates are the certificate objects on the token at the start: public, and what
	// a reproduction (replay --soft) needs to rebuild the token's profile. Private keys are
	// not listed: a token shows them only after a login, and the script's own calls
	// (tok:keys) record what it saw.
	Certificates []Object `json:"certificates,omitempty"`
}

// Object is a token object recorded in a header.
type Object struct {
	ID    string `json:"id"` // hex, as pkcs11-tool shows it
	Label string `json:"label"`
	DER   []byte `json:"der"`
}

// TokenOf keeps what a transcript needs of a token.Info.
func TokenOf(i token.Info) Token {
	return Token{Label: i.Label, Serial: i.Serial, Manufacturer: i.Manufacturer, Model: i.Model,
		Initialized: i.Initialized, UserPINSet: i.UserPINInitialized, UserPIN: i.UserPIN, SOPIN: i.SOPIN,
		MinPINLen: i.MinPINLen, MaxPINLen: i.MaxPINLen}
}

// Call is one call from the script into a host function or method, in the order the calls
// started (Seq). Values are as runtime.CallEvent gives them (secrets already "<secret>"),
// except that a string that is not valid UTF-8 (a DER certificate, a signature) is written
// as {"$bytes": "<base64>"} so that it survives JSON unchanged for a replay. A handle with
// data fields is {"$handle": ..., "type": ..., "fields": {...}}.
type Call struct {
	Kind   string `json:"kind"`
	Seq    uint64 `json:"seq"`
	Depth  int    `json:"depth,omitempty"`
	Name   string `json:"name"` // "token.wait", "token.Token:login"
	Module string `json:"module"`
	Type   string `json:"type,omitempty"`
	Func   string `json:"func"`
	Self   string `json:"self,omitempty"`
	Args   []any  `json:"args"`
	// Results are empty when the call raised; Error is then its message.
	Results []any  `json:"results"`
	Error   string `json:"error,omitempty"`
	// Prompt is set for the prompts of module ui: the same call, read as a question.
	Prompt *Prompt `json:"prompt,omitempty"`
	// OffsetUS is when the call started, DurationUS how long it took, in microseconds
	// since the run started.
	OffsetUS   int64 `json:"offset_us"`
	DurationUS int64 `json:"duration_us"`
}

// Prompt is a ui call read as a question and its answer ("<secret>" for ui.secret).
type Prompt struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // ask, secret, choose, confirm
	Answer any    `json:"answer,omitempty"`
}

// Footer is the last line: how the run ended.
type Footer struct {
	Kind    string `json:"kind"`
	Outcome string `json:"outcome"`        // "ok", "error", or "cancelled" (stopped by a signal)
	Code    string `json:"code,omitempty"` // the script-visible error code, when there is one
	Message string `json:"message,omitempty"`
	// Exit is the process exit code and ExitClass its name (see the README's exit codes).
	Exit       int    `json:"exit"`
	ExitClass  string `json:"exit_class"`
	DurationUS int64  `json:"duration_us"`
	Calls      int    `json:"calls"`
}

// Recorder collects a run's calls. It implements runtime.Observer; it is safe for
// concurrent use, though runtime calls it from the script's goroutine only.
type Recorder struct {
	mu     sync.Mutex
	start  time.Time
	header Header
	calls  []Call
	now    func() time.Time
}

// NewRecorder starts recording now. Header's Kind, Format and Start are filled in.
func NewRecorder(h Header) *Recorder {
	r := &Recorder{now: time.Now}
	r.start = r.now()
	h.Kind, h.Format, h.Start = KindHeader, FormatVersion, r.start.UTC()
	r.header = h
	return r
}

// SetHeader lets the caller complete the header after the run, when the procedure's
// version is known; Kind, Format and Start are kept.
func (r *Recorder) SetHeader(f func(*Header)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.header)
	r.header.Kind, r.header.Format = KindHeader, FormatVersion
}

// Header is the header as it stands.
func (r *Recorder) Header() Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header
}

// Call implements runtime.Observer.
func (r *Recorder) Call(e runtime.CallEvent) {
	end := r.now()
	c := Call{Kind: KindCall, Seq: e.Seq, Depth: e.Depth, Name: e.Name(), Module: e.Module, Type: e.Type,
		Func: e.Func, Self: e.Self, Args: clean(e.Args), Results: clean(e.Results), Error: e.Err,
		OffsetUS: end.Sub(r.start).Microseconds() - e.Duration.Microseconds(), DurationUS: e.Duration.Microseconds()}
	if c.Args == nil {
		c.Args = []any{}
	}
	if c.Results == nil {
		c.Results = []any{}
	}
	c.Prompt = promptOf(e, c.Results)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// promptOf reads a ui prompt call: its id from the options table, its answer from the
// first result (already "<secret>" for ui.secret).
func promptOf(e runtime.CallEvent, results []any) *Prompt {
	if e.Module != "ui" || e.Type != "" {
		return nil
	}
	switch e.Func {
	case "ask", "secret", "choose", "confirm":
	default:
		return nil
	}
	p := &Prompt{Kind: e.Func}
	if len(e.Args) > 0 {
		if opts, ok := e.Args[0].(map[string]any); ok {
			p.ID, _ = opts["id"].(string)
		}
	}
	if len(results) > 0 {
		p.Answer = results[0]
	}
	return p
}

// Finish ends the recording with f and returns the whole transcript, one JSON value a line.
// Footer's Kind, DurationUS and Calls are filled in.
func (r *Recorder) Finish(f Footer) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Kind = KindFooter
	f.DurationUS = r.now().Sub(r.start).Microseconds()
	f.Calls = len(r.calls)
	// The runtime reports a call when it ends, so a call made from a callback (a prompt's
	// validate calling policy.check) arrives before the prompt: put them back in the order
	// they started, the order a replay needs.
	sort.SliceStable(r.calls, func(i, j int) bool { return r.calls[i].Seq < r.calls[j].Seq })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep <, > and & as they are: the text is read by people and searched for secrets
	// as typed.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.header); err != nil {
		return nil, fmt.Errorf("transcript header: %w", err)
	}
	for _, c := range r.calls {
		if err := enc.Encode(c); err != nil {
			return nil, fmt.Errorf("transcript call %d (%s): %w", c.Seq, c.Name, err)
		}
	}
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("transcript footer: %w", err)
	}
	return buf.Bytes(), nil
}

// Clean converts observed values (runtime.CallEvent's Args and Results) as the recorder
// does before writing them, so that a replay compares like with like.
func Clean(vs []any) []any { return clean(vs) }

// clean makes observed values encodable without loss: JSON has no NaN or infinity, and
// would replace the bytes of a binary string.
func clean(vs []any) []any {
	if vs == nil {
		return nil
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = cleanValue(v)
	}
	return out
}

func cleanValue(v any) any {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v)
		}
		return v
	case string:
		if !utf8.ValidString(v) {
			return map[string]any{"$bytes": base64.StdEncoding.EncodeToString([]byte(v))}
		}
		return v
	case []any:
		return clean(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = cleanValue(x)
		}
		return out
	}
	return v
}
