package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

// procedure builds a procedure file whose metadata fields are given as Lua
// source, so each test states only what it changes.
func procedure(fields map[string]string) string {
	base := map[string]string{
		"name":        `"change_pin"`,
		"version":     `"1.2.0"`,
		"api":         `1`,
		"description": `"Change the PIN"`,
		"run":         `function(ctx) return "done" end`,
	}
	for k, v := range fields {
		if v == "" {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	var b strings.Builder
	b.WriteString("return {\n")
	for _, k := range []string{"name", "version", "api", "description", "run", "prompts", "extra", "descripton"} {
		if v, ok := base[k]; ok {
			fmt.Fprintf(&b, "  %s = %s,\n", k, v)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func TestRunProcedure(t *testing.T) {
	res, err := runSrc(t, procedure(map[string]string{
		"run": `function(ctx) return ctx.config.region, ctx.args.user, ctx.host.api end`,
	}), RunOptions{Config: map[string]any{"region": "kz"}, Args: map[string]any{"user": "u1"}})
	require.NoError(t, err)
	assert.Equal(t, &Procedure{Name: "change_pin", Version: "1.2.0", API: 1, Description: "Change the PIN"}, res.Procedure)
	assert.Equal(t, []any{"kz", "u1", float64(1)}, res.Values)
}

func TestRunPlainScript(t *testing.T) {
	res, err := runSrc(t, `local ctx = ...; return ctx.config.n + 1, {1, 2}, {a = "b"}`, RunOptions{Config: map[string]any{"n": 41}})
	require.NoError(t, err)
	assert.Nil(t, res.Procedure)
	assert.Equal(t, []any{float64(42), []any{float64(1), float64(2)}, map[string]any{"a": "b"}}, res.Values)

	res, err = runSrc(t, `local x = 1`, RunOptions{})
	require.NoError(t, err)
	assert.Nil(t, res.Procedure)
	assert.Empty(t, res.Values)
}

func TestRunMetadataErrors(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]string
		want   string
	}{
		{"missing name", map[string]string{"name": ""}, "t.lua: procedure metadata: missing field 'name'"},
		{"name not a string", map[string]string{"name": "42"}, "t.lua: procedure metadata: field 'name' must be a string, got number"},
		{"name not snake_case", map[string]string{"name": `"Change PIN"`}, `t.lua: procedure metadata: field 'name' must be a snake_case identifier like "change_pin", got "Change PIN"`},
		{"missing version", map[string]string{"version": ""}, "t.lua: procedure metadata: missing field 'version' (procedure change_pin)"},
		{"version not semver", map[string]string{"version": `"1.0"`}, `t.lua: procedure metadata: field 'version' must be a semantic version like "1.0.0", got "1.0" (procedure change_pin)`},
		{"version a number", map[string]string{"version": `1.0`}, "t.lua: procedure metadata: field 'version' must be a string, got number (procedure change_pin)"},
		{"missing description", map[string]string{"description": ""}, "t.lua: procedure metadata: missing field 'description' (procedure change_pin 1.2.0)"},
		{"missing api", map[string]string{"api": ""}, "t.lua: procedure metadata: missing field 'api' (procedure change_pin 1.2.0)"},
		{"api a string", map[string]string{"api": `"1"`}, "t.lua: procedure metadata: field 'api' must be a number, got string (procedure change_pin 1.2.0)"},
		{"api fractional", map[string]string{"api": `1.5`}, "t.lua: procedure metadata: field 'api' must be a whole number of at least 1, got 1.5 (procedure change_pin 1.2.0)"},
		{"api zero", map[string]string{"api": `0`}, "t.lua: procedure metadata: field 'api' must be a whole number of at least 1, got 0 (procedure change_pin 1.2.0)"},
		{"missing run", map[string]string{"run": ""}, "t.lua: procedure metadata: missing field 'run' (procedure change_pin 1.2.0)"},
		{"run not a function", map[string]string{"run": `"go"`}, "t.lua: procedure metadata: field 'run' must be a function, got string (procedure change_pin 1.2.0)"},
		{"prompts not a list", map[string]string{"prompts": `"user_id"`}, "t.lua: procedure metadata: field 'prompts' must be a list of tables, got string (procedure change_pin 1.2.0)"},
		{"prompt kind unknown", map[string]string{"prompts": `{ { id = "user_id", kind = "number" } }`}, `t.lua: procedure metadata: prompt 'user_id': kind must be one of text, secret, choice, confirm, got "number" (procedure change_pin 1.2.0)`},
		{"prompt twice", map[string]string{"prompts": `{ { id = "a", kind = "text" }, { id = "a", kind = "text" } }`}, "t.lua: procedure metadata: prompt 'a' is declared twice (procedure change_pin 1.2.0)"},
		{"prompt field misspelt", map[string]string{"prompts": `{ { id = "a", kind = "text", optinal = true } }`}, "t.lua: procedure metadata: prompts[1]: unknown field 'optinal' (procedure change_pin 1.2.0)"},
		{"choices on text", map[string]string{"prompts": `{ { id = "a", kind = "text", choices = { "x" } } }`}, "t.lua: procedure metadata: prompt 'a': only a choice prompt has choices (procedure change_pin 1.2.0)"},
		{"misspelt field", map[string]string{"descripton": `"x"`}, "t.lua: procedure metadata: unknown field 'descripton' (known: api, description, name, prompts, run, version)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, procedure(tt.fields), RunOptions{})
			assert.Equal(t, tt.want, scriptError(t, err).Error())
		})
	}
}

// TestRunBeforeRun: the host sees the declared prompts before run starts, and its error ends
// the run before any module is called.
func TestRunBeforeRun(t *testing.T) {
	src := procedure(map[string]string{"run": `function() require("probe").echo() end`,
		"prompts": `{ { id = "validity", kind = "choice", choices_from = "validity", note = "n" }, { id = "pin", kind = "secret", optional = true } }`})
	var got *Procedure
	ran := false
	stop := errors.New("answers do not fit")
	_, err := runSrc(t, src, RunOptions{Observer: ObserverFunc(func(CallEvent) { ran = true }),
		BeforeRun: func(p *Procedure) error { got = p; return stop }})
	require.ErrorIs(t, err, stop)
	assert.False(t, ran, "run must not be called")
	require.NotNil(t, got)
	assert.Equal(t, []PromptSpec{{ID: "validity", Kind: "choice", ChoicesFrom: "validity", Note: "n"},
		{ID: "pin", Kind: "secret", Optional: true}}, got.Prompts)
}

func TestRunRefusesNewerAPI(t *testing.T) {
	ran := false
	_, err := runSrc(t, procedure(map[string]string{"api": "2", "run": `function() require("probe").echo() end`}),
		RunOptions{Observer: ObserverFunc(func(CallEvent) { ran = true })})
	se := scriptError(t, err)
	assert.ErrorIs(t, err, ErrAPILevel)
	assert.Contains(t, se.Message, "needs host API level 2")
	assert.Contains(t, se.Message, "provides API level 1")
	assert.Equal(t, "change_pin", se.Procedure)
	assert.False(t, ran, "run must not be called")
}

func TestRunSinceGatesNewerFunctions(t *testing.T) {
	// With APILevel 1 no function can be newer than a valid procedure, so
	// the check is exercised on the bound function directly.
	r := NewRegistry()
	require.NoError(t, r.Add(Module{Name: "m", Funcs: []Func{{Name: "f", Fn: func(L *lua.LState) int { return 0 }}}}))
	r.mods["m"].funcs[0].since = 2
	_, err := runSrc(t, procedure(map[string]string{"run": `function() require("m").f() end`}), RunOptions{Registry: r})
	assert.Equal(t, "t.lua:6: m.f needs API level 2, but the procedure declares api = 1 (procedure change_pin 1.2.0)", scriptError(t, err).Error())
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name       string
		src        string
		want       string
		code       string
		fields     map[string]any
		wantLine   int
		procedure  string
		causeIsErr error
	}{
		{name: "runtime error", src: "local a\n\nreturn a.b", want: "t.lua:3: attempt to index a non-table object(nil) with key 'b'", wantLine: 3},
		{name: "error string", src: "error('boom')", want: "t.lua:1: boom", wantLine: 1},
		{name: "error level 2 names the caller", src: "local function check(x)\n  error('bad x', 2)\nend\ncheck(1)", want: "t.lua:4: bad x", wantLine: 4},
		{name: "error level 0 still located", src: "\nerror('plain', 0)", want: "t.lua:2: plain", wantLine: 2},
		{name: "error table", src: "\nerror({code = 'PIN_INCORRECT', message = 'wrong PIN', retries_left = 2})",
			want: "t.lua:2: wrong PIN", code: "PIN_INCORRECT", fields: map[string]any{"retries_left": float64(2)}, wantLine: 2},
		{name: "error table without message", src: "error({code = 'PIN_LOCKED'})", want: "t.lua:1: PIN_LOCKED", code: "PIN_LOCKED", wantLine: 1},
		{name: "error non-string", src: "error(42)", want: "t.lua:1: 42", wantLine: 1},
		{name: "binding raise keeps line", src: "local p = require('probe')\np.add(1, 'x')", want: "t.lua:2: bad argument #2 to add (number expected, got string)", wantLine: 2},
		{name: "binding Raise keeps Go cause", src: "local p = require('probe')\n\np.raise()", want: "t.lua:3: open session: probe: device unplugged", wantLine: 3, causeIsErr: errProbe},
		{name: "binding panic becomes error", src: "require('probe').crash()", want: "t.lua:1: internal error in probe.crash: runtime error: invalid memory address or nil pointer dereference", wantLine: 1},
		{name: "error in procedure run", src: procedure(map[string]string{"run": "function(ctx)\n error('inside')\n end"}),
			want: "t.lua:7: inside (procedure change_pin 1.2.0)", wantLine: 7, procedure: "change_pin"},
		{name: "run returns nil, err table", src: procedure(map[string]string{"run": "function(ctx) return require('probe').fail() end"}),
			want: "t.lua: wrong PIN (procedure change_pin 1.2.0)", code: "PIN_INCORRECT", fields: map[string]any{"retries_left": float64(2)}, procedure: "change_pin"},
		{name: "run returns nil, string", src: procedure(map[string]string{"run": "function(ctx) return nil, 'no token' end"}),
			want: "t.lua: no token (procedure change_pin 1.2.0)", procedure: "change_pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, tt.src, RunOptions{})
			se := scriptError(t, err)
			assert.Equal(t, tt.want, se.Error())
			assert.Equal(t, tt.code, se.ErrorCode())
			assert.Equal(t, tt.fields, se.Fields)
			assert.Equal(t, tt.wantLine, se.Line)
			assert.Equal(t, tt.procedure, se.Procedure)
			assert.NotContains(t, se.Error(), "stack traceback")
			assert.NotContains(t, se.Error(), "\n")
			if tt.causeIsErr != nil {
				assert.ErrorIs(t, err, tt.causeIsErr)
			}
			if tt.wantLine > 0 {
				assert.Contains(t, se.Traceback, "stack traceback:")
			}
		})
	}
}

