package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

// handle is the Go value behind the test module's userdata type.
type handle struct{ label string }

func (h *handle) String() string { return h.label }

var errProbe = errors.New("probe: device unplugged")

// probeModule is a small binding written the way real bindings are, so the
// tests exercise the host through the same API they use.
func probeModule() Module {
	return Module{
		Name: "probe",
		Doc:  "Test module.",
		Funcs: []Func{
			{Name: "echo", Args: "...", Fn: func(L *lua.LState) int { return L.GetTop() }},
			{Name: "add", Args: "a: number, b: number", Returns: "sum: number", Fn: func(L *lua.LState) int {
				L.Push(L.CheckNumber(1) + L.CheckNumber(2))
				return 1
			}},
			{Name: "login", Args: "user: string, pin: string", Secret: []string{"pin"}, Fn: func(L *lua.LState) int {
				pin := L.CheckString(2)
				if pin == "raise" || strings.HasPrefix(pin, "bad") {
					L.RaiseError("login of %s with PIN %s refused", L.CheckString(1), pin)
				}
				L.Push(lua.LTrue)
				return 1
			}},
			{Name: "open", Args: "opts: table", Returns: "h: probe.Handle", Secret: []string{"pin"}, Fn: func(L *lua.LState) int {
				o := CheckOpts(L, 1)
				label := o.String("label", "default")
				o.String("pin", "")
				o.Check()
				L.Push(NewUserData(L, "probe.Handle", &handle{label: label}))
				return 1
			}},
			{Name: "enroll", Args: "opts: table", Secret: []string{"password"}, Fn: func(L *lua.LState) int {
				L.Push(lua.LTrue)
				return 1
			}},
			{Name: "secret", Args: "prompt: string", Returns: "value: string", Secret: []string{"value"}, Fn: func(L *lua.LState) int {
				L.Push(lua.LString("s3cr3t-value"))
				return 1
			}},
			{Name: "fail", Fn: func(L *lua.LState) int {
				return Fail(L, "PIN_INCORRECT", "wrong PIN", map[string]any{"retries_left": 2})
			}},
			{Name: "raise", Fn: func(L *lua.LState) int {
				Raise(L, fmt.Errorf("open session: %w", errProbe))
				return 0
			}},
			{Name: "crash", Fn: func(L *lua.LState) int {
				var h *handle
				L.Push(lua.LString(h.label))
				return 1
			}},
			{Name: "wait", Args: "opts?: table", Fn: func(L *lua.LState) int {
				o := CheckOpts(L, 1)
				d := o.Duration("timeout", time.Hour)
				o.Check()
				select {
				case <-Context(L).Done():
					return Fail(L, "TIMEOUT", "no token", nil)
				case <-time.After(d):
				}
				L.Push(lua.LTrue)
				return 1
			}},
			{Name: "call", Args: "fn: function, arg: any", Fn: func(L *lua.LState) int {
				L.Push(L.CheckFunction(1))
				L.Push(L.Get(2))
				L.Call(1, 1)
				return 1
			}},
			{Name: "opts", Args: "opts: table", Fn: func(L *lua.LState) int {
				o := CheckOpts(L, 1)
				out := map[string]any{
					"s":   o.String("s", "def"),
					"i":   o.Int("i", 7),
					"n":   o.Number("n", 1.5),
					"b":   o.Bool("b", false),
					"d":   o.Duration("d", time.Second).String(),
					"t":   o.Table("t") != nil,
					"f":   o.Func("f") != nil,
					"req": o.String("req", ""),
				}
				if h, ok := OptUserData[*handle](o, "h", "probe.Handle"); ok {
					out["h"] = h.label
				}
				if o.Bool("need", false) {
					o.Required("req")
				}
				o.Check()
				L.Push(ToLua(L, out))
				return 1
			}},
		},
		Types: []Type{{
			Name: "probe.Handle",
			Doc:  "A test handle.",
			Methods: []Func{
				{Name: "label", Returns: "label: string", Fn: func(L *lua.LState) int {
					h := CheckUserData[*handle](L, 1, "probe.Handle")
					L.Push(lua.LString(h.label))
					return 1
				}},
				{Name: "login", Args: "pin: string, opts?: table", Secret: []string{"pin", "so_pin"}, Fn: func(L *lua.LState) int {
					CheckUserData[*handle](L, 1, "probe.Handle")
					L.CheckString(2)
					o := CheckOpts(L, 3)
					o.Bool("so", false)
					o.String("so_pin", "")
					o.Check()
					L.Push(lua.LTrue)
					return 1
				}},
			},
		}},
		Values: map[string]any{"VERSION": "1", "LIMITS": map[string]any{"max": 3}},
	}
}

func probeRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	require.NoError(t, r.Add(probeModule()))
	return r
}

// runSrc compiles and runs src as t.lua with the probe module available.
func runSrc(t testing.TB, src string, opts RunOptions) (*Result, error) {
	t.Helper()
	s, err := Compile("t.lua", []byte(src))
	if err != nil {
		return nil, err
	}
	if opts.Registry == nil {
		opts.Registry = probeRegistry(t)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	return Run(context.Background(), s, opts)
}

// scriptError asserts err is a *ScriptError and returns it.
func scriptError(t *testing.T, err error) *ScriptError {
	t.Helper()
	require.Error(t, err)
	var se *ScriptError
	require.ErrorAs(t, err, &se)
	return se
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []CallEvent
}

func (r *recorder) Call(e CallEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}
