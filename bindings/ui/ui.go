// Package ui binds the prompt front-ends (package ui) to Lua as module "ui". Every prompt
// has a stable id: answers files, the JSON protocol and transcripts are keyed by it.
package ui

import (
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/ui"
)

// ProgressType is the userdata type of a progress display.
const ProgressType = "ui.Progress"

// Module returns the Lua module over fe.
func Module(fe ui.Frontend) runtime.Module {
	b := &binding{fe: fe}
	common := "opts.id (stable; the key in answers files), opts.label, opts.help"
	return runtime.Module{
		Name: "ui",
		Doc:  "Talk to the person running the procedure, or to the answers file or driver standing in for them.",
		Funcs: []runtime.Func{
			{Name: "ask", Fn: b.ask(ui.Text), Args: "opts: table", Returns: "value: string",
				Doc: "Ask for text: " + common + ", opts.default, opts.validate(value) -> ok, message (a string, or an err table {code=, message=, problems=} as the policy module returns), opts.optional, opts.hints " + hintsDoc + ", opts.kind = \"file\" for a path to a file (a GUI offers a file chooser)."},
			{Name: "secret", Fn: b.ask(ui.Secret), Args: "opts: table", Returns: "value: string", Secret: []string{"value"},
				Doc: "Ask for a secret, never shown or recorded: " + common + ", opts.validate, opts.hints, opts.optional (an answers file may leave it out: \"\" is returned)."},
			{Name: "choose", Fn: b.ask(ui.Choice), Args: "opts: table", Returns: "value: string",
				Doc: "Ask to pick one of opts.choices (strings, or {value=, label=} tables): " + common + ", opts.default."},
			{Name: "confirm", Fn: b.confirm, Args: "opts: table", Returns: "yes: boolean",
				Doc: "Ask yes or no: " + common + ", opts.default (boolean), opts.human_only (a person at a terminal must answer)."},
			{Name: "say", Fn: b.say(ui.Info), Args: "text: string, opts?: table", Doc: "Tell the person something. " + sayDoc},
			{Name: "warn", Fn: b.say(ui.Warn), Args: "text: string, opts?: table", Doc: "Warn the person. " + sayDoc},
			{Name: "error", Fn: b.say(ui.Error), Args: "text: string, opts?: table", Doc: "Show an error to the person. " + sayDoc},
			{Name: "progress", Fn: b.progress, Args: "opts: table", Returns: "bar: ui.Progress",
				Doc: "Show a long operation: opts.id, opts.label; bar:update(fraction, note) or bar:update{fraction=, note=, attempt=, retry_in= (seconds)}, bar:done(ok, note)."},
			{Name: "interactive", Fn: b.interactive, Returns: "yes: boolean",
				Doc: "Whether a person is there to answer (not an answers file)."},
		},
		Types: []runtime.Type{{Name: ProgressType, Doc: "A progress display.", Methods: []runtime.Func{
			{Name: "update", Fn: progressUpdate, Args: "fraction: number|table, note?: string",
				Doc: "fraction in [0, 1], or below 0 when unknown; or one table {fraction=, note=, attempt= (1-based try of a retried step), retry_in= (seconds to the next try)}."},
			{Name: "done", Fn: progressDone, Args: "ok: boolean, note?: string", Doc: "End the display."},
		}}},
	}
}

const (
	hintsDoc = "{min_length=, max_length=, pattern= (RE2, the whole answer), allowed= (a character class: \"A-Za-z0-9\"), example=, rules={{id=, text=}...}} (what a GUI shows before the person types; policy.hints gives the region's)"
	sayDoc   = "opts.key and opts.args: the catalog key the text was made from and its arguments (lib.msg passes them), for a GUI."
)

type binding struct{ fe ui.Frontend }

