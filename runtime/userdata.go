package runtime

import (
	"context"
	"reflect"

	lua "github.com/yuin/gopher-lua"
)

type stateKey struct{}

// stateOf finds the run a state belongs to; nil for a state Run did not
// create, which the helpers below tolerate where they can.
func stateOf(L *lua.LState) *runState {
	ctx := L.Context()
	if ctx == nil {
		return nil
	}
	st, _ := ctx.Value(stateKey{}).(*runState)
	return st
}

// Context returns the run's context, carrying its deadline and
// cancellation. The VM checks it between instructions, but a binding that
// blocks (waiting for a token, a network round trip) must pass it on or the
// run cannot be stopped while it waits.
func Context(L *lua.LState) context.Context {
	if ctx := L.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// NewUserData wraps v as a userdata of the registered type typeName, with
// the type's methods reachable through ':' and a tostring that never shows
// an address. An unregistered typeName is a binding bug and raises.
func NewUserData(L *lua.LState, typeName string, v any) *lua.LUserData {
	mt, ok := L.GetTypeMetatable(typeName).(*lua.LTable)
	if !ok {
		st := stateOf(L)
		var bt *boundType
		if st != nil {
			bt = st.reg.typ(typeName)
		}
		if bt == nil {
			L.RaiseError("runtime: userdata type %q is not registered", typeName)
		}
		mt = st.typeMetatable(L, bt)
	}
	ud := L.NewUserData()
	ud.Value = v
	ud.Metatable = mt
	return ud
}

// CheckUserData returns argument n as the Go value of a typeName userdata,
// or raises "bad argument #n to 'login' (token.Token expected, got string)".
// Arguments are numbered as on the Lua stack, so in a method called with
// ':' the receiver is #1, as in gopher-lua's own checks.
func CheckUserData[T any](L *lua.LState, n int, typeName string) T {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if mt, ok := L.GetTypeMetatable(typeName).(*lua.LTable); ok && ud.Metatable == mt {
			if v, ok := ud.Value.(T); ok {
				return v
			}
		}
	}
	ArgError(L, n, typeName+" expected, got "+typeOf(L, n))
	var zero T
	return zero
}

// ArgError raises "bad argument #n to 'name' (msg)", naming the function as
// the script called it.
func ArgError(L *lua.LState, n int, msg string) {
	L.RaiseError("bad argument #%d to '%s' (%s)", n, calledName(L), msg)
}

// typeOf names the value at n for messages: the registered type of a host
// userdata, "no value" past the last argument, else the Lua type.
func typeOf(L *lua.LState, n int) string {
	if n > L.GetTop() {
		return "no value"
	}
	v := L.Get(n)
	if ud, ok := v.(*lua.LUserData); ok {
		if mt, ok := ud.Metatable.(*lua.LTable); ok {
			if s, ok := mt.RawGetString("__name").(lua.LString); ok {
				return string(s)
			}
		}
	}
	return v.Type().String()
}

// calledName is the name the calling script used for the running Go
// function ("login" for tok:login()), falling back to its registered name.
func calledName(L *lua.LState) string {
	if dbg, ok := L.GetStack(0); ok {
		if _, err := L.GetInfo("n", dbg, lua.LNil); err == nil && dbg.Name != "" && dbg.Name[0] != '(' && dbg.Name != "main chunk" {
			return dbg.Name
		}
	}
	if b := currentFunc(L); b != nil {
		return b.name
	}
	return "?"
}

// currentFunc is the registered function running in L, or nil.
func currentFunc(L *lua.LState) *boundFunc {
	st := stateOf(L)
	if st == nil {
		return nil
	}
	dbg, ok := L.GetStack(0)
	if !ok {
		return nil
	}
	fn, err := L.GetInfo("f", dbg, lua.LNil)
	if err != nil {
		return nil
	}
	if f, ok := fn.(*lua.LFunction); ok {
		return st.names[f]
	}
	return nil
}

// typeMetatable builds bt's metatable in this state on first use, with
// methods wrapped for this run's observer.
func (st *runState) typeMetatable(L *lua.LState, bt *boundType) *lua.LTable {
	if mt, ok := L.GetTypeMetatable(bt.name).(*lua.LTable); ok {
		return mt
	}
	mt := L.NewTypeMetatable(bt.name)
	methods := L.CreateTable(0, len(bt.methods))
	for _, b := range bt.methods {
		methods.RawSetString(b.name, st.function(L, b))
	}
	if bt.fields == nil {
		mt.RawSetString("__index", methods)
	} else {
		fields := bt.fields
		mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
			key := L.CheckString(2)
			if m := methods.RawGetString(key); m != lua.LNil {
				L.Push(m)
				return 1
			}
			ud, _ := L.Get(1).(*lua.LUserData)
			if ud == nil {
				L.Push(lua.LNil)
				return 1
			}
			v, ok := fields(ud.Value)[key]
			if !ok {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(ToLua(L, v))
			return 1
		}))
		mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("%s.%s is read-only", bt.name, L.CheckString(2))
			return 0
		}))
	}
	mt.RawSetString("__name", lua.LString(bt.name))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(describe(L.Get(1))))
		return 1
	}))
	mt.RawSetString("__eq", L.NewFunction(func(L *lua.LState) int {
		a, _ := L.Get(1).(*lua.LUserData)
		b, _ := L.Get(2).(*lua.LUserData)
		L.Push(lua.LBool(a != nil && b != nil && sameValue(a.Value, b.Value)))
		return 1
	}))
	return mt
}

// sameValue lets two userdata made for the same Go handle compare equal in
// Lua, which compares userdata by identity otherwise.
func sameValue(a, b any) (same bool) {
	// A comparable struct can still hold an incomparable value in an
	// interface field, which panics on ==.
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	if a == nil || b == nil {
		return a == b
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

func (st *runState) function(L *lua.LState, b *boundFunc) *lua.LFunction {
	fn := L.NewFunction(st.wrap(b))
	st.names[fn] = b
	return fn
}

// loadModule builds the table require(name) returns.
func (st *runState) loadModule(L *lua.LState, name string) *lua.LTable {
	bm := st.reg.module(name)
	if bm == nil {
		L.RaiseError("module '%s' is not registered", name)
	}
	t := L.CreateTable(0, len(bm.funcs)+len(bm.values))
	for _, b := range bm.funcs {
		t.RawSetString(b.name, st.function(L, b))
	}
	for k, v := range bm.values {
		lv, err := toLua(L, v, 0)
		if err != nil {
			L.RaiseError("module %s: value %s: %v", name, k, err)
		}
		t.RawSetString(k, lv)
	}
	for _, bt := range bm.types {
		st.typeMetatable(L, bt)
	}
	return t
}
