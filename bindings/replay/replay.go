// Package replay re-runs a procedure against its transcript instead of a token, a CA and a
// person: every module of bindings/all is replaced by one with the same functions, methods
// and secrets whose functions give back what the transcript recorded, in order, after
// checking that the script made the same call with the same arguments. An unchanged script
// reproduces its run; a changed one is stopped at its first divergence.
//
// Arguments are compared as the recorder wrote them: observed by the runtime (secrets
// "<secret>", userdata their tostring text or, for a handle with data fields, its
// {"$handle", "type", "fields"} form, functions "<function>") and cleaned by
// transcript.Clean. A recorded "<secret>" matches anything. A handle is given back as a
// handle of its type whose tostring is the recorded text and whose data fields (key.id)
// are the recorded ones; a handle passed as an argument is compared whole, fields
// included, since the text alone ("token.Key") does not tell two keys apart.
//
// A prompt's validate callback is run again on the recorded answer (Player.validate), and
// the calls it makes are checked against those of the prompt's last attempt.
//
// In live mode (Live, for tokenrun replay --soft) the token module runs for real, on a
// reproduction token, and its calls are checked loosely (Loose).
//
// Limits: calls nested two deep (a callback of a callback) are not checked. A
// secret answer is given back as a placeholder distinct from every other ("<secret 9>"),
// so a script that compares a typed secret with a known value (the region's default PIN)
// may take another path than the recorded run; Search then tries such values. A format 1
// transcript kept only the text of handles, so their data fields are nil in its replay.
package replay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/bindings/all"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/transcript"
)

// Record is a transcript read back.
type Record struct {
	Header transcript.Header
	Calls  []transcript.Call
	Footer transcript.Footer
}

// Read parses a transcript: a header line, call lines in increasing seq order, a footer
// line. Anything else is an error naming the line.
func Read(r io.Reader) (*Record, error) {
	lr := transcript.NewLineReader(r)
	rec := &Record{}
	n, footer := 0, false
	for {
		line, _, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n++
			if perr := rec.parseLine(n, line, footer); perr != nil {
				return nil, perr
			}
			footer = rec.Footer.Kind == transcript.KindFooter
		}
	}
	switch {
	case n == 0:
		return nil, errors.New("transcript is empty")
	case !footer:
		return nil, errors.New("transcript has no footer line: the run did not finish writing it")
	}
	return rec, nil
}

func (rec *Record) parseLine(n int, line []byte, afterFooter bool) error {
	var kind struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(line, &kind); err != nil {
		return fmt.Errorf("transcript line %d: %w", n, err)
	}
	if afterFooter {
		return fmt.Errorf("transcript line %d: %q after the footer", n, kind.Kind)
	}
	if n == 1 && kind.Kind != transcript.KindHeader {
		return fmt.Errorf("transcript line 1: want a header, got kind %q", kind.Kind)
	}
	switch kind.Kind {
	case transcript.KindHeader:
		if n != 1 {
			return fmt.Errorf("transcript line %d: a second header", n)
		}
		if err := json.Unmarshal(line, &rec.Header); err != nil {
			return fmt.Errorf("transcript line 1: %w", err)
		}
		if rec.Header.Format < 1 || rec.Header.Format > transcript.FormatVersion {
			return fmt.Errorf("transcript format %d: this tokenrun reads format 1 to %d", rec.Header.Format, transcript.FormatVersion)
		}
	case transcript.KindCall:
		var c transcript.Call
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("transcript line %d: %w", n, err)
		}
		if c.Name == "" {
			return fmt.Errorf("transcript line %d: a call without a name", n)
		}
		if k := len(rec.Calls); k > 0 && c.Seq <= rec.Calls[k-1].Seq {
			return fmt.Errorf("transcript line %d: call seq %d after seq %d", n, c.Seq, rec.Calls[k-1].Seq)
		}
		rec.Calls = append(rec.Calls, c)
	case transcript.KindFooter:
		if err := json.Unmarshal(line, &rec.Footer); err != nil {
			return fmt.Errorf("transcript line %d: %w", n, err)
		}
	default:
		return fmt.Errorf("transcript line %d: unknown kind %q", n, kind.Kind)
	}
	return nil
}

