// Package ui binds the prompt front-ends (package ui) to Lua as module "ui". Every prompt
// has a stable id: answers files, the JSON protocol and transcripts are keyed by it.
package ui

import (
	"errors"
	"fmt"

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
				Doc: "Ask for text: " + common + ", opts.default, opts.validate(value) -> ok, message, opts.optional."},
			{Name: "secret", Fn: b.ask(ui.Secret), Args: "opts: table", Returns: "value: string", Secret: []string{"value"},
				Doc: "Ask for a secret, never shown or recorded: " + common + ", opts.validate, opts.optional (an answers file may leave it out: \"\" is returned)."},
			{Name: "choose", Fn: b.ask(ui.Choice), Args: "opts: table", Returns: "value: string",
				Doc: "Ask to pick one of opts.choices (strings, or {value=, label=} tables): " + common + ", opts.default."},
			{Name: "confirm", Fn: b.confirm, Args: "opts: table", Returns: "yes: boolean",
				Doc: "Ask yes or no: " + common + ", opts.default (boolean), opts.human_only (a person at a terminal must answer)."},
			{Name: "say", Fn: b.say(ui.Info), Args: "text: string", Doc: "Tell the person something."},
			{Name: "warn", Fn: b.say(ui.Warn), Args: "text: string", Doc: "Warn the person."},
			{Name: "error", Fn: b.say(ui.Error), Args: "text: string", Doc: "Show an error to the person."},
			{Name: "progress", Fn: b.progress, Args: "opts: table", Returns: "bar: ui.Progress",
				Doc: "Show a long operation: opts.id, opts.label; bar:update(fraction, note), bar:done(ok, note)."},
			{Name: "interactive", Fn: b.interactive, Returns: "yes: boolean",
				Doc: "Whether a person is there to answer (not an answers file)."},
		},
		Types: []runtime.Type{{Name: ProgressType, Doc: "A progress display.", Methods: []runtime.Func{
			{Name: "update", Fn: progressUpdate, Args: "fraction: number, note?: string", Doc: "fraction in [0, 1], or below 0 when unknown."},
			{Name: "done", Fn: progressDone, Args: "ok: boolean, note?: string", Doc: "End the display."},
		}}},
	}
}

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
	if kind == ui.Text || kind == ui.Secret {
		p.Optional = o.Bool("optional", false)
	}
	if fn := o.Func("validate"); fn != nil {
		p.Validate = validator(L, fn)
	}
	return p
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
		if s, isStr := msg.(lua.LString); isStr && s != "" {
			return errors.New(string(s))
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
		if err := b.fe.Say(runtime.Context(L), level, L.CheckString(1)); err != nil {
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
	p.Update(float64(L.CheckNumber(2)), L.OptString(3, ""))
	return 0
}

func progressDone(L *lua.LState) int {
	p := runtime.CheckUserData[ui.Progress](L, 1, ProgressType)
	p.Done(L.OptBool(2, true), L.OptString(3, ""))
	return 0
}
