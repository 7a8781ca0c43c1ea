package runtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

func TestToGo(t *testing.T) {
	res, err := runSrc(t, `
		local cyclic = {name = "c"}
		cyclic.self = cyclic
		-- A leading value: a plain script returning nil, x reports a failure.
		return "lead", nil, true, 1.5, "s", {1, 2, 3}, {a = 1, [1] = "x"}, {}, {[2] = "b"}, cyclic, print`, RunOptions{})
	require.NoError(t, err)
	v := res.Values[1:]
	assert.Nil(t, v[0])
	assert.Equal(t, true, v[1])
	assert.Equal(t, 1.5, v[2])
	assert.Equal(t, "s", v[3])
	assert.Equal(t, []any{float64(1), float64(2), float64(3)}, v[4])
	assert.Equal(t, map[string]any{"a": float64(1), "1": "x"}, v[5])
	assert.Equal(t, map[string]any{}, v[6], "an empty table is a map")
	assert.Equal(t, map[string]any{"2": "b"}, v[7], "a sequence with holes is a map")
	assert.Equal(t, map[string]any{"name": "c", "self": nil}, v[8], "a cycle is cut")
	assert.IsType(t, &lua.LFunction{}, v[9])
}

func TestToLua(t *testing.T) {
	type code string
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	tests := []struct {
		in   any
		want any // ToGo of the result
	}{
		{nil, nil},
		{true, true},
		{"s", "s"},
		{[]byte("raw"), "raw"},
		{42, float64(42)},
		{int64(-7), float64(-7)},
		{uint8(200), float64(200)},
		{float32(0.5), 0.5},
		{[]any{1, "a"}, []any{float64(1), "a"}},
		{[]string{"x", "y"}, []any{"x", "y"}},
		{map[string]any{"k": []any{true}}, map[string]any{"k": []any{true}}},
		{map[string]string{"a": "b"}, map[string]any{"a": "b"}},
		{[]map[string]any{{"n": 1}}, []any{map[string]any{"n": float64(1)}}},
		{map[string]int{"n": 2}, map[string]any{"n": float64(2)}},
		{code("PIN"), "PIN"},
		{lua.LString("as is"), "as is"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ToGo(ToLua(L, tt.in)), "%#v", tt.in)
	}
}

func TestToLuaUnsupportedRaises(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, r.Add(Module{Name: "m", Funcs: []Func{{Name: "f", Fn: func(L *lua.LState) int {
		L.Push(ToLua(L, map[int]string{1: "x"}))
		return 1
	}}}}))
	_, err := runSrc(t, "\nrequire('m').f()", RunOptions{Registry: r})
	assert.Equal(t, "t.lua:2: cannot convert Go value of type map[int]string to Lua", scriptError(t, err).Error())
}