// StartKeys are the fields of the keys the script's first successful tok:keys() listed
// before it changed any object: the keys on the token at the start, which a header cannot
// list (a token shows private keys only after a login).
func (rec *Record) StartKeys() []map[string]any {
	changes := map[string]bool{}
	for _, m := range []string{"generate_key", "delete", "format", "store_certificate"} {
		changes[bindtoken.TokenType+":"+m] = true
	}
	for _, c := range rec.Calls {
		if changes[c.Name] {
			return nil
		}
		if c.Name != bindtoken.TokenType+":keys" || c.Error != "" || len(c.Results) == 0 {
			continue
		}
		list, ok := c.Results[0].([]any)
		if !ok {
			continue
		}
		var out []map[string]any
		for _, v := range list {
			h, _ := v.(map[string]any)
			if f, ok := h["fields"].(map[string]any); ok {
				out = append(out, f)
			}
		}
		return out
	}
	return nil
}

// Step is one call as the recorder writes it: its name and arguments.
type Step struct {
	Name string
	Self string
	Args []any
}

func (s *Step) String() string {
	parts := make([]string, len(s.Args))
	for i, a := range s.Args {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // "<secret>" reads as it is
		if err := enc.Encode(a); err != nil {
			parts[i] = fmt.Sprint(a)
			continue
		}
		parts[i] = strings.TrimSuffix(b.String(), "\n")
	}
	return s.Name + "(" + strings.Join(parts, ", ") + ")"
}

// Divergence is the first difference between a replay and its record.
type Divergence struct {
	Seq    uint64 // the recorded step (past the last one for an extra call)
	Want   *Step  // the recorded call; nil when the script made more calls than recorded
	Got    *Step  // the new call; nil when it made fewer
	Reason string // set when the calls are not the difference (the outcome is)
	// RunErr is how the replayed run ended, for context.
	RunErr error
}

func (d *Divergence) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay diverged at step %d: ", d.Seq)
	switch {
	case d.Reason != "":
		b.WriteString(d.Reason)
	case d.Want == nil:
		fmt.Fprintf(&b, "the script made more calls than recorded: new %s", d.Got)
	case d.Got == nil:
		fmt.Fprintf(&b, "the script made fewer calls than recorded: recorded %s, new: none", d.Want)
	default:
		fmt.Fprintf(&b, "recorded %s, new %s", d.Want, d.Got)
		if d.Want.Self != d.Got.Self && d.Want.Name == d.Got.Name {
			fmt.Fprintf(&b, " (on %q, recorded on %q)", d.Got.Self, d.Want.Self)
		}
	}
	if d.RunErr != nil && d.Reason == "" {
		fmt.Fprintf(&b, " (the replay ended: %v)", d.RunErr)
	}
	// Recorded names and values are the transcript's, printed on a terminal: one line,
	// controls and bidirectional marks escaped.
	return strings.ReplaceAll(termtext.Lines(b.String()), "\n", `\n`)
}

// Player feeds a record back to a run. Use Modules for the run's registry and the Player
// as its observer; then Finish.
type Player struct {
	rec   *Record
	calls []transcript.Call // depth 0, in seq order
	next  int
	cur   *transcript.Call // the call being replayed, nil past the end
	div   *Divergence
	types []string // registered type names, longest first
	// secrets are the values given back for the recorded "<secret>" results of a call, by
	// seq; a call without one gets a placeholder unique to it.
	secrets map[uint64]string
	// issued are the placeholders given back, with the seq of their call.
	issued map[string]uint64

	// inner are the recorded calls of a prompt's validate callback being replayed (its
	// last attempt), nil outside one; innerNext is the next to give back.
	inner     []transcript.Call
	innerNext int
	cur0      uint64 // the seq of the prompt whose validate is replayed

	live    *Live // nil: nothing runs for real
	curLive bool  // the call being replayed runs for real
	abort   error // a live replay could not go on (support gave no secret)
}

