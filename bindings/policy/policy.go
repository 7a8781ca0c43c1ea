// Package policy binds the region's input rules and message catalog to Lua as module
// "policy". The rules are the region's RE2 patterns and Go checks (package region), which
// Lua's own patterns cannot express; scripts get the verdict and the message, in the run's
// language, never a secret.
package policy

import (
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
)

// Module returns the Lua module for region r, speaking from catalog.
func Module(r *region.Region, catalog map[string]string) runtime.Module {
	b := &binding{r: r, catalog: catalog}
	return runtime.Module{
		Name: "policy",
		Doc:  "The region's rules for what a person types, and its messages.",
		Funcs: []runtime.Func{
			{Name: "user_id", Fn: b.userID, Args: "id: string", Returns: "ok: boolean?, err: table?",
				Doc: "Check a user ID against user_id.pattern; err.message shows the example."},
			{Name: "otp_pin", Fn: b.otpPIN, Args: "pin: string", Returns: "pin: string?, err: table?", Secret: []string{"pin"},
				Doc: "Normalise an OTP-card PIN (trim, upper-case per the region) and check its length and characters."},
			{Name: "confusable", Fn: confusable, Args: "pin: string", Returns: "positions: table", Secret: []string{"pin"},
				Doc: "1-based positions of 1/I and 0/O in a PIN: what to check when a container does not open."},
			{Name: "password", Fn: b.password, Args: "new_pin: string, confirm: string", Returns: "ok: boolean?, err: table?", Secret: []string{"new_pin", "confirm"},
				Doc: "Check a new token password and its confirmation against the password policy."},
			{Name: "hints", Fn: b.hints, Args: "input: string", Returns: "hints: table",
				Doc: "What the region accepts for input \"password\", \"otp_pin\" or \"user_id\", as ui.ask/ui.secret opts.hints: min_length, max_length, pattern, allowed, example, and for the password its rules {id=, text=} in the run's language."},
			{Name: "text", Fn: b.text, Args: "key: string, args?: table", Returns: "text: string",
				Doc: "The catalog message key in the run's language, {placeholders} filled from args."},
		},
	}
}

type binding struct {
	r       *region.Region
	catalog map[string]string
}

// fail reports broken rules as an expected failure: code INVALID_INPUT, the messages joined,
// and each problem's key for scripts that react to one rule.
func (b *binding) fail(L *lua.LState, problems []region.Problem) int {
	msgs := make([]string, len(problems))
	keys := make([]any, len(problems))
	for i, p := range problems {
		msgs[i] = region.Text(b.catalog, p.Key, p.Args)
		keys[i] = p.Key
	}
	return runtime.Fail(L, "INVALID_INPUT", strings.Join(msgs, " "), map[string]any{"problems": keys})
}

func (b *binding) userID(L *lua.LState) int {
	if p := b.r.UserID.Check(L.CheckString(1)); len(p) > 0 {
		return b.fail(L, p)
	}
	L.Push(lua.LTrue)
	return 1
}

func (b *binding) otpPIN(L *lua.LState) int {
	pin, p := b.r.OTPPIN.Normalize(L.CheckString(1))
	if len(p) > 0 {
		return b.fail(L, p)
	}
	L.Push(lua.LString(pin))
	return 1
}

func confusable(L *lua.LState) int {
	pos := region.Confusable(L.CheckString(1))
	t := L.CreateTable(len(pos), 0)
	for _, p := range pos {
		t.Append(lua.LNumber(p))
	}
	L.Push(t)
	return 1
}

func (b *binding) password(L *lua.LState) int {
	if p := b.r.Password.Check(L.CheckString(1), L.CheckString(2)); len(p) > 0 {
		return b.fail(L, p)
	}
	L.Push(lua.LTrue)
	return 1
}

func (b *binding) text(L *lua.LState) int {
	key := L.CheckString(1)
	msg, ok := b.catalog[key]
	if !ok {
		runtime.ArgError(L, 1, "no message "+key+" in the catalog")
	}
	var args map[string]any
	if t := L.OptTable(2, nil); t != nil {
		args, _ = runtime.ToGo(t).(map[string]any)
	}
	L.Push(lua.LString(region.FormatIn(b.catalog[region.LangKey], msg, args)))
	return 1
}

// hints describes what the region accepts for an input, for a GUI to show before it is typed.
func (b *binding) hints(L *lua.LState) int {
	h := map[string]any{}
	switch input := L.CheckString(1); input {
	case "password":
		p := b.r.Password
		h["min_length"], h["max_length"] = p.MinLength, p.MaxLength
		h["pattern"], h["allowed"] = p.Pattern.String(), region.CharClass(p.Pattern)
		var rules []any
		for _, r := range p.Rules() {
			rule := map[string]any{"id": r.Key, "text": region.Format(b.catalog[r.Key], r.Args)}
			if r.Key == "password_sequence" {
				rule["max"] = r.Args["max"] // a page checks the run as the person types
			}
			rules = append(rules, rule)
		}
		h["rules"] = rules
	case "otp_pin":
		o := b.r.OTPPIN
		h["min_length"], h["max_length"] = o.Length, o.Length
		if !o.Uppercase { // upper-cased before the check: any case may be typed
			h["pattern"], h["allowed"] = o.Pattern.String(), region.CharClass(o.Pattern)
		}
	case "user_id":
		h["pattern"], h["example"] = b.r.UserID.Pattern.String(), b.r.UserID.Example
	default:
		runtime.ArgError(L, 1, "no hints for "+input+": want password, otp_pin or user_id")
	}
	for k, v := range h {
		if v == "" || v == 0 {
			delete(h, k)
		}
	}
	L.Push(runtime.ToLua(L, h))
	return 1
}
