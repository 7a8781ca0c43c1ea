package runtime

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// maxDepth bounds recursion over nested tables: a script can build a table
// that contains itself, and Go values handed over by bindings are never
// legitimately this deep.
const maxDepth = 64

// ToGo converts a Lua value to plain Go data: nil, bool, float64, string,
// []any for a non-empty sequence (keys exactly 1..n), map[string]any for any
// other table (an empty table included; non-string keys are formatted), the
// Go value of a userdata, and the *lua.LFunction itself for a function so a
// binding can call it back. A table met again while converting itself (a
// cycle) or nested deeper than 64 levels becomes nil.
func ToGo(v lua.LValue) any {
	return toGo(v, 0, nil)
}

func toGo(v lua.LValue, depth int, visiting map[*lua.LTable]bool) any {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		return string(v)
	case *lua.LUserData:
		return v.Value
	case *lua.LTable:
		if depth >= maxDepth || visiting[v] {
			return nil
		}
		if visiting == nil {
			visiting = map[*lua.LTable]bool{}
		}
		visiting[v] = true
		defer delete(visiting, v)
		if n, ok := sequenceLen(v); ok {
			out := make([]any, n)
			for i := 0; i < n; i++ {
				out[i] = toGo(v.RawGetInt(i+1), depth+1, visiting)
			}
			return out
		}
		out := map[string]any{}
		v.ForEach(func(k, val lua.LValue) {
			out[keyString(k)] = toGo(val, depth+1, visiting)
		})
		return out
	default:
		// Functions, threads and channels have no data form; handing back the
		// value lets a binding call a function it was given.
		return v
	}
}

// sequenceLen reports whether t's keys are exactly 1..n with n > 0.
func sequenceLen(t *lua.LTable) (int, bool) {
	count, max := 0, 0
	seq := true
	t.ForEach(func(k, _ lua.LValue) {
		count++
		if !seq {
			return
		}
		n, ok := k.(lua.LNumber)
		if !ok || n < 1 || float64(n) != math.Trunc(float64(n)) || n > math.MaxInt32 {
			seq = false
			return
		}
		if int(n) > max {
			max = int(n)
		}
	})
	return count, seq && count > 0 && count == max
}

func keyString(k lua.LValue) string {
	if n, ok := k.(lua.LNumber); ok {
		return formatNumber(float64(n))
	}
	return k.String()
}

func formatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan" // as Lua prints them
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// ToLua converts Go data to a Lua value: nil, bool, strings and []byte,
// every integer and float type (as a float64, so integers beyond 2^53 lose
// precision: pass identifiers as strings), slices and arrays as sequences,
// maps with string keys as tables, and lua.LValue unchanged. Anything else is
// a binding bug and raises a Lua error at the calling script line.
func ToLua(L *lua.LState, v any) lua.LValue {
	lv, err := toLua(L, v, 0)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return lv
}

func toLua(L *lua.LState, v any, depth int) (lua.LValue, error) {
	if depth >= maxDepth {
		return lua.LNil, fmt.Errorf("cannot convert Go value to Lua: nested deeper than %d levels", maxDepth)
	}
	switch v := v.(type) {
	case nil:
		return lua.LNil, nil
	case lua.LValue:
		return v, nil
	case bool:
		return lua.LBool(v), nil
	case string:
		return lua.LString(v), nil
	case []byte:
		return lua.LString(v), nil
	case int:
		return lua.LNumber(v), nil
	case int8:
		return lua.LNumber(v), nil
	case int16:
		return lua.LNumber(v), nil
	case int32:
		return lua.LNumber(v), nil
	case int64:
		return lua.LNumber(v), nil
	case uint:
		return lua.LNumber(v), nil
	case uint8:
		return lua.LNumber(v), nil
	case uint16:
		return lua.LNumber(v), nil
	case uint32:
		return lua.LNumber(v), nil
	case uint64:
		return lua.LNumber(v), nil
	case float32:
		return lua.LNumber(v), nil
	case float64:
		return lua.LNumber(v), nil
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, e := range v {
			lv, err := toLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.RawSetInt(i+1, lv)
		}
		return t, nil
	case []string:
		t := L.CreateTable(len(v), 0)
		for i, e := range v {
			t.RawSetInt(i+1, lua.LString(e))
		}
		return t, nil
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			lv, err := toLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	case map[string]string:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, lua.LString(e))
		}
		return t, nil
	}
	return reflectToLua(L, reflect.ValueOf(v), depth)
}

// reflectToLua handles the typed slices and maps (e.g. []map[string]any,
// map[string]int) that the fast cases above do not list.
func reflectToLua(L *lua.LState, rv reflect.Value, depth int) (lua.LValue, error) {
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return lua.LNil, nil
		}
		t := L.CreateTable(rv.Len(), 0)
		for i := 0; i < rv.Len(); i++ {
			lv, err := toLua(L, rv.Index(i).Interface(), depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.RawSetInt(i+1, lv)
		}
		return t, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return lua.LNil, nil
		}
		t := L.CreateTable(0, rv.Len())
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			lv, err := toLua(L, rv.MapIndex(k).Interface(), depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.RawSetString(k.String(), lv)
		}
		return t, nil
	case reflect.String:
		return lua.LString(rv.String()), nil
	case reflect.Bool:
		return lua.LBool(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return lua.LNumber(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return lua.LNumber(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return lua.LNumber(rv.Float()), nil
	}
	return lua.LNil, fmt.Errorf("cannot convert Go value of type %s to Lua", rv.Type())
}

// checkConvertible lets Registry.Add refuse a constant that would otherwise
// fail in every run; it converts into a throwaway state because Lua tables
// cannot be built without one.
func checkConvertible(v any) error {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	_, err := toLua(L, v, 0)
	return err
}
