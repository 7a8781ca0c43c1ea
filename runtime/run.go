package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// APILevel is the level of the host API scripts are written against. It
// goes up when a function is added or a behaviour changes; a procedure
// declaring a higher api is refused.
const APILevel = 1

// Version is the host's version, set at build time with
// -ldflags "-X github.com/tokenrun/tokenrun/runtime.Version=1.2.3".
var Version = "dev"

// RunOptions configures one run. The zero value runs a script with no
// modules, no deadline and print discarded.
type RunOptions struct {
	Registry *Registry
	Observer Observer
	Timeout  time.Duration // 0: only ctx limits the run
	Print    io.Writer     // where print writes; nil discards
	// Config becomes ctx.config and Args ctx.args, both read-only: a
	// procedure cannot change what the next step of the host will read.
	Config map[string]any
	Args   map[string]any
	// Libraries are Lua modules of the scripts tree (shared helpers such as a password
	// policy), by the name scripts require them with ("lib.policy"). A registered host
	// module of the same name wins.
	Libraries map[string]*Script
	// OnProcedure, when set, is called with a procedure's metadata once it is read and
	// checked, before run(ctx) is called: a front-end announces the run by it.
	OnProcedure func(p *Procedure)
	// MemoryLimit bounds the process's heap while the run goes on (see
	// DefaultMemoryLimit): 0 is DefaultMemoryLimit, and more than
	// MaxMemoryLimit is refused.
	MemoryLimit int64
	// BeforeRun, when set, is called with a procedure's validated metadata before its run
	// function starts: the host checks what the run will need (an answers file against the
	// prompts the procedure declares) before any module is called. Its error ends the run
	// as it is, unwrapped.
	BeforeRun func(*Procedure) error
}

// Procedure is the metadata a procedure file returns.
type Procedure struct {
	Name        string
	Version     string
	API         int
	Description string
	// Prompts are the prompts the procedure may ask, as its metadata declares them
	// (field prompts): the contract with answers files, checked before a run. Nil when
	// the procedure declares none.
	Prompts []PromptSpec
}

// PromptSpec is one declared prompt: { id = "validity", kind = "choice", choices_from =
// "validity", note = "..." }.
type PromptSpec struct {
	ID   string
	Kind string // text, secret, choice or confirm
	// Choices are a choice prompt's values; ChoicesFrom instead names a list in the region
	// configuration (ctx.config) whose items' id fields are the values.
	Choices     []string
	ChoicesFrom string
	Optional    bool   // may be left out: the procedure has a default
	HumanOnly   bool   // only a person at a terminal answers it
	Note        string // when it is asked, for the README's table
}

// Result is what a successful run produced.
type Result struct {
	Procedure *Procedure // nil for a plain script
	// Values are run's return values (the chunk's for a plain script),
	// converted by ToGo.
	Values []any
}

// runState is everything one run's host functions share. A state and its
// runState live on one goroutine, so nothing here is locked.
type runState struct {
	reg   *Registry
	obs   Observer
	out   io.Writer
	api   int // declared api of the procedure; APILevel until it is known
	seq   uint64
	depth int
	names map[*lua.LFunction]*boundFunc

	loading  *lua.LUserData // see require
	readonly map[*lua.LTable]roTable
	libs     map[string]*Script

	raised raised // the last Go error raised into Lua, see Raise
}

// raised is what Raise or a recovered panic knew about an error beyond its
// message; it is matched against the final error by message.
type raised struct {
	msg     string
	cause   error
	goStack string
}