// New returns a player for rec. secrets, which may be nil, gives the value to give back
// for the "<secret>" results of the call with that seq (see Search).
func New(rec *Record, secrets map[uint64]string) *Player {
	p := &Player{rec: rec, secrets: secrets, issued: map[string]uint64{}}
	for _, c := range rec.Calls {
		if c.Depth == 0 {
			p.calls = append(p.calls, c)
		}
	}
	return p
}

// Modules are the replaying twins of bindings/all.Modules.
func (p *Player) Modules() []runtime.Module {
	var out []runtime.Module
	real := map[string]runtime.Module{}
	if p.live != nil {
		for _, m := range p.live.Modules {
			real[m.Name] = m
		}
	}
	for _, m := range all.Modules() {
		if lm, ok := real[m.Name]; ok {
			out = append(out, p.liveModule(lm))
			continue
		}
		r := runtime.Module{Name: m.Name, Doc: m.Doc, Values: m.Values}
		for _, f := range m.Funcs {
			r.Funcs = append(r.Funcs, p.twin(f, m.Name+"."+f.Name))
		}
		for _, t := range m.Types {
			rt := runtime.Type{Name: t.Name, Doc: t.Doc}
			if t.Fields != nil {
				rt.Fields, rt.FieldNames = recordedFields, t.FieldNames
			}
			for _, f := range t.Methods {
				rt.Methods = append(rt.Methods, p.twin(f, t.Name+":"+f.Name))
			}
			r.Types = append(r.Types, rt)
			p.types = append(p.types, t.Name)
		}
		out = append(out, r)
	}
	sort.Slice(p.types, func(i, j int) bool { return len(p.types[i]) > len(p.types[j]) })
	return out
}

func (p *Player) twin(f runtime.Func, name string) runtime.Func {
	f.Fn = func(L *lua.LState) int { return p.play(L, name) }
	return f
}

// take moves to the next recorded call, which must be name's; it raises otherwise (the
// observer then reports the divergence).
func (p *Player) take(L *lua.LState, name string) *transcript.Call {
	if p.div != nil {
		L.RaiseError("%s", p.div.Error())
	}
	if p.inner != nil {
		if p.innerNext >= len(p.inner) {
			p.cur = nil
			L.RaiseError("replay: %s is past the recorded calls of the prompt's validate", name)
		}
		c := &p.inner[p.innerNext]
		p.innerNext++
		p.cur = c
		if c.Name != name {
			L.RaiseError("replay: %s where the record has %s (step %d)", name, c.Name, c.Seq)
		}
		return c
	}
	if p.next >= len(p.calls) {
		p.cur = nil
		L.RaiseError("replay: %s is past the end of the record", name)
	}
	c := &p.calls[p.next]
	p.next++
	p.cur = c
	if c.Name != name {
		L.RaiseError("replay: %s where the record has %s (step %d)", name, c.Name, c.Seq)
	}
	return c
}

// play gives back the next recorded call's results, or raises its recorded error. Its
// arguments are checked by Call, which the runtime calls right after with them observed.
func (p *Player) play(L *lua.LState, name string) int {
	c := p.take(L, name)
	if c.Prompt != nil && c.Error == "" && p.inner == nil {
		p.validate(L, c)
	}
	if c.Error != "" {
		runtime.Raise(L, &RecordedError{Message: c.Error, Code: p.raisedCode(c.Error)})
	}
	for _, v := range c.Results {
		L.Push(p.toLua(L, v, c.Seq))
	}
	return len(c.Results)
}

// raisedCode is the footer's code when the run ended with this raised error: the Go error
// behind it (and its code) is not in the call's record.
func (p *Player) raisedCode(msg string) string {
	if p.rec.Footer.Code != "" && strings.Contains(p.rec.Footer.Message, msg) {
		return p.rec.Footer.Code
	}
	return ""
}

