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
	"bufio"
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokenrun/tokenrun/internal/atomicfile"

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
	// CARoots is the PEM text of the CA roots the run had (ctx.config.ca.roots, read from
	// the region's or --set's file when the run started). A replay gives the script these,
	// and never opens a file a transcript names: whoever wrote the transcript chose that
	// path, not the person replaying it.
	CARoots string `json:"ca_roots,omitempty"`

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
//
// Calls are not kept in memory: each is written, as its JSON line, to a spill file (in
// SpillDir, else the system's temporary folder) as soon as every call that started before
// it has been reported, through a bounded buffer. Close assembles header, calls and footer
// into a Pending file that is checked for secrets before it is put anywhere.
type Recorder struct {
	mu     sync.Mutex
	start  time.Time
	header Header
	now    func() time.Time

	dir     string   // where the spill and the pending file go
	pending []Call   // reported calls waiting for one that started earlier (min-heap by Seq)
	next    uint64   // the seq written next
	calls   int      // calls reported
	spill   *os.File // nil until the first call is written
	w       *bufio.Writer
	err     error // the first write error, reported by Close
}

// maxPendingCalls bounds the calls held back waiting for an earlier one (a prompt's
// validate callback reports its calls before the prompt). Nesting is a few levels deep; past
// this, the earliest is written anyway and the order is kept as well as it can be.
const maxPendingCalls = 1024

// NewRecorder starts recording now. Header's Kind, Format and Start are filled in.
func NewRecorder(h Header) *Recorder {
	r := &Recorder{now: time.Now, next: 1}
	r.start = r.now()
	h.Kind, h.Format, h.Start = KindHeader, FormatVersion, r.start.UTC()
	r.header = h
	return r
}

// SpillDir puts the recorder's files in dir (the destination's folder, so that nothing of
// the run is written elsewhere); call it before the run.
func (r *Recorder) SpillDir(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dir = dir
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
		Func: e.Func, Self: e.Self, Args: clean(e.Args), Results: clean(e.Results), Error: capText(e.Err),
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
	r.calls++
	// The runtime reports a call when it ends, so a call made from a callback (a prompt's
	// validate calling policy.check) arrives before the prompt: hold calls back until the
	// ones that started before them are in, the order a replay needs.
	heap.Push((*callHeap)(&r.pending), c)
	for len(r.pending) > 0 && (r.pending[0].Seq <= r.next || len(r.pending) > maxPendingCalls) {
		r.writeCall(heap.Pop((*callHeap)(&r.pending)).(Call))
	}
}