var (
	procNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// semverRe is the semver.org grammar, simplified to the parts a
	// version number needs to be compared and shown.
	semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// ErrAPILevel is the Cause of the ScriptError for a procedure that declares
// a newer api than APILevel, so the CLI can tell "update tokenrun" apart
// from a broken script.
var ErrAPILevel = errors.New("procedure needs a newer host API")

var metadataFields = []string{"api", "description", "name", "prompts", "run", "version"}

// Run executes s in a fresh sandbox. A script that returns a table with any
// of the fields name, version, api, description or run is a procedure: its
// metadata is validated, its api checked against APILevel, and run(ctx) is
// called. Anything else is a plain script, which has run once the chunk
// returns. Both receive ctx (the chunk as its only vararg). Every failure of
// the script is a *ScriptError; Config or Args that Lua cannot hold is a
// plain error, the caller's.
func Run(ctx context.Context, s *Script, opts RunOptions) (*Result, error) {
	start := time.Now()
	limit, err := memoryLimit(opts.MemoryLimit)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", s.name, err)
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	defer watchMemory(limit, cancelCause)()
	st := &runState{
		reg:   opts.Registry,
		obs:   opts.Observer,
		out:   opts.Print,
		api:   APILevel,
		names: map[*lua.LFunction]*boundFunc{},
		libs:  opts.Libraries,
	}
	if st.reg == nil {
		st.reg = NewRegistry()
	}
	if st.out == nil {
		st.out = io.Discard
	}
	runCtx := context.WithValue(ctx, stateKey{}, st)

	L := newSandbox(st)
	defer L.Close()
	L.SetContext(&vmContext{Context: runCtx, done: runCtx.Done()})

	r := &runner{L: L, st: st, s: s, ctx: runCtx, start: start, timeout: opts.Timeout}
	luaCtx, err := r.ctxTable(opts)
	if err != nil {
		return nil, err
	}

	L.Push(L.NewFunctionFromProto(s.proto))
	L.Push(luaCtx)
	values, err := r.call(1)
	if err != nil {
		return nil, err
	}
	t, ok := procedureTable(values)
	if !ok {
		// A plain script follows the same convention as a procedure's run: returning
		// nil, err is a failure, so a script cannot report an error and still exit 0.
		if failed(values) {
			return nil, r.returnedError(values[1])
		}
		return &Result{Values: toGoAll(values)}, nil
	}

	proc, run, err := r.metadata(t)
	if err != nil {
		return nil, err
	}
	r.proc = proc
	st.api = proc.API
	if opts.OnProcedure != nil {
		opts.OnProcedure(proc)
	}
	if opts.BeforeRun != nil {
		if err := opts.BeforeRun(proc); err != nil {
			return nil, err
		}
	}

	L.Push(run)
	L.Push(luaCtx)
	values, err = r.call(1)
	if err != nil {
		return nil, err
	}
	if failed(values) {
		return nil, r.returnedError(values[1])
	}
	return &Result{Procedure: proc, Values: toGoAll(values)}, nil
}

// failed reports the expected-failure convention: nil (or false), err.
func failed(values []lua.LValue) bool {
	return len(values) >= 2 && !lua.LVAsBool(values[0]) && values[1] != lua.LNil
}

// runner carries one run's pieces between its phases.
type runner struct {
	L       *lua.LState
	st      *runState
	s       *Script
	ctx     context.Context
	start   time.Time
	timeout time.Duration
	proc    *Procedure
}

// call runs the function and arguments already pushed and returns
// everything it returned.
func (r *runner) call(nargs int) (values []lua.LValue, err error) {
	L := r.L
	base := L.GetTop() - nargs - 1
	var f failure
	defer func() {
		// gopher-lua's PCall can itself fail while handling an error: with
		// the data stack full (registry overflow) pushing the error handler
		// raises again, outside its protection. The state is unusable then,
		// but it is discarded anyway; the host must not crash for it.
		if rec := recover(); rec != nil {
			var obj lua.LValue = lua.LString(fmt.Sprint(rec))
			if apiErr, ok := rec.(*lua.ApiError); ok {
				obj = apiErr.Object
			}
			values, err = nil, r.fail(obj, &f)
		}
	}()
	if err := L.PCall(nargs, lua.MultRet, errorHandler(L, &f)); err != nil {
		var obj lua.LValue = lua.LString(err.Error())
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) {
			obj = apiErr.Object
		}
		return nil, r.fail(obj, &f)
	}
	n := L.GetTop() - base
	values = make([]lua.LValue, n)
	for i := 0; i < n; i++ {
		values[i] = L.Get(base + 1 + i)
	}
	L.SetTop(base)
	return values, nil
}

func (r *runner) fail(obj lua.LValue, f *failure) *ScriptError {
	e := r.st.toScriptError(obj, f, r.s.name)
	if err := r.ctx.Err(); err != nil {
		// Whatever the script or a binding made of the cancellation, the
		// run stopped because of it; say so, at the line it stopped.
		e.Code, e.Fields = "", nil
		e.Message = "script stopped: " + r.stopReason(err)
		e.Cause = err
		if cause := context.Cause(r.ctx); errors.Is(cause, ErrMemoryLimit) {
			e.Cause = cause
		}
		e.stopped = true
	}
	r.label(e)
	return e
}

