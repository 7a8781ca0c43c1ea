package runtime

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Redacted replaces every secret value an observer would otherwise see.
const Redacted = "<secret>"

// minScrubLen is the shortest secret that is scrubbed out of error
// messages: PKCS#11 PINs have at least four characters, and replacing
// shorter strings would mangle ordinary text ("line 1").
const minScrubLen = 4

// Observer sees every call from a script into a registered function or
// method, after it returns or raises. It runs on the script's goroutine, so
// a slow observer slows the script.
type Observer interface {
	Call(CallEvent)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(CallEvent)

// Call implements Observer.
func (f ObserverFunc) Call(e CallEvent) { f(e) }

// CallEvent describes one call. Values are converted like ToGo, except that
// secrets are already "<secret>", functions are "<function>" and userdata
// are their tostring text, so an event can be written out as it is. A
// userdata whose Type has Fields is instead
//
//	{"$handle": "<tostring text>", "type": "<type name>", "fields": {...}}
//
// with its fields converted like table fields (secret keys redacted), so a
// replay can give back a handle whose fields read as they did (key.id).
type CallEvent struct {
	Seq    uint64 // 1, 2, ... in the order calls started, per run
	Depth  int    // 0 for calls made by the script, 1 for calls made from a callback, ...
	Module string
	Type   string // metatable name for a method call, "" for a module function
	Func   string
	Self   string // tostring of the receiver of a method call
	Args   []any
	// Results are the values returned, including an expected failure's
	// nil, {code=..., message=...}; empty when the call raised.
	Results  []any
	Err      string // the raised error's message when the call raised
	Duration time.Duration
}

// Name is "token.wait" or "token.Token:login".
func (e CallEvent) Name() string {
	if e.Type != "" {
		return e.Type + ":" + e.Func
	}
	return e.Module + "." + e.Func
}

// wrap returns the Lua-callable form of b for this run. Without an observer
// and secrets it adds only an API level check and a deferred recover that
// turns a Go panic in a binding into a Lua error at the script line.
func (st *runState) wrap(b *boundFunc) lua.LGFunction {
	if st.obs == nil && !b.hasSecrets() {
		return func(L *lua.LState) int {
			if b.since > st.api {
				st.tooNew(L, b)
			}
			defer st.recoverPanic(L, b)
			return b.fn(L)
		}
	}
	return func(L *lua.LState) int {
		if b.since > st.api {
			st.tooNew(L, b)
		}
		return st.observed(L, b)
	}
}

func (st *runState) tooNew(L *lua.LState, b *boundFunc) {
	L.RaiseError("%s needs API level %d, but the procedure declares api = %d", b.qname, b.since, st.api)
}

// recoverPanic lets Lua errors through untouched and converts anything
// else (a nil dereference in a binding) into a Lua error, keeping the Go
// stack for the ScriptError's Traceback.
func (st *runState) recoverPanic(L *lua.LState, b *boundFunc) {
	r := recover()
	if r == nil {
		return
	}
	if _, ok := r.(*lua.ApiError); ok {
		panic(r)
	}
	st.raisePanic(L, b, r, nil)
}

// raisePanic re-raises a Go panic as a Lua error. The panic value may hold
// anything the binding had, so the secrets of the call are cut from it too.
func (st *runState) raisePanic(L *lua.LState, b *boundFunc, r any, secrets []string) {
	msg := scrub(panicText(b, r), secrets)
	st.raised = raised{msg: msg, goStack: scrub(fmt.Sprintf("Go panic in %s: %v\n%s", b.qname, r, debug.Stack()), secrets)}
	if err, ok := r.(error); ok {
		st.raised.cause = err
	}
	L.RaiseError("%s", msg)
}

func (st *runState) observed(L *lua.LState, b *boundFunc) (n int) {
	var secrets []string
	if b.hasSecrets() {
		secrets = secretStrings(L, b)
	}
	var ev CallEvent
	obs := st.obs
	if obs != nil {
		st.seq++
		ev = CallEvent{Seq: st.seq, Depth: st.depth, Module: b.module, Type: b.typ, Func: b.name}
		first := 1
		if b.self {
			first = 2
			ev.Self = describe(L.Get(1))
		}
		top := L.GetTop()
		if top >= first {
			ev.Args = make([]any, 0, top-first+1)
		}
		for i := first; i <= top; i++ {
			if containsInt(b.secretArgs, i) {
				ev.Args = append(ev.Args, Redacted)
			} else {
				ev.Args = append(ev.Args, st.observe(L, L.Get(i), b.secretKeys))
			}
		}
		st.depth++
	}
	start := time.Now()
	returned := false
	defer func() {
		if returned {
			return
		}
		r := recover()
		if r == nil {
			return // runtime.Goexit: nothing to report or convert
		}
		if obs != nil {
			st.depth--
		}
		apiErr, isLua := r.(*lua.ApiError)
		if !isLua {
			if obs != nil {
				ev.Err = scrub(panicText(b, r), secrets)
				ev.Duration = time.Since(start)
				obs.Call(ev)
			}
			st.raisePanic(L, b, r, secrets)
		}
		if s, ok := apiErr.Object.(lua.LString); ok && len(secrets) > 0 {
			apiErr.Object = lua.LString(scrub(string(s), secrets))
		}
		if obs != nil {
			ev.Err = errorText(apiErr.Object)
			ev.Duration = time.Since(start)
			obs.Call(ev)
		}
		panic(apiErr)
	}()
	n = b.fn(L)
	returned = true
	if obs != nil {
		st.depth--
		ev.Duration = time.Since(start)
		if n > 0 {
			ev.Results = make([]any, n)
			top := L.GetTop()
			for i := 0; i < n; i++ {
				if containsInt(b.secretResults, i) {
					ev.Results[i] = Redacted
				} else {
					ev.Results[i] = st.observe(L, L.Get(top-n+1+i), b.secretKeys)
				}
			}
		}
		obs.Call(ev)
	}
	return n
}

func panicText(b *boundFunc, r any) string {
	return fmt.Sprintf("internal error in %s: %v", b.qname, r)
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// secretStrings collects the secret strings passed to a call, positionally
// or as top-level option fields, so they can be cut out of its error.
func secretStrings(L *lua.LState, b *boundFunc) []string {
	var out []string
	add := func(v lua.LValue) {
		if s, ok := v.(lua.LString); ok && len(s) >= minScrubLen {
			out = append(out, string(s))
		}
	}
	for _, i := range b.secretArgs {
		add(L.Get(i))
	}
	for i := 1; i <= L.GetTop(); i++ {
		if t, ok := L.Get(i).(*lua.LTable); ok {
			for k := range b.secretKeys {
				add(t.RawGetString(k))
			}
		}
	}
	return out
}

func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, Redacted)
	}
	return msg
}