// writeCall writes one call to the spill file; r.mu is held.
func (r *Recorder) writeCall(c Call) {
	if c.Seq >= r.next {
		r.next = c.Seq + 1
	}
	if r.err != nil {
		return
	}
	if r.spill == nil {
		f, err := os.CreateTemp(r.dir, ".transcript-calls-*.tmp")
		if err != nil {
			r.err = fmt.Errorf("transcript: %w", err)
			return
		}
		r.spill, r.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	line, err := encodeLine(c)
	if err != nil {
		r.err = fmt.Errorf("transcript call %d (%s): %w", c.Seq, c.Name, err)
		return
	}
	if len(line) > MaxLine/2 {
		// Many values each under MaxValue: keep the call, cut its values whole.
		c.Args, c.Results = []any{truncated(line)}, []any{}
		if c.Prompt != nil {
			c.Prompt.Answer = nil
		}
		if line, err = encodeLine(c); err != nil {
			r.err = fmt.Errorf("transcript call %d (%s): %w", c.Seq, c.Name, err)
			return
		}
	}
	if _, err := r.w.Write(line); err != nil {
		r.err = fmt.Errorf("transcript: %w", err)
	}
}

// encodeLine is v as one JSON line. <, > and & are kept as they are: the text is read by
// people and searched for secrets as typed.
func encodeLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type callHeap []Call

func (h callHeap) Len() int           { return len(h) }
func (h callHeap) Less(i, j int) bool { return h[i].Seq < h[j].Seq }
func (h callHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *callHeap) Push(x any)        { *h = append(*h, x.(Call)) }
func (h *callHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
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

// Close ends the recording with f and assembles the transcript (header, calls in the order
// they started, footer) in a Pending file beside the spilled calls. Nothing is at its
// destination yet: check it for secrets, then write it. Footer's Kind, DurationUS and Calls
// are filled in.
func (r *Recorder) Close(f Footer) (*Pending, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.pending) > 0 {
		r.writeCall(heap.Pop((*callHeap)(&r.pending)).(Call))
	}
	spill := r.spill
	r.spill = nil
	if spill != nil {
		defer func() { spill.Close(); os.Remove(spill.Name()) }()
		if r.err == nil {
			if err := r.w.Flush(); err != nil {
				r.err = fmt.Errorf("transcript: %w", err)
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	f.Kind = KindFooter
	f.DurationUS = r.now().Sub(r.start).Microseconds()
	f.Calls = r.calls
	f.Message = capText(f.Message)
	out, err := os.CreateTemp(r.dir, ".transcript-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	p := &Pending{path: out.Name()}
	fail := func(err error) (*Pending, error) {
		out.Close()
		p.Remove()
		return nil, err
	}
	if err := out.Chmod(0o600); err != nil {
		return fail(fmt.Errorf("transcript: %w", err))
	}
	w := bufio.NewWriterSize(out, 64<<10)
	line, err := encodeLine(r.header)
	if err != nil {
		return fail(fmt.Errorf("transcript header: %w", err))
	}
	w.Write(line)
	if spill != nil {
		if _, err := spill.Seek(0, io.SeekStart); err != nil {
			return fail(fmt.Errorf("transcript: %w", err))
		}
		if _, err := io.Copy(w, spill); err != nil {
			return fail(fmt.Errorf("transcript: %w", err))
		}
	}
	if line, err = encodeLine(f); err != nil {
		return fail(fmt.Errorf("transcript footer: %w", err))
	}
	w.Write(line)
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("transcript: %w", err))
	}
	if err := out.Close(); err != nil {
		p.Remove()
		return nil, fmt.Errorf("transcript: %w", err)
	}
	return p, nil
}

// Finish is Close with the whole transcript returned in memory, for tests and small runs.
func (r *Recorder) Finish(f Footer) ([]byte, error) {
	p, err := r.Close(f)
	if err != nil {
		return nil, err
	}
	defer p.Remove()
	return p.Bytes()
}

// Pending is a finished transcript in a temporary file, not yet at its destination.
type Pending struct {
	path string
}

// Bytes reads the whole transcript.
func (p *Pending) Bytes() ([]byte, error) { return os.ReadFile(p.path) }

// Open reads the transcript from its start.
func (p *Pending) Open() (*os.File, error) { return os.Open(p.path) }

// Check searches the transcript for secrets (Secrets.CheckReader); on a match, or when it
// cannot be read, the file is removed, so nothing holding a secret stays on disk.
func (p *Pending) Check(s *Secrets) error {
	f, err := p.Open()
	if err != nil {
		p.Remove()
		return fmt.Errorf("transcript: %w", err)
	}
	err = s.CheckReader(f)
	f.Close()
	if err != nil {
		p.Remove()
	}
	return err
}

// WriteFile writes the transcript to path atomically (WriteFile of the package).
func (p *Pending) WriteFile(path string) error {
	f, err := p.Open()
	if err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	defer f.Close()
	if err := atomicfile.WriteFileFrom(path, f, 0o600); err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	return nil
}

// Keep is the package's Keep for a pending transcript.
func (p *Pending) Keep(dir, name string, start time.Time, lim Limits) (string, error) {
	return keep(dir, name, start, lim, func(path string) error {
		f, err := p.Open()
		if err != nil {
			return err
		}
		defer f.Close()
		return atomicfile.WriteNewFrom(path, f, 0o600)
	})
}

// Remove deletes the temporary file.
func (p *Pending) Remove() { os.Remove(p.path) }

// MaxValue bounds one recorded string: a 16 MiB document given to sign.verify is recorded as
// {"$truncated": SHA-256, "bytes": N}, which a replay compares with the digest of what it is
// given. Certificates, CSRs and PEM roots are well under it.
const MaxValue = 64 << 10

// MaxLine bounds one line of a transcript, for the recorder (a call whose values together
// pass half of it has them cut whole) and for readers (a longer line is refused).
const MaxLine = 8 << 20

// truncated stands for a value too long to record.
func truncated(b []byte) map[string]any {
	sum := sha256.Sum256(b)
	return map[string]any{"$truncated": hex.EncodeToString(sum[:]), "bytes": float64(len(b))}
}

// truncatedString is truncated for a string, hashed in pieces rather than copied whole.
func truncatedString(s string) map[string]any {
	h := sha256.New()
	var buf [32 << 10]byte
	for i := 0; i < len(s); {
		n := copy(buf[:], s[i:])
		h.Write(buf[:n])
		i += n
	}
	return map[string]any{"$truncated": hex.EncodeToString(h.Sum(nil)), "bytes": float64(len(s))}
}

// capText cuts an error message or other free text to MaxValue, marked.
func capText(s string) string {
	if len(s) <= MaxValue {
		return s
	}
	cut := MaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... [%d bytes cut]", len(s)-cut)
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
		if len(v) > MaxValue {
			return truncatedString(v)
		}
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
