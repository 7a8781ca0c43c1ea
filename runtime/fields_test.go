package runtime

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

type keyHandle struct{ id, label string }

func fieldsRegistry(t *testing.T) *Registry {
	r := NewRegistry()
	require.NoError(t, r.Add(Module{
		Name: "keys",
		Funcs: []Func{{Name: "new", Fn: func(L *lua.LState) int {
			L.Push(NewUserData(L, "keys.Key", &keyHandle{id: "0a0b", label: L.CheckString(1)}))
			return 1
		}}},
		Types: []Type{{
			Name: "keys.Key",
			Methods: []Func{{Name: "describe", Fn: func(L *lua.LState) int {
				k := CheckUserData[*keyHandle](L, 1, "keys.Key")
				L.Push(lua.LString(k.label + "#" + k.id))
				return 1
			}}},
			Fields: func(v any) map[string]any {
				k := v.(*keyHandle)
				return map[string]any{"id": k.id, "label": k.label}
			},
		}},
	}))
	return r
}

func TestUserDataFields(t *testing.T) {
	tests := []struct {
		name, src string
		want      any
		err       string
	}{
		{name: "field", src: `return require("keys").new("profile").label`, want: "profile"},
		{name: "method wins", src: `local k = require("keys").new("p"); return k:describe()`, want: "p#0a0b"},
		{name: "unknown field is nil", src: `return require("keys").new("p").nothing == nil`, want: true},
		{name: "read-only", src: `local k = require("keys").new("p"); k.id = "ff"`, err: "t.lua:1: keys.Key.id is read-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile("t.lua", []byte(tt.src))
			require.NoError(t, err)
			res, err := Run(t.Context(), s, RunOptions{Registry: fieldsRegistry(t)})
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, res.Values, 1)
			assert.Equal(t, tt.want, res.Values[0])
		})
	}
}

func TestPlainScriptReturningErrorFails(t *testing.T) {
	s, err := Compile("plain.lua", []byte(`return nil, {code = "PIN_INCORRECT", message = "wrong", retries_left = 2}`))
	require.NoError(t, err)
	_, err = Run(t.Context(), s, RunOptions{})
	var se *ScriptError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "PIN_INCORRECT", se.Code)
	assert.Equal(t, float64(2), se.Fields["retries_left"])
	assert.Equal(t, "plain.lua: wrong", se.Error())

	s, err = Compile("ok.lua", []byte(`return nil, nil, "fine"`))
	require.NoError(t, err)
	_, err = Run(t.Context(), s, RunOptions{})
	require.NoError(t, err, "nil without an error value is a result")
}

func TestLibraries(t *testing.T) {
	lib, err := Compile("lib/policy.lua", []byte(`
		local M = {}
		local loads = (rawget(_G, "policy_loads") or 0)
		function M.long_enough(s) return #s >= 8 end
		M.loads = loads
		return M`))
	require.NoError(t, err)
	buggy, err := Compile("lib/buggy.lua", []byte("local x = nil\nreturn x.field"))
	require.NoError(t, err)
	libs := map[string]*Script{"lib.policy": lib, "lib.buggy": buggy}
	tests := []struct {
		name, src string
		want      any
		err       string
	}{
		{name: "require a library", src: `return require("lib.policy").long_enough("12345678")`, want: true},
		{name: "loaded once per run", src: `return require("lib.policy") == require("lib.policy")`, want: true},
		{name: "sandboxed like the script", src: `local p = require("lib.policy"); return os`, err: "os is not available"},
		{name: "error names the library's file and line", src: `require("lib.buggy")`, err: "lib/buggy.lua:2:"},
		{name: "unknown names what exists", src: `require("lib.nope")`, err: "lib.buggy, lib.policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile("main.lua", []byte(tt.src))
			require.NoError(t, err)
			res, err := Run(t.Context(), s, RunOptions{Libraries: libs})
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.Values[0])
		})
	}
}

// A binding raised inside a library keeps its Go cause (so the CLI maps a cancelled prompt
// to "cancelled", not to a script error) and the library's position appears once.
func TestLibraryRaiseKeepsCause(t *testing.T) {
	lib, err := Compile("lib/ask.lua", []byte("local p = require('probe')\nreturn { go = function() p.raise() end }"))
	require.NoError(t, err)
	s, err := Compile("main.lua", []byte(`require("lib.ask").go()`))
	require.NoError(t, err)
	_, err = Run(t.Context(), s, RunOptions{Registry: probeRegistry(t), Libraries: map[string]*Script{"lib.ask": lib}})
	require.Error(t, err)
	assert.ErrorIs(t, err, errProbe)
	assert.Equal(t, 1, strings.Count(err.Error(), "lib/ask.lua:2:"), err.Error())
}

// TestObserverRecordsHandleFields: a handle whose type has Fields is observed with them,
// as a result and as an argument, with the call's secret keys redacted inside them; a
// handle without Fields stays its text.
func TestObserverRecordsHandleFields(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, r.Add(Module{
		Name: "vault",
		Funcs: []Func{
			{Name: "open", Secret: []string{"pin"}, Fn: func(L *lua.LState) int {
				L.Push(NewUserData(L, "vault.Box", &keyHandle{id: "0a0b", label: "secret1234"}))
				return 1
			}},
			{Name: "use", Fn: func(L *lua.LState) int { return 0 }},
		},
		Types: []Type{{
			Name: "vault.Box",
			Fields: func(v any) map[string]any {
				k := v.(*keyHandle)
				return map[string]any{"id": k.id, "bits": 2048, "pin": k.label}
			},
		}},
	}))
	require.NoError(t, r.Add(probeModule()))
	rec := &recorder{}
	s, err := Compile("t.lua", []byte(`
		local v = require("vault")
		local b = v.open()
		v.use({box = b}, require("probe").open{label = "L"})`))
	require.NoError(t, err)
	_, err = Run(t.Context(), s, RunOptions{Registry: r, Observer: rec})
	require.NoError(t, err)
	var open, use CallEvent
	for _, e := range rec.events {
		switch e.Name() {
		case "vault.open":
			open = e
		case "vault.use":
			use = e
		}
	}
	box := map[string]any{"$handle": "vault.Box", "type": "vault.Box",
		"fields": map[string]any{"id": "0a0b", "bits": float64(2048), "pin": Redacted}}
	assert.Equal(t, []any{box}, open.Results, "a secret key of the call is redacted in the fields")
	box["fields"].(map[string]any)["pin"] = "secret1234" // use declares no secret
	assert.Equal(t, []any{map[string]any{"box": box}, "probe.Handle: L"}, use.Args)
}
