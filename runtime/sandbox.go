package runtime

import (
	"fmt"
	"io"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// removedGlobals are the standard names the sandbox takes away. Reading one
// raises a message naming it, instead of the "attempt to call a nil value"
// a script author would otherwise have to decode. Globals that never existed
// stay plain nil, so "if x == nil" style code keeps working.
var removedGlobals = map[string]bool{
	"os": true, "io": true, "debug": true, "coroutine": true, "channel": true,
	"dofile": true, "loadfile": true, "load": true, "loadstring": true,
	"getfenv": true, "setfenv": true, "collectgarbage": true, "newproxy": true,
	"module": true, "_printregs": true,
}

// removedFields are removed members of libraries the sandbox does open.
var removedFields = map[string]map[string]bool{
	"string":  {"dump": true},
	"package": {"loadlib": true, "seeall": true},
}

// newSandbox builds a state that can reach only base, table, string, math
// and a require limited to st's registry. Nothing here touches the file
// system, the process or the Go runtime on behalf of a script.
func newSandbox(st *runState) *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs: true,
		// gopher-lua allocates its default 5120-slot data stack up front,
		// a third of a run's allocations; start small and let it grow. It
		// grows linearly and copies each time, so the step is large and the
		// cap modest: a script pushing more values (unpack of a huge range)
		// gets "registry overflow" quickly instead of minutes of copying.
		RegistrySize:     1024,
		RegistryGrowStep: 1024,
		RegistryMaxSize:  8192,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}

	installStringLib(L)

	g := L.G.Global
	for name := range removedGlobals {
		g.RawSetString(name, lua.LNil)
	}
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		if name, ok := L.Get(2).(lua.LString); ok && removedGlobals[string(name)] {
			L.RaiseError("%s is not available in tokenrun scripts", string(name))
		}
		return 0
	}))
	L.SetMetatable(g, mt)

	for lib, fields := range removedFields {
		t := g.RawGetString(lib).(*lua.LTable)
		for f := range fields {
			t.RawSetString(f, lua.LNil)
		}
		guard(L, t, lib, fields)
	}

	pkg := g.RawGetString("package").(*lua.LTable)
	// Only the preload loader survives: the file loader is the one thing in
	// package that reads the disk, and once dropped no script can get it back.
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	oldLoaders := reg.RawGetString("_LOADERS").(*lua.LTable)
	loaders := L.CreateTable(1, 0)
	loaders.RawSetInt(1, oldLoaders.RawGetInt(1))
	reg.RawSetString("_LOADERS", loaders)
	pkg.RawSetString("loaders", loaders)
	pkg.RawSetString("path", lua.LString(""))
	pkg.RawSetString("cpath", lua.LString(""))
	preload := pkg.RawGetString("preload").(*lua.LTable)
	for _, name := range st.reg.moduleNames() {
		preload.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			L.Push(st.loadModule(L, name))
			return 1
		}))
	}
	// Lua libraries of the scripts tree run in this same sandbox, from their shared
	// compiled prototypes; require caches each one for the run.
	for name, lib := range st.libs {
		if preload.RawGetString(name) == lua.LNil {
			preload.RawSetString(name, L.NewFunctionFromProto(lib.proto))
		}
	}

	// The mark fills a module's package.loaded slot while it loads; a fresh
	// userdata per state cannot be confused with a module.
	st.loading = L.NewUserData()
	g.RawSetString("require", L.NewFunction(st.require))
	g.RawSetString("print", L.NewFunction(st.print))
	g.RawSetString("error", L.NewFunction(luaError))
	// Lua 5.2 names that the scripts' luacheck standard allows; gopher-lua
	// is 5.1 and lacks them. Added before guardRaw so they see through
	// read-only proxies like the rest.
	g.RawSetString("rawlen", L.NewFunction(rawLen))
	g.RawGetString("table").(*lua.LTable).RawSetString("unpack", g.RawGetString("unpack"))
	st.guardRaw(L)
	// Captured now so that a script reassigning next cannot break pairs.
	next := g.RawGetString("next")
	g.RawSetString("pairs", L.NewFunction(func(L *lua.LState) int { return sandboxPairs(L, next) }))
	iter := L.NewFunction(ipairsNext)
	g.RawSetString("ipairs", L.NewFunction(func(L *lua.LState) int { return sandboxIpairs(L, iter) }))
	return L
}