// Call implements runtime.Observer: it compares the call just made with the record.
func (p *Player) Call(e runtime.CallEvent) {
	if p.div != nil || e.Depth > 1 || (e.Depth == 1) != (p.inner != nil) {
		return
	}
	got := &Step{Name: e.Name(), Self: e.Self, Args: normalize(transcript.Clean(e.Args))}
	c, live := p.cur, p.curLive
	p.cur, p.curLive = nil, false
	if c == nil && e.Depth == 1 {
		p.div = &Divergence{Seq: p.cur0, Reason: "the prompt's validate made more calls than recorded: new " + got.String()}
		return
	}
	if c == nil {
		var last uint64
		if n := len(p.rec.Calls); n > 0 {
			last = p.rec.Calls[n-1].Seq
		}
		p.div = &Divergence{Seq: last + 1, Got: got}
		return
	}
	want := &Step{Name: c.Name, Self: c.Self, Args: c.Args}
	match := Match
	if p.live != nil {
		match = Loose
	}
	if c.Name != got.Name || c.Self != got.Self || !match(c.Args, got.Args) {
		p.div = &Divergence{Seq: c.Seq, Want: want, Got: got}
		return
	}
	if live {
		p.checkLive(c, e)
	}
}

// normalize makes observed values look like decoded JSON (a nil slice is an empty array).
func normalize(vs []any) []any {
	if vs == nil {
		return []any{}
	}
	return vs
}

