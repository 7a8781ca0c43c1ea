package runtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

func TestUserDataMethods(t *testing.T) {
	res, err := runSrc(t, `
		local p = require("probe")
		local h = p.open{label = "token 1"}
		local same = p.open{label = "token 1"}
		return h:label(), tostring(h), type(h), h == h, h == same, h:login("1234", {so = true})`, RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, []any{"token 1", "probe.Handle: token 1", "userdata", true, false, true}, res.Values)
}

func TestUserDataTypeCheck(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"dot instead of colon", "local h = p.open{}\nh.label('x')", "t.lua:3: bad argument #1 to 'label' (probe.Handle expected, got string)"},
		{"no receiver", "local h = p.open{}\nh.label()", "t.lua:3: bad argument #1 to 'label' (probe.Handle expected, got no value)"},
		{"wrong receiver", "local h = p.open{}\nh.login({}, '1234')", "t.lua:3: bad argument #1 to 'login' (probe.Handle expected, got table)"},
		{"method on another value", "local h = p.open{}\nlocal f = h.label\nf(1)", "t.lua:4: bad argument #1 to 'f' (probe.Handle expected, got number)"},
		{"options table of wrong type", "local h = p.open{}\nh:login('1234', 'so')", "t.lua:3: bad argument #3 to 'login' (table expected, got string)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, "local p = require('probe')\n"+tt.src, RunOptions{})
			assert.Equal(t, tt.want, scriptError(t, err).Error())
		})
	}
}

func TestNewUserDataUnregisteredType(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, r.Add(Module{Name: "bad", Funcs: []Func{{Name: "make", Fn: func(L *lua.LState) int {
		L.Push(NewUserData(L, "bad.Nope", 1))
		return 1
	}}}}))
	_, err := runSrc(t, "require('bad').make()", RunOptions{Registry: r})
	assert.Equal(t, `t.lua:1: runtime: userdata type "bad.Nope" is not registered`, scriptError(t, err).Error())
}

func TestNewUserDataBeforeRequire(t *testing.T) {
	// A binding may return another module's type before the script has
	// required that module; the metatable is built on first use.
	r := probeRegistry(t)
	require.NoError(t, r.Add(Module{Name: "other", Funcs: []Func{{Name: "handle", Fn: func(L *lua.LState) int {
		L.Push(NewUserData(L, "probe.Handle", &handle{label: "from other"}))
		return 1
	}}}}))
	res, err := runSrc(t, "return require('other').handle():label()", RunOptions{Registry: r})
	require.NoError(t, err)
	assert.Equal(t, []any{"from other"}, res.Values)
}