// prompt reads the options every prompt shares.
func prompt(L *lua.LState, o *runtime.Opts, kind ui.Kind) ui.Prompt {
	o.Required("id")
	p := ui.Prompt{
		ID:    o.String("id", ""),
		Kind:  kind,
		Label: o.String("label", ""),
		Help:  o.String("help", ""),
	}
	if kind == ui.Text {
		switch k := o.String("kind", "text"); k {
		case "text":
		case "file":
			p.Kind = ui.File
		default:
			runtime.ArgError(L, 1, fmt.Sprintf("kind %q: want \"text\" or \"file\"", k))
		}
	}
	if kind == ui.Text || kind == ui.Secret {
		p.Optional = o.Bool("optional", false)
		p.Hints = hints(L, o.Table("hints"))
	}
	if fn := o.Func("validate"); fn != nil {
		p.Validate = validator(L, fn)
	}
	return p
}

// hints reads opts.hints; nil when there are none.
func hints(L *lua.LState, t *lua.LTable) *ui.Hints {
	if t == nil {
		return nil
	}
	h := &ui.Hints{}
	str := func(k string) string {
		v := t.RawGetString(k)
		if v == lua.LNil {
			return ""
		}
		s, ok := v.(lua.LString)
		if !ok {
			runtime.ArgError(L, 1, "hints."+k+" must be a string")
		}
		return string(s)
	}
	num := func(k string) int {
		v := t.RawGetString(k)
		if v == lua.LNil {
			return 0
		}
		n, ok := v.(lua.LNumber)
		if !ok || n < 0 || float64(n) != float64(int(n)) {
			runtime.ArgError(L, 1, "hints."+k+" must be a whole number, 0 or more")
		}
		return int(n)
	}
	t.ForEach(func(k, _ lua.LValue) {
		switch k.String() {
		case "min_length", "max_length", "pattern", "allowed", "example", "rules":
		default:
			runtime.ArgError(L, 1, "hints: unknown field "+k.String())
		}
	})
	h.MinLength, h.MaxLength = num("min_length"), num("max_length")
	h.Pattern, h.Allowed, h.Example = str("pattern"), str("allowed"), str("example")
	switch rules := t.RawGetString("rules").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		for i := 1; i <= rules.Len(); i++ {
			r, ok := rules.RawGetInt(i).(*lua.LTable)
			id, _ := r.RawGetString("id").(lua.LString)
			text, _ := r.RawGetString("text").(lua.LString)
			if !ok || id == "" || text == "" {
				runtime.ArgError(L, 1, fmt.Sprintf("hints.rules[%d] must be {id=, text=}", i))
			}
			bound, _ := r.RawGetString("max").(lua.LNumber)
			h.Rules = append(h.Rules, ui.Rule{ID: string(id), Text: string(text), Max: max(int(bound), 0)})
		}
	default:
		runtime.ArgError(L, 1, "hints.rules must be a list of {id=, text=}")
	}
	return h
}

// validator calls the script's validate(value) -> ok, message. A validator that raises
// stops the prompt: it is a bug in the script, and asking again would not help.
func validator(L *lua.LState, fn *lua.LFunction) func(string) error {
	return func(v string) error {
		if err := L.CallByParam(lua.P{Fn: fn, NRet: 2, Protect: true}, lua.LString(v)); err != nil {
			return ui.Abort(fmt.Errorf("validate raised: %w", err))
		}
		ok, msg := L.Get(-2), L.Get(-1)
		L.Pop(2)
		if lua.LVAsBool(ok) {
			return nil
		}
		switch m := msg.(type) {
		case lua.LString:
			if m != "" {
				return errors.New(string(m))
			}
		case *lua.LTable:
			// An err table as the policy module returns it: {code=, message=, problems=}.
			inv := &ui.Invalid{Message: lua.LVAsString(m.RawGetString("message"))}
			if c, isStr := m.RawGetString("code").(lua.LString); isStr {
				inv.Code = string(c)
			}
			if ps, isTable := m.RawGetString("problems").(*lua.LTable); isTable {
				for i := 1; i <= ps.Len(); i++ {
					if p, isStr := ps.RawGetInt(i).(lua.LString); isStr {
						inv.Problems = append(inv.Problems, string(p))
					}
				}
			}
			if inv.Message != "" {
				return inv
			}
		}
		return errors.New("not a valid answer")
	}
}