// guard makes reading a removed library field raise a message naming it.
func guard(L *lua.LState, t *lua.LTable, lib string, fields map[string]bool) {
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		if name, ok := L.Get(2).(lua.LString); ok && fields[string(name)] {
			L.RaiseError("%s.%s is not available in tokenrun scripts", lib, string(name))
		}
		return 0
	}))
	L.SetMetatable(t, mt)
}

// require finds only what the host put in package.preload (the registered
// modules) or what is already loaded (the opened standard libraries). It
// replaces gopher-lua's require so that a miss names the modules a script
// can have rather than listing the paths that were not searched.
func (st *runState) require(L *lua.LState) int {
	name := L.CheckString(1)
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	loaded := reg.RawGetString("_LOADED").(*lua.LTable)
	if v := loaded.RawGetString(name); v != lua.LNil && v != lua.LFalse {
		if v == st.loading {
			L.RaiseError("module '%s' requires itself, or failed to load earlier", name)
		}
		L.Push(v)
		return 1
	}
	pkg, _ := L.G.Global.RawGetString("package").(*lua.LTable)
	var loader lua.LValue = lua.LNil
	if pkg != nil {
		if preload, ok := pkg.RawGetString("preload").(*lua.LTable); ok {
			loader = preload.RawGetString(name)
		}
	}
	if _, ok := loader.(*lua.LFunction); !ok {
		avail := strings.Join(st.available(), ", ")
		if avail == "" {
			avail = "none"
		}
		L.RaiseError("module '%s' is not available in tokenrun scripts (host modules: %s)", name, avail)
	}
	// Marking the slot first turns a module that requires itself into an
	// error instead of unbounded recursion.
	loaded.RawSetString(name, st.loading)
	L.Push(loader)
	L.Push(lua.LString(name))
	L.Call(1, 1)
	v := L.Get(-1)
	L.Pop(1)
	if v == lua.LNil {
		v = lua.LTrue
	}
	loaded.RawSetString(name, v)
	L.Push(v)
	return 1
}

func (st *runState) print(L *lua.LState) int {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(st.out, b.String()); err != nil {
		L.RaiseError("print: %v", err)
	}
	return 0
}

// sandboxPairs honours __pairs (Lua 5.2) so that read-only proxies such as
// ctx.config can be iterated; for plain tables it is the usual pairs.
func sandboxPairs(L *lua.LState, next lua.LValue) int {
	v := L.CheckAny(1)
	if h := L.GetMetaField(v, "__pairs"); h != lua.LNil {
		L.Push(h)
		L.Push(v)
		L.Call(1, 3)
		return 3
	}
	t := L.CheckTable(1)
	L.Push(next)
	L.Push(t)
	L.Push(lua.LNil)
	return 3
}

// sandboxIpairs reads through __index (Lua 5.3 semantics) so that ipairs
// works on read-only proxies too.
func sandboxIpairs(L *lua.LState, iter *lua.LFunction) int {
	v := L.CheckAny(1)
	if _, ok := v.(*lua.LTable); !ok && L.GetMetaField(v, "__index") == lua.LNil {
		L.TypeError(1, lua.LTTable)
	}
	L.Push(iter)
	L.Push(v)
	L.Push(lua.LNumber(0))
	return 3
}

func ipairsNext(L *lua.LState) int {
	t := L.Get(1)
	i := L.CheckInt(2) + 1
	var v lua.LValue
	if tb, ok := t.(*lua.LTable); ok && L.GetMetatable(tb) == lua.LNil {
		v = tb.RawGetInt(i)
	} else {
		v = L.GetTable(t, lua.LNumber(i))
	}
	if v == lua.LNil {
		return 0
	}
	L.Push(lua.LNumber(i))
	L.Push(v)
	return 2
}