func (r *runner) stopReason(err error) string {
	if cause := context.Cause(r.ctx); errors.Is(cause, ErrMemoryLimit) {
		return cause.Error()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return "canceled"
	}
	d := r.timeout
	if dl, ok := r.ctx.Deadline(); ok && (d == 0 || dl.Before(r.start.Add(d))) {
		d = dl.Sub(r.start).Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("timed out after %s", d)
}

func (r *runner) label(e *ScriptError) {
	if r.proc != nil {
		e.Procedure, e.Version = r.proc.Name, r.proc.Version
	}
}

// returnedError is run's "return nil, err": the expected-failure
// convention. It has no line, since the frame that returned is gone.
func (r *runner) returnedError(v lua.LValue) *ScriptError {
	e := &ScriptError{File: r.s.name}
	switch v := v.(type) {
	case *lua.LTable:
		e.Code, e.Message, e.Fields = errorTable(v)
	default:
		e.Message = valueText(v)
	}
	r.label(e)
	return e
}

func (r *runner) ctxTable(opts RunOptions) (lua.LValue, error) {
	L := r.L
	ctx := L.CreateTable(0, 3)
	for _, f := range []struct {
		name string
		v    any
	}{
		{"config", nonNil(opts.Config)},
		{"args", nonNil(opts.Args)},
		{"host", map[string]any{"version": Version, "api": APILevel}},
	} {
		v, err := r.st.readOnly(L, "ctx."+f.name, f.v)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.s.name, err)
		}
		ctx.RawSetString(f.name, v)
	}
	return r.st.protect(L, "ctx", ctx, 0), nil
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func procedureTable(values []lua.LValue) (*lua.LTable, bool) {
	if len(values) == 0 {
		return nil, false
	}
	t, ok := values[0].(*lua.LTable)
	if !ok {
		return nil, false
	}
	for _, f := range metadataFields {
		if t.RawGetString(f) != lua.LNil {
			return t, true
		}
	}
	return nil, false
}

// metadata validates a procedure table. The error has no line: the table
// is a value by now and the chunk that built it has returned.
func (r *runner) metadata(t *lua.LTable) (*Procedure, *lua.LFunction, error) {
	p := &Procedure{}
	bad := func(format string, args ...any) error {
		// Name the procedure once its name is known to be valid: it is what
		// a user recognises in a list of procedures.
		e := &ScriptError{File: r.s.name, Message: "procedure metadata: " + fmt.Sprintf(format, args...)}
		if procNameRe.MatchString(p.Name) {
			e.Procedure, e.Version = p.Name, p.Version
		}
		return e
	}
	var unknown []string
	t.ForEach(func(k, _ lua.LValue) {
		if ks, ok := k.(lua.LString); !ok || !isMetadataField(string(ks)) {
			unknown = append(unknown, keyString(k))
		}
	})
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, nil, bad("unknown field '%s' (known: %s)", unknown[0], strings.Join(metadataFields, ", "))
	}
	str := func(field string) (string, error) {
		switch v := t.RawGetString(field).(type) {
		case *lua.LNilType:
			return "", bad("missing field '%s'", field)
		case lua.LString:
			return string(v), nil
		default:
			return "", bad("field '%s' must be a string, got %s", field, v.Type())
		}
	}
	var err error
	if p.Name, err = str("name"); err != nil {
		return nil, nil, err
	}
	if !procNameRe.MatchString(p.Name) {
		return nil, nil, bad("field 'name' must be a snake_case identifier like \"change_pin\", got %q", p.Name)
	}
	version, err := str("version")
	if err != nil {
		return nil, nil, err
	}
	if !semverRe.MatchString(version) {
		return nil, nil, bad("field 'version' must be a semantic version like \"1.0.0\", got %q", version)
	}
	p.Version = version
	if p.Description, err = str("description"); err != nil {
		return nil, nil, err
	}
	switch v := t.RawGetString("api").(type) {
	case *lua.LNilType:
		return nil, nil, bad("missing field 'api'")
	case lua.LNumber:
		if float64(v) != float64(int(v)) || v < 1 {
			return nil, nil, bad("field 'api' must be a whole number of at least 1, got %s", formatNumber(float64(v)))
		}
		p.API = int(v)
	default:
		return nil, nil, bad("field 'api' must be a number, got %s", v.Type())
	}
	if p.Prompts, err = promptSpecs(t.RawGetString("prompts")); err != nil {
		return nil, nil, bad("%s", err.Error())
	}
	var run *lua.LFunction
	switch v := t.RawGetString("run").(type) {
	case *lua.LNilType:
		return nil, nil, bad("missing field 'run'")
	case *lua.LFunction:
		run = v
	default:
		return nil, nil, bad("field 'run' must be a function, got %s", v.Type())
	}
	if p.API > APILevel {
		return nil, nil, &ScriptError{
			File:      r.s.name,
			Procedure: p.Name,
			Version:   p.Version,
			Message: fmt.Sprintf("procedure needs host API level %d, but this tokenrun (version %s) provides API level %d: update tokenrun",
				p.API, Version, APILevel),
			Cause: ErrAPILevel,
		}
	}
	return p, run, nil
}

