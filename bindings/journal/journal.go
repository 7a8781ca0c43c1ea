// Package journal binds the enrollment journal to Lua as module "journal": where an
// interrupted procedure left off on a token, so a rerun continues instead of starting over.
package journal

import (
	"errors"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runtime"
)

// Module returns the Lua module over store; procedure names the running procedure in new
// journals.
func Module(store *journal.Store, procedure string) runtime.Module {
	b := &binding{store: store, procedure: procedure}
	return runtime.Module{
		Name: "journal",
		Doc:  "Progress of a procedure on a token, kept between runs (never a secret).",
		Funcs: []runtime.Func{
			{Name: "load", Fn: b.load, Args: "serial: string", Returns: "entry: table?",
				Doc: "The open journal of the token (serial, procedure, step, started, updated, data, history), or nil."},
			{Name: "record", Fn: b.record, Args: "serial: string, step: string, data?: table", Returns: "entry: table?, err: table?",
				Doc: "Move to step, merging data; written atomically before it returns. Fields named like secrets are refused."},
			{Name: "forget", Fn: b.forget, Args: "serial: string, fields: table", Returns: "entry: table?, err: table?",
				Doc: "Remove data fields (a list of names) from the journal, keeping its step: input that turned out wrong, such as a user ID the CA refused, so a rerun asks for it again."},
			{Name: "finish", Fn: b.finish, Args: "serial: string", Returns: "ok: boolean?, err: table?",
				Doc: "Close the journal; it is kept among finished ones."},
		},
	}
}

type binding struct {
	store     *journal.Store
	procedure string
}

func entryMap(e *journal.Entry) map[string]any {
	hist := make([]any, len(e.History))
	for i, h := range e.History {
		hist[i] = map[string]any{"name": h.Name, "at": h.At.Format(time.RFC3339)}
	}
	return map[string]any{
		"serial":    e.Serial,
		"procedure": e.Procedure,
		"step":      e.Step,
		"started":   e.Started.Format(time.RFC3339),
		"updated":   e.Updated.Format(time.RFC3339),
		"data":      e.Data,
		"history":   hist,
	}
}

func (b *binding) load(L *lua.LState) int {
	e, err := b.store.Load(L.CheckString(1))
	if errors.Is(err, journal.ErrNotFound) {
		L.Push(lua.LNil)
		return 1
	}
	if err != nil {
		return runtime.Fail(L, "JOURNAL_ERROR", err.Error(), nil)
	}
	L.Push(runtime.ToLua(L, entryMap(e)))
	return 1
}

func (b *binding) record(L *lua.LState) int {
	serial, step := L.CheckString(1), L.CheckString(2)
	var data map[string]any
	if t := L.OptTable(3, nil); t != nil {
		m, ok := runtime.ToGo(t).(map[string]any)
		if !ok && t.Len() > 0 {
			runtime.ArgError(L, 3, "data must be a table with string keys")
		}
		data = m
	}
	e, err := b.store.Record(serial, b.procedure, step, data)
	if err != nil {
		return runtime.Fail(L, "JOURNAL_ERROR", err.Error(), nil)
	}
	L.Push(runtime.ToLua(L, entryMap(e)))
	return 1
}

func (b *binding) forget(L *lua.LState) int {
	serial, t := L.CheckString(1), L.CheckTable(2)
	var fields []string
	for i := 1; i <= t.Len(); i++ {
		s, ok := t.RawGetInt(i).(lua.LString)
		if !ok {
			runtime.ArgError(L, 2, "fields must be a list of field names")
		}
		fields = append(fields, string(s))
	}
	e, err := b.store.Forget(serial, fields...)
	if err != nil {
		return runtime.Fail(L, "JOURNAL_ERROR", err.Error(), nil)
	}
	L.Push(runtime.ToLua(L, entryMap(e)))
	return 1
}

func (b *binding) finish(L *lua.LState) int {
	if err := b.store.Finish(L.CheckString(1)); err != nil {
		return runtime.Fail(L, "JOURNAL_ERROR", err.Error(), nil)
	}
	L.Push(lua.LTrue)
	return 1
}