func TestRunPanicKeepsGoStackForDebug(t *testing.T) {
	_, err := runSrc(t, "require('probe').crash()", RunOptions{})
	se := scriptError(t, err)
	assert.Contains(t, se.Traceback, "Go panic in probe.crash")
	assert.Contains(t, se.Traceback, "goroutine")
}

func TestRunCaughtErrorsDoNotLeak(t *testing.T) {
	// A Go cause caught by pcall must not be attached to a later, unrelated error.
	_, err := runSrc(t, "local p = require('probe')\nlocal ok = pcall(p.raise)\nassert(not ok)\nerror('later')", RunOptions{})
	se := scriptError(t, err)
	assert.Equal(t, "t.lua:4: later", se.Error())
	assert.NotErrorIs(t, err, errProbe)
}

func TestRunSyntaxError(t *testing.T) {
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"bad token", "local a = 1\nlocal b = = 2\n", "t.lua:2: syntax error near '='", 2},
		{"unexpected end", "local a = 1\nif a then\n", "t.lua:3: syntax error at end of file", 3},
		{"break outside loop", "local a = 1\n\nbreak\n", "t.lua:3: no loop to break", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile("t.lua", []byte(tt.src))
			se := scriptError(t, err)
			assert.Equal(t, tt.want, se.Error())
			assert.Equal(t, tt.line, se.Line)
		})
	}
}