var promptKinds = []string{"text", "secret", "choice", "confirm"}

var promptFields = map[string]bool{"id": true, "kind": true, "choices": true, "choices_from": true,
	"optional": true, "human_only": true, "note": true}

// promptSpecs reads the prompts field: a list of { id =, kind =, ... } tables.
func promptSpecs(v lua.LValue) ([]PromptSpec, error) {
	if v == lua.LNil {
		return nil, nil
	}
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("field 'prompts' must be a list of tables, got %s", v.Type())
	}
	var out []PromptSpec
	seen := map[string]bool{}
	for i := 1; i <= t.Len(); i++ {
		e, ok := t.RawGetInt(i).(*lua.LTable)
		if !ok {
			return nil, fmt.Errorf("prompts[%d] must be a table like { id = \"user_id\", kind = \"text\" }", i)
		}
		var ps PromptSpec
		var err error
		e.ForEach(func(k, x lua.LValue) {
			ks, _ := k.(lua.LString)
			if err != nil {
				return
			}
			if !promptFields[string(ks)] {
				err = fmt.Errorf("prompts[%d]: unknown field '%s'", i, keyString(k))
				return
			}
			str := func() string {
				s, ok := x.(lua.LString)
				if !ok {
					err = fmt.Errorf("prompts[%d].%s must be a string, got %s", i, ks, x.Type())
				}
				return string(s)
			}
			switch ks {
			case "id":
				ps.ID = str()
			case "kind":
				ps.Kind = str()
			case "choices_from":
				ps.ChoicesFrom = str()
			case "note":
				ps.Note = str()
			case "optional", "human_only":
				b, ok := x.(lua.LBool)
				if !ok {
					err = fmt.Errorf("prompts[%d].%s must be a boolean, got %s", i, ks, x.Type())
				}
				if ks == "optional" {
					ps.Optional = bool(b)
				} else {
					ps.HumanOnly = bool(b)
				}
			case "choices":
				ct, ok := x.(*lua.LTable)
				if !ok {
					err = fmt.Errorf("prompts[%d].choices must be a list of strings, got %s", i, x.Type())
					return
				}
				for j := 1; j <= ct.Len(); j++ {
					c, ok := ct.RawGetInt(j).(lua.LString)
					if !ok {
						err = fmt.Errorf("prompts[%d].choices must be a list of strings", i)
						return
					}
					ps.Choices = append(ps.Choices, string(c))
				}
			}
		})
		if err != nil {
			return nil, err
		}
		if ps.ID == "" {
			return nil, fmt.Errorf("prompts[%d] has no id", i)
		}
		if seen[ps.ID] {
			return nil, fmt.Errorf("prompt '%s' is declared twice", ps.ID)
		}
		seen[ps.ID] = true
		if !slices.Contains(promptKinds, ps.Kind) {
			return nil, fmt.Errorf("prompt '%s': kind must be one of %s, got %q", ps.ID, strings.Join(promptKinds, ", "), ps.Kind)
		}
		if (len(ps.Choices) > 0 || ps.ChoicesFrom != "") && ps.Kind != "choice" {
			return nil, fmt.Errorf("prompt '%s': only a choice prompt has choices", ps.ID)
		}
		out = append(out, ps)
	}
	return out, nil
}

func isMetadataField(s string) bool {
	for _, f := range metadataFields {
		if f == s {
			return true
		}
	}
	return false
}

func toGoAll(values []lua.LValue) []any {
	if len(values) == 0 {
		return nil
	}
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = ToGo(v)
	}
	return out
}

// vmContext is the run's context as the VM sees it: gopher-lua calls Done
// before every instruction, and through the run's layers of contexts
// (values, cancel cause, deadline) each call costs a few nanoseconds more
// than a field read.
type vmContext struct {
	context.Context
	done <-chan struct{}
}

func (c *vmContext) Done() <-chan struct{} { return c.done }