func (b *binding) ask(kind ui.Kind) lua.LGFunction {
	return func(L *lua.LState) int {
		o := runtime.CheckOpts(L, 1)
		p := prompt(L, o, kind)
		if kind != ui.Secret {
			p.Default = o.String("default", "")
		}
		if kind == ui.Choice {
			p.Choices = choices(L, o.Table("choices"))
		}
		o.Check()
		if err := p.Check(); err != nil {
			runtime.ArgError(L, 1, err.Error())
		}
		v, err := b.fe.Ask(runtime.Context(L), p)
		if err != nil {
			runtime.Raise(L, err)
		}
		L.Push(lua.LString(v))
		return 1
	}
}

func choices(L *lua.LState, t *lua.LTable) []ui.Option {
	if t == nil {
		runtime.ArgError(L, 1, "choices is required for ui.choose")
	}
	var out []ui.Option
	for i := 1; i <= t.Len(); i++ {
		switch c := t.RawGetInt(i).(type) {
		case lua.LString:
			out = append(out, ui.Option{Value: string(c), Label: string(c)})
		case *lua.LTable:
			v, _ := c.RawGetString("value").(lua.LString)
			l, _ := c.RawGetString("label").(lua.LString)
			if v == "" {
				runtime.ArgError(L, 1, fmt.Sprintf("choices[%d] needs a value", i))
			}
			if l == "" {
				l = v
			}
			out = append(out, ui.Option{Value: string(v), Label: string(l)})
		default:
			runtime.ArgError(L, 1, fmt.Sprintf("choices[%d] must be a string or {value=, label=}", i))
		}
	}
	return out
}

func (b *binding) confirm(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	p := prompt(L, o, ui.Confirm)
	if o.Has("default") {
		p.Default = "no"
		if o.Bool("default", false) {
			p.Default = "yes"
		}
	}
	p.HumanOnly = o.Bool("human_only", false)
	o.Check()
	if err := p.Check(); err != nil {
		runtime.ArgError(L, 1, err.Error())
	}
	v, err := b.fe.Ask(runtime.Context(L), p)
	if err != nil {
		runtime.Raise(L, err)
	}
	L.Push(lua.LBool(v == "yes"))
	return 1
}

func (b *binding) say(level ui.Level) lua.LGFunction {
	return func(L *lua.LState) int {
		m := ui.Message{Level: level, Text: L.CheckString(1)}
		if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
			o := runtime.CheckOpts(L, 2)
			m.Key = o.String("key", "")
			if t := o.Table("args"); t != nil {
				m.Args, _ = runtime.ToGo(t).(map[string]any)
			}
			o.Check()
		}
		if err := ui.SayMessage(runtime.Context(L), b.fe, m); err != nil {
			runtime.Raise(L, err)
		}
		return 0
	}
}

func (b *binding) interactive(L *lua.LState) int {
	L.Push(lua.LBool(b.fe.Interactive()))
	return 1
}

func (b *binding) progress(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	o.Required("id")
	id, label := o.String("id", ""), o.String("label", "")
	o.Check()
	p, err := b.fe.Progress(runtime.Context(L), id, label)
	if err != nil {
		runtime.Raise(L, err)
	}
	L.Push(runtime.NewUserData(L, ProgressType, p))
	return 1
}

func progressUpdate(L *lua.LState) int {
	p := runtime.CheckUserData[ui.Progress](L, 1, ProgressType)
	if _, isTable := L.Get(2).(*lua.LTable); !isTable {
		p.Update(float64(L.CheckNumber(2)), L.OptString(3, ""))
		return 0
	}
	o := runtime.CheckOpts(L, 2)
	s := ui.Step{Fraction: o.Number("fraction", -1), Note: o.String("note", ""), Attempt: o.Int("attempt", 0),
		RetryIn: time.Duration(o.Number("retry_in", 0) * float64(time.Second))}
	o.Check()
	ui.UpdateProgress(p, s)
	return 0
}

func progressDone(L *lua.LState) int {
	p := runtime.CheckUserData[ui.Progress](L, 1, ProgressType)
	p.Done(L.OptBool(2, true), L.OptString(3, ""))
	return 0
}
