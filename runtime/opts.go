package runtime

import (
	"math"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Opts reads an options table argument with type checks. Every getter
// records its key, so Check can refuse keys nobody asked for: a misspelt
// option ("timout") is an error rather than a silently ignored default.
//
//	o := runtime.CheckOpts(L, 1)
//	timeout := o.Duration("timeout", 30*time.Second)
//	uri := o.String("uri", "")
//	o.Check()
type Opts struct {
	L     *lua.LState
	t     *lua.LTable // nil when the argument was nil or absent
	known []string
}

// CheckOpts reads argument n, which must be a table, nil or absent (an
// absent table reads as empty).
func CheckOpts(L *lua.LState, n int) *Opts {
	o := &Opts{L: L}
	switch v := L.Get(n).(type) {
	case *lua.LTable:
		o.t = v
	case *lua.LNilType:
	default:
		ArgError(L, n, "table expected, got "+typeOf(L, n))
	}
	return o
}

// Value returns the raw value of key (lua.LNil when absent).
func (o *Opts) Value(key string) lua.LValue {
	o.note(key)
	if o.t == nil {
		return lua.LNil
	}
	return o.t.RawGetString(key)
}

// Has reports whether key is set.
func (o *Opts) Has(key string) bool { return o.Value(key) != lua.LNil }

// Required raises "missing option 'key' to token.wait" for the first key
// that is not set.
func (o *Opts) Required(keys ...string) {
	for _, k := range keys {
		if !o.Has(k) {
			o.L.RaiseError("missing option '%s' to %s", k, o.funcName())
		}
	}
}

// String returns a string option. Numbers are refused rather than
// converted: identifiers and PINs written as numbers lose leading zeros and
// precision.
func (o *Opts) String(key, def string) string {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LString:
		return string(v)
	}
	o.typeError(key, "string")
	return def
}

// Number returns a numeric option.
func (o *Opts) Number(key string, def float64) float64 {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LNumber:
		return float64(v)
	}
	o.typeError(key, "number")
	return def
}

// Int returns an integer option; a fractional number is an error.
func (o *Opts) Int(key string, def int) int {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LNumber:
		f := float64(v)
		if f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
			o.L.RaiseError("bad option '%s' to %s (integer expected, got a fractional or out of range number)", key, o.funcName())
		}
		return int(f)
	}
	o.typeError(key, "integer")
	return def
}

// Bool returns a boolean option.
func (o *Opts) Bool(key string, def bool) bool {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LBool:
		return bool(v)
	}
	o.typeError(key, "boolean")
	return def
}

// Duration returns a duration given either as seconds (timeout = 60, the
// natural form in Lua) or as a Go duration string (timeout = "1m30s").
func (o *Opts) Duration(key string, def time.Duration) time.Duration {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LNumber:
		// Written so that NaN fails too: every comparison with it is false.
		if !(v >= 0 && float64(v) <= math.MaxInt64/float64(time.Second)) {
			o.L.RaiseError("bad option '%s' to %s (duration must be between 0 and %d seconds, got %s)", key, o.funcName(),
				int64(math.MaxInt64/int64(time.Second)), formatNumber(float64(v)))
		}
		return time.Duration(float64(v) * float64(time.Second))
	case lua.LString:
		d, err := time.ParseDuration(string(v))
		if err != nil || d < 0 {
			o.L.RaiseError("bad option '%s' to %s (duration expected as seconds or a string like \"1m30s\", got %q)", key, o.funcName(), string(v))
		}
		return d
	}
	o.typeError(key, "duration (seconds or a string like \"1m30s\")")
	return def
}

// Table returns a table option, or nil when absent.
func (o *Opts) Table(key string) *lua.LTable {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return nil
	case *lua.LTable:
		return v
	}
	o.typeError(key, "table")
	return nil
}

// Func returns a function option (a callback such as ui.ask's validate), or
// nil when absent.
func (o *Opts) Func(key string) *lua.LFunction {
	switch v := o.Value(key).(type) {
	case *lua.LNilType:
		return nil
	case *lua.LFunction:
		return v
	}
	o.typeError(key, "function")
	return nil
}

// OptUserData returns a userdata option of the registered type typeName;
// ok is false when the option is absent.
func OptUserData[T any](o *Opts, key, typeName string) (v T, ok bool) {
	lv := o.Value(key)
	if lv == lua.LNil {
		return v, false
	}
	if ud, isUD := lv.(*lua.LUserData); isUD {
		if mt, isT := o.L.GetTypeMetatable(typeName).(*lua.LTable); isT && ud.Metatable == mt {
			if v, ok := ud.Value.(T); ok {
				return v, true
			}
		}
	}
	o.typeError(key, typeName)
	return v, false
}

// Check raises "unknown option 'timout' to token.wait (known: timeout,
// uri)" for a key no getter asked for. Call it after reading every option.
func (o *Opts) Check() {
	if o.t == nil {
		return
	}
	var bad lua.LValue = lua.LNil
	o.t.ForEach(func(k, _ lua.LValue) {
		if bad != lua.LNil {
			return
		}
		if s, ok := k.(lua.LString); ok && o.isKnown(string(s)) {
			return
		}
		bad = k
	})
	if bad == lua.LNil {
		return
	}
	known := append([]string(nil), o.known...)
	sort.Strings(known)
	list := strings.Join(known, ", ")
	if list == "" {
		list = "none"
	}
	if s, ok := bad.(lua.LString); ok {
		o.L.RaiseError("unknown option '%s' to %s (known: %s)", string(s), o.funcName(), list)
	}
	o.L.RaiseError("unexpected key [%s] in the options to %s: options are named (known: %s)", keyString(bad), o.funcName(), list)
}

func (o *Opts) note(key string) {
	if !o.isKnown(key) {
		o.known = append(o.known, key)
	}
}

func (o *Opts) isKnown(key string) bool {
	for _, k := range o.known {
		if k == key {
			return true
		}
	}
	return false
}

func (o *Opts) typeError(key, want string) {
	o.L.RaiseError("bad option '%s' to %s (%s expected, got %s)", key, o.funcName(), want, o.Value(key).Type().String())
}

// funcName is the registered name ("token.wait") of the function reading
// the options, so messages name what the script author reads in the docs.
func (o *Opts) funcName() string {
	if b := currentFunc(o.L); b != nil {
		return b.qname
	}
	return "'" + calledName(o.L) + "'"
}