// Match reports whether a new value matches a recorded one: equal as the recorder writes
// them, where a recorded "<secret>" matches anything.
func Match(recorded, got any) bool {
	if s, ok := recorded.(string); ok && s == runtime.Redacted {
		return true
	}
	switch r := recorded.(type) {
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(r) {
			return false
		}
		for i := range r {
			if !Match(r[i], g[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(r) {
			return false
		}
		for k, v := range r {
			gv, ok := g[k]
			if !ok || !Match(v, gv) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(recorded, got)
}

// Finish checks the end of the replay: every recorded call made, and the run ending as
// recorded (ok, or failed with the same code). code is the script-visible code of runErr.
func (p *Player) Finish(runErr error, code string) error {
	if p.abort != nil {
		return p.abort
	}
	if p.div != nil {
		return p.div // the run ended on the divergence: its error says no more
	}
	if p.next < len(p.calls) {
		c := p.calls[p.next]
		return &Divergence{Seq: c.Seq, Want: &Step{Name: c.Name, Self: c.Self, Args: c.Args}, RunErr: runErr}
	}
	f := p.rec.Footer
	var last uint64
	if n := len(p.rec.Calls); n > 0 {
		last = p.rec.Calls[n-1].Seq
	}
	switch {
	case f.Outcome == "ok" && runErr != nil:
		return &Divergence{Seq: last + 1, Reason: fmt.Sprintf("the recorded run succeeded, the replay failed: %v", runErr)}
	case f.Outcome != "ok" && runErr == nil:
		return &Divergence{Seq: last + 1, Reason: fmt.Sprintf("the recorded run failed (%s), the replay succeeded", f.Message)}
	case f.Outcome != "ok" && code != f.Code:
		return &Divergence{Seq: last + 1, Reason: fmt.Sprintf("the recorded run failed with code %q, the replay with %q: %v", f.Code, code, runErr)}
	}
	return nil
}

// RecordedError is a recorded raised error given back by a replay. Code is the recorded
// run's code when that error ended it.
type RecordedError struct {
	Message string
	Code    string
}

func (e *RecordedError) Error() string { return e.Message }

// ErrorCode is the script-visible code of the recorded error.
func (e *RecordedError) ErrorCode() string { return e.Code }

// RaisedCode is the code of a recorded error that ended a replay, "" for none.
func RaisedCode(err error) string {
	var re *RecordedError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// bare is a replayed handle whose tostring is the type name alone; named one whose
// tostring is "type: text". fields is the JSON of the recorded data fields, "" for none:
// a string, so both still compare by value and equal records are the same handle.
type bare struct{ fields string }

type named struct{ text, fields string }

func (n named) String() string { return n.text }

// recordedFields is the Fields func of every replayed type whose original has data
// fields: the fields recorded with the handle, nil (every field nil) when there are none.
func recordedFields(v any) map[string]any {
	var raw string
	switch h := v.(type) {
	case bare:
		raw = h.fields
	case named:
		raw = h.fields
	}
	if raw == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil // cannot happen: handle marshalled it
	}
	return unclean(m).(map[string]any)
}

// unclean undoes transcript.Clean's {"$bytes": ...} inside recorded fields, so a binary
// field reads as the string it was.
func unclean(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = unclean(x)
		}
		return out
	case map[string]any:
		if b64, ok := v["$bytes"].(string); ok && len(v) == 1 {
			if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
				return string(raw)
			}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = unclean(x)
		}
		return out
	}
	return v
}

// handle is a replayed handle of a registered type for a recorded text ("type" or
// "type: text") and the JSON of its fields; ok is false when the text names no type.
func (p *Player) handle(L *lua.LState, text, fields string) (lua.LValue, bool) {
	for _, t := range p.types {
		if text == t {
			return runtime.NewUserData(L, t, bare{fields}), true
		}
		if rest, ok := strings.CutPrefix(text, t+": "); ok {
			return runtime.NewUserData(L, t, named{rest, fields}), true
		}
	}
	return nil, false
}

// toLua converts a recorded value back: {"$bytes": ...} to the raw string, a userdata's
// text or {"$handle": ...} to a replayed handle of its type (with its recorded fields), a
// secret to a placeholder unique to its call.
func (p *Player) toLua(L *lua.LState, v any, seq uint64) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		if v == runtime.Redacted {
			if g, ok := p.secrets[seq]; ok {
				return lua.LString(g)
			}
			marker := fmt.Sprintf("<secret %d>", seq)
			p.issued[marker] = seq
			return lua.LString(marker)
		}
		if h, ok := p.handle(L, v, ""); ok {
			return h
		}
		return p.str(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, x := range v {
			t.RawSetInt(i+1, p.toLua(L, x, seq))
		}
		return t
	case map[string]any:
		if b64, ok := v["$bytes"].(string); ok && len(v) == 1 {
			if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
				return p.str(string(raw))
			}
		}
		if sum, ok := v["$truncated"].(string); ok && len(v) == 2 {
			L.RaiseError("replay: call %d returned a value of %v bytes that the transcript kept only as its digest (sha256 %.16s...): it cannot be given back to the script", seq, v["bytes"], sum)
		}
		if text, ok := v["$handle"].(string); ok {
			if f, ok := v["fields"].(map[string]any); ok {
				if raw, err := json.Marshal(f); err == nil {
					if h, ok := p.handle(L, text, string(raw)); ok {
						return h
					}
				}
			}
		}
		t := L.CreateTable(0, len(v))
		for k, x := range v {
			t.RawSetString(k, p.toLua(L, x, seq))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// str is a recorded string given back: in a reproduction, a certificate of the client's
// key is given back as its stand-in for the reproduction's key.
func (p *Player) str(v string) lua.LValue {
	if p.live != nil {
		if s, ok := p.live.StandIn.Replace(v); ok {
			return lua.LString(s)
		}
	}
	return lua.LString(v)
}

// Search replays rec with play until a replay reproduces the record or none of the
// guesses is left, and returns the error of the replay that came furthest. play builds a
// run with the player and returns its Finish (or any other error, which ends the search).
//
// The transcript keeps no secret, so a replay gives each secret answer back as a
// placeholder; a script that compares one with a known value (an optional answer left
// empty, the region's default PIN) then takes another path than the recorded run did. On
// such a divergence the secrets recorded before it are tried with each of guesses in turn,
// latest first, at most limit replays in all: any value the record is consistent with
// explains it as well as the one typed.
func Search(rec *Record, guesses []string, limit int, play func(*Player) error) error {
	var secretSeqs []uint64
	for _, c := range rec.Calls {
		if c.Depth == 0 && hasRedacted(c.Results) {
			secretSeqs = append(secretSeqs, c.Seq)
		}
	}
	choice := map[uint64]int{} // seq -> 1 + index in guesses; 0 is the placeholder
	var best *Divergence
	var bestSecrets map[uint64]string
	for attempt := 0; ; attempt++ {
		secrets := map[uint64]string{}
		for seq, i := range choice {
			if i > 0 {
				secrets[seq] = guesses[i-1]
			}
		}
		err := play(New(rec, secrets))
		var d *Divergence
		if !errors.As(err, &d) {
			return err
		}
		last := best == nil || d.Seq > best.Seq
		if last {
			best, bestSecrets = d, secrets
		}
		if attempt+1 >= limit || !advance(choice, secretSeqs, d.Seq, len(guesses)) {
			if last {
				return best
			}
			// The replay that came furthest runs once more, so that what it leaves behind
			// (a reproduction token) is its own, not that of a later try.
			return play(New(rec, bestSecrets))
		}
	}
}

// advance moves the odometer of choices over the secrets recorded before step: the latest
// one first, resetting those after it. It reports false when every choice is used.
func advance(choice map[uint64]int, seqs []uint64, step uint64, n int) bool {
	for i := len(seqs) - 1; i >= 0; i-- {
		if seqs[i] >= step {
			continue
		}
		if choice[seqs[i]] < n {
			choice[seqs[i]]++
			for _, later := range seqs[i+1:] {
				delete(choice, later)
			}
			return true
		}
	}
	return false
}

func hasRedacted(vs []any) bool {
	for _, v := range vs {
		if s, ok := v.(string); ok && s == runtime.Redacted {
			return true
		}
	}
	return false
}

// refusal is a validate callback's message: a string, or an err table's message.
func refusal(v lua.LValue) string {
	if t, ok := v.(*lua.LTable); ok {
		return lua.LVAsString(t.RawGetString("message"))
	}
	return v.String()
}

// validate re-runs the validate callback of a recorded prompt on its recorded answer,
// giving back and checking the calls it made in the record (policy.password, ...): a
// changed script whose rules refuse the client's answer, or that checks it otherwise,
// diverges there. A prompt answered after several attempts recorded the calls of each;
// the last attempt's, the one that accepted the answer, are those checked: they start at
// the last call like the first attempt's first.
func (p *Player) validate(L *lua.LState, c *transcript.Call) {
	opts, ok := L.Get(1).(*lua.LTable)
	if !ok {
		return
	}
	fn, ok := opts.RawGetString("validate").(*lua.LFunction)
	if !ok || len(c.Results) == 0 {
		return
	}
	var nested []transcript.Call
	for i := range p.rec.Calls {
		if p.rec.Calls[i].Seq <= c.Seq {
			continue
		}
		if p.rec.Calls[i].Depth == 0 {
			break
		}
		if p.rec.Calls[i].Depth == 1 {
			nested = append(nested, p.rec.Calls[i])
		}
	}
	start := 0
	for i := len(nested) - 1; i > 0; i-- {
		if nested[i].Name == nested[0].Name {
			start = i
			break
		}
	}
	answer := p.toLua(L, c.Results[0], c.Seq)
	p.inner, p.innerNext, p.cur0 = nested[start:], 0, c.Seq
	if p.inner == nil {
		p.inner = []transcript.Call{}
	}
	err := L.CallByParam(lua.P{Fn: fn, NRet: 2, Protect: true}, answer)
	inner, used := p.inner, p.innerNext
	p.inner, p.innerNext, p.cur = nil, 0, c
	what := fmt.Sprintf("%s %q: its validate", c.Name, c.Prompt.ID)
	switch {
	case p.div != nil:
	case err != nil:
		p.div = &Divergence{Seq: c.Seq, Reason: fmt.Sprintf("%s failed on the recorded answer: %v", what, err)}
	case !lua.LVAsBool(L.Get(-2)):
		p.div = &Divergence{Seq: c.Seq, Reason: fmt.Sprintf("%s refuses the recorded answer (%s)", what, refusal(L.Get(-1)))}
	case used < len(inner):
		w := inner[used]
		p.div = &Divergence{Seq: w.Seq, Want: &Step{Name: w.Name, Self: w.Self, Args: w.Args}}
	}
	if err == nil {
		L.Pop(2)
	}
	if p.div != nil {
		L.RaiseError("%s", p.div.Error())
	}
}