func TestRunDeadline(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
	}{
		{"busy loop", "local n = 0\nwhile true do n = n + 1 end", 2},
		{"busy loop catching errors", "while true do\n  pcall(function() while true do end end)\nend", 3},
		{"binding blocked on ctx", "local p = require('probe')\nlocal ok, err = p.wait()\nwhile true do end", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const timeout = 200 * time.Millisecond
			start := time.Now()
			_, err := runSrc(t, tt.src, RunOptions{Timeout: timeout})
			elapsed := time.Since(start)
			se := scriptError(t, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, elapsed, timeout+time.Second)
			assert.Equal(t, "script stopped: timed out after 200ms", se.Message)
			assert.Equal(t, tt.line, se.Line)
			assert.Equal(t, fmt.Sprintf("script stopped: timed out after 200ms at t.lua:%d", tt.line), se.Error())
		})
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Compile("t.lua", []byte("while true do end"))
	require.NoError(t, err)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = Run(ctx, s, RunOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "script stopped: canceled at t.lua:1", err.Error())
}

func TestRunConfigIsReadOnly(t *testing.T) {
	cfg := map[string]any{"region": "kz", "ca": map[string]any{"url": "https://ca"}, "list": []any{"a", "b"}}
	tests := []struct{ name, src, want string }{
		{"set existing", "local ctx = ...\nctx.config.region = 'x'", "t.lua:2: ctx.config is read-only"},
		{"add new", "local ctx = ...\nctx.config.other = 1", "t.lua:2: ctx.config is read-only"},
		{"nested", "local ctx = ...\nctx.config.ca.url = 'evil'", "t.lua:2: ctx.config.ca is read-only"},
		{"list", "local ctx = ...\nctx.config.list[1] = 'z'", "t.lua:2: ctx.config.list is read-only"},
		{"replace config", "local ctx = ...\nctx.config = {}", "t.lua:2: ctx is read-only"},
		{"table.insert", "local ctx = ...\ntable.insert(ctx.config.list, 'c')", "t.lua:2: ctx.config.list is read-only"},
		{"table.sort", "local ctx = ...\ntable.sort(ctx.config.list)", "t.lua:2: ctx.config.list is read-only"},
		{"rawset", "local ctx = ...\nrawset(ctx.config, 'region', 'x')", "t.lua:2: ctx.config is read-only"},
		{"metatable", "local ctx = ...\nsetmetatable(ctx.config, nil)", "t.lua:2: cannot change a protected metatable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, tt.src, RunOptions{Config: cfg})
			assert.Equal(t, tt.want, scriptError(t, err).Error())
		})
	}

	res, err := runSrc(t, `
		local ctx = ...
		local keys = {}
		for k in pairs(ctx.config) do keys[#keys + 1] = k end
		table.sort(keys)
		local items = {}
		for i, v in ipairs(ctx.config.list) do items[i] = v end
		local n = 0
		-- The explicit nil works around a gopher-lua compiler bug: a generic
		-- for with two expressions reads a stale third register.
		for k, v in next, ctx.config, nil do n = n + 1 end
		return table.concat(keys, ","), #ctx.config.list, table.concat(items, ","), ctx.config.ca.url,
			table.concat(ctx.config.list, "+"), select("#", unpack(ctx.config.list)), n, rawget(ctx.config, "region"),
			rawlen(ctx.config.list), select("#", table.unpack(ctx.config.list))`, RunOptions{Config: cfg})
	require.NoError(t, err)
	assert.Equal(t, []any{"ca,list,region", float64(2), "a,b", "https://ca", "a+b", float64(2), float64(3), "kz", float64(2), float64(2)}, res.Values)
	assert.Equal(t, "kz", cfg["region"], "the Go map is never written")
}

func TestCompileCache(t *testing.T) {
	src := []byte("return 1")
	a, err := Compile("cache.lua", src)
	require.NoError(t, err)
	b, err := Compile("cache.lua", append([]byte(nil), src...))
	require.NoError(t, err)
	assert.Same(t, a, b)
	assert.Same(t, a.proto, b.proto)

	other, err := Compile("other.lua", src)
	require.NoError(t, err)
	assert.NotSame(t, a.proto, other.proto, "the chunk name is part of every message, so it is part of the key")
	changed, err := Compile("cache.lua", []byte("return 2"))
	require.NoError(t, err)
	assert.NotSame(t, a.proto, changed.proto)
}

func TestRunConcurrentlyFromOneScript(t *testing.T) {
	s, err := Compile("t.lua", []byte(procedure(map[string]string{
		"run": `function(ctx) local p = require("probe"); local n = 0; for i = 1, 1000 do n = p.add(n, 1) end; return n end`,
	})))
	require.NoError(t, err)
	reg := probeRegistry(t)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			res, err := Run(context.Background(), s, RunOptions{Registry: reg, Observer: &recorder{}})
			if err == nil && res.Values[0] != float64(1000) {
				err = errors.New("wrong result")
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		require.NoError(t, <-errs)
	}
}
