package runtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

func nop(*lua.LState) int { return 0 }

func TestRegistryAddErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  Module
		want string
	}{
		{"empty name", Module{}, `add module "": name must match ^[a-z][a-z0-9_]*$`},
		{"reserved", Module{Name: "os"}, `add module "os": name is reserved for the standard library`},
		{"nil function", Module{Name: "m", Funcs: []Func{{Name: "f"}}}, `add module "m": function "f" has no Go function`},
		{"bad function name", Module{Name: "m", Funcs: []Func{{Name: "a.b", Fn: nop}}}, `add module "m": function name "a.b" is not a Lua identifier`},
		{"duplicate function", Module{Name: "m", Funcs: []Func{{Name: "f", Fn: nop}, {Name: "f", Fn: nop}}}, `add module "m": function "f" is defined twice`},
		{"since too new", Module{Name: "m", Funcs: []Func{{Name: "f", Fn: nop, Since: 2}}}, `add module "m": function "f": since = 2, but this host provides API levels 1 to 1`},
		{"secret with unparsable args", Module{Name: "m", Funcs: []Func{{Name: "f", Fn: nop, Args: "string pin", Secret: []string{"pin"}}}}, `add module "m": function "f": args: item "string pin" does not start with a name`},
		{"value clashes with function", Module{Name: "m", Funcs: []Func{{Name: "f", Fn: nop}}, Values: map[string]any{"f": 1}}, `add module "m": value "f" has the same name as a function`},
		{"value not convertible", Module{Name: "m", Values: map[string]any{"C": struct{}{}}}, `add module "m": value "C": cannot convert Go value of type struct {} to Lua`},
		{"type without module prefix", Module{Name: "m", Types: []Type{{Name: "Token"}}}, `add module "m": type name "Token" must look like "m.Name"`},
		{"duplicate method", Module{Name: "m", Types: []Type{{Name: "m.T", Methods: []Func{{Name: "x", Fn: nop}, {Name: "x", Fn: nop}}}}}, `add module "m": type "m.T": method "x" is defined twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.EqualError(t, NewRegistry().Add(tt.mod), tt.want)
		})
	}
}

func TestRegistryDuplicateModule(t *testing.T) {
	r := probeRegistry(t)
	assert.EqualError(t, r.Add(probeModule()), `add module "probe": already registered`)
}

func TestRegistryModulesSorted(t *testing.T) {
	r := NewRegistry()
	for _, n := range []string{"ui", "ca", "token"} {
		require.NoError(t, r.Add(Module{Name: n, Doc: n + " doc"}))
	}
	var names []string
	for _, m := range r.Modules() {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"ca", "token", "ui"}, names)
}

func TestRegistryModuleValues(t *testing.T) {
	res, err := runSrc(t, `local p = require("probe"); return p.VERSION, p.LIMITS.max`, RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, []any{"1", float64(3)}, res.Values)
}

func TestSignatureNames(t *testing.T) {
	tests := []struct {
		sig  string
		want []string
	}{
		{"", nil},
		{"pin: string", []string{"pin"}},
		{"old: string, new: string, opts?: table", []string{"old", "new", "opts"}},
		{"fn: function, ...", []string{"fn"}},
		{"key", []string{"key"}},
	}
	for _, tt := range tests {
		got, err := signatureNames(tt.sig)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, tt.sig)
	}
}