// readOnly converts Go data into tables that raise on assignment. Each
// table is an empty proxy whose metatable reads from the real table, since
// Lua 5.1 has no other way to intercept writes to existing keys.
func (st *runState) readOnly(L *lua.LState, what string, v any) (lua.LValue, error) {
	lv, err := toLua(L, v, 0)
	if err != nil {
		return lua.LNil, fmt.Errorf("%s: %w", what, err)
	}
	return st.protect(L, what, lv, 0), nil
}

// roTable is the real table behind a read-only proxy.
type roTable struct {
	real *lua.LTable
	name string
}

func (st *runState) protect(L *lua.LState, what string, v lua.LValue, depth int) lua.LValue {
	t, ok := v.(*lua.LTable)
	if !ok || depth >= maxDepth {
		return v
	}
	if _, done := st.readonly[t]; done {
		return t
	}
	t.ForEach(func(k, val lua.LValue) {
		if vt, ok := val.(*lua.LTable); ok {
			t.RawSet(k, st.protect(L, what+"."+keyString(k), vt, depth+1))
		}
	})
	next := L.G.Global.RawGetString("next")
	proxy := L.CreateTable(0, 0)
	mt := L.CreateTable(0, 5)
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s is read-only", what)
		return 0
	}))
	mt.RawSetString("__len", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(t.Len()))
		return 1
	}))
	mt.RawSetString("__pairs", L.NewFunction(func(L *lua.LState) int {
		L.Push(next)
		L.Push(t)
		L.Push(lua.LNil)
		return 3
	}))
	mt.RawSetString("__metatable", lua.LString("read-only"))
	L.SetMetatable(proxy, mt)
	if st.readonly == nil {
		st.readonly = map[*lua.LTable]roTable{}
	}
	st.readonly[proxy] = roTable{real: t, name: what}
	return proxy
}

// guardRaw makes the raw table functions honour read-only proxies: the
// readers see the real table (an empty proxy would make table.concat
// return "" without complaint) and the writers raise as an assignment does.
func (st *runState) guardRaw(L *lua.LState) {
	g := L.G.Global
	tbl := g.RawGetString("table").(*lua.LTable)
	wrap := func(t *lua.LTable, name string, write bool) {
		orig, ok := t.RawGetString(name).(*lua.LFunction)
		if !ok || !orig.IsG {
			return
		}
		fn := orig.GFunction
		t.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if p, ok := L.Get(1).(*lua.LTable); ok && st.readonly != nil {
				if ro, ok := st.readonly[p]; ok {
					if write {
						L.RaiseError("%s is read-only", ro.name)
					}
					L.Replace(1, ro.real)
				}
			}
			return fn(L)
		}))
	}
	for _, name := range []string{"next", "rawget", "rawlen", "unpack"} {
		wrap(g, name, false)
	}
	wrap(g, "rawset", true)
	for _, name := range []string{"concat", "getn", "maxn", "unpack"} {
		wrap(tbl, name, false)
	}
	for _, name := range []string{"insert", "remove", "sort"} {
		wrap(tbl, name, true)
	}
}

func rawLen(L *lua.LState) int {
	switch v := L.Get(1).(type) {
	case *lua.LTable:
		L.Push(lua.LNumber(v.Len()))
	case lua.LString:
		L.Push(lua.LNumber(len(v)))
	default:
		L.ArgError(1, "table or string expected")
	}
	return 1
}

// luaError is error() with Lua 5.1's levels: gopher-lua positions level 2
// at the same line as level 1, which would blame a helper that validates
// its arguments instead of its caller.
func luaError(L *lua.LState) int {
	obj := L.CheckAny(1)
	level := L.OptInt(2, 1)
	if s, ok := obj.(lua.LString); ok && level > 0 {
		if dbg, ok := L.GetStack(level); ok {
			if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
				obj = lua.LString(fmt.Sprintf("%s:%d: %s", dbg.Source, dbg.CurrentLine, string(s)))
			}
		}
	}
	L.Error(obj, 0)
	return 0
}

// available names every module a script may require: host modules and libraries.
func (st *runState) available() []string {
	names := st.reg.moduleNames()
	for name := range st.libs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