func errorText(v lua.LValue) string {
	if t, ok := v.(*lua.LTable); ok {
		code, msg, _ := errorTable(t)
		if code != "" && msg != "" {
			return code + ": " + msg
		}
		return code + msg
	}
	return v.String()
}

// observe converts like ToGo, with the substitutions CallEvent documents.
func (st *runState) observe(L *lua.LState, v lua.LValue, secret map[string]struct{}) any {
	return observeValue(L, st.reg, v, secret, 0, nil)
}

// observeValue converts v; L and reg, which may be nil, are needed only for
// the fields of handles (without them a handle is its text).
func observeValue(L *lua.LState, reg *Registry, v lua.LValue, secret map[string]struct{}, depth int, visiting map[*lua.LTable]bool) any {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		return string(v)
	case *lua.LTable:
		if visiting[v] {
			return "<cycle>"
		}
		if depth >= maxDepth {
			return "<too deep>"
		}
		if visiting == nil {
			visiting = map[*lua.LTable]bool{}
		}
		visiting[v] = true
		defer delete(visiting, v)
		if n, ok := sequenceLen(v); ok {
			out := make([]any, n)
			for i := 0; i < n; i++ {
				out[i] = observeValue(L, reg, v.RawGetInt(i+1), secret, depth+1, visiting)
			}
			return out
		}
		out := map[string]any{}
		v.ForEach(func(k, val lua.LValue) {
			ks := keyString(k)
			if _, ok := secret[ks]; ok {
				out[ks] = Redacted
				return
			}
			out[ks] = observeValue(L, reg, val, secret, depth+1, visiting)
		})
		return out
	case *lua.LUserData:
		if h, ok := observeHandle(L, reg, v, secret, depth, visiting); ok {
			return h
		}
		return describe(v)
	case *lua.LFunction:
		return "<function>"
	default:
		return "<" + v.Type().String() + ">"
	}
}

// observeHandle gives the {"$handle", "type", "fields"} form of a userdata
// whose registered Type has Fields; ok is false for any other userdata, which
// keeps its text form. Each field is converted as ToLua would give it to the
// script and then observed like a table field, so a secret key is redacted
// here as anywhere else.
func observeHandle(L *lua.LState, reg *Registry, ud *lua.LUserData, secret map[string]struct{}, depth int, visiting map[*lua.LTable]bool) (out any, ok bool) {
	if L == nil || reg == nil {
		return nil, false
	}
	mt, _ := ud.Metatable.(*lua.LTable)
	if mt == nil {
		return nil, false
	}
	name, _ := mt.RawGetString("__name").(lua.LString)
	bt := reg.typ(string(name))
	if bt == nil || bt.fields == nil || L.GetTypeMetatable(bt.name) != mt {
		return nil, false
	}
	if depth+2 >= maxDepth {
		return "<too deep>", true
	}
	// Observing must not fail the call it reports: a Fields func that panics
	// leaves the handle in its text form.
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	fields := map[string]any{}
	for k, f := range bt.fields(ud.Value) {
		if _, s := secret[k]; s {
			fields[k] = Redacted
			continue
		}
		lv, err := toLua(L, f, depth+2)
		if err != nil {
			fields[k] = "<" + err.Error() + ">"
			continue
		}
		fields[k] = observeValue(L, reg, lv, secret, depth+2, visiting)
	}
	return map[string]any{"$handle": describe(ud), "type": bt.name, "fields": fields}, true
}

// describe is the tostring text of a host userdata: "token.Token: label"
// when the Go value is a fmt.Stringer, else the type name. It never shows
// an address, so transcripts stay comparable between runs.
func describe(v lua.LValue) string {
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return fmt.Sprint(observeValue(nil, nil, v, nil, 0, nil))
	}
	name := "userdata"
	if mt, ok := ud.Metatable.(*lua.LTable); ok {
		if s, ok := mt.RawGetString("__name").(lua.LString); ok {
			name = string(s)
		}
	}
	if s, ok := ud.Value.(fmt.Stringer); ok {
		return name + ": " + s.String()
	}
	return name
}
