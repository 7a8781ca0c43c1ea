package runtime

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSandboxRefusesEscapes(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"os", "local x = 1\nos.execute('id')", "t.lua:2: os is not available in tokenrun scripts"},
		{"io", "io.open('/etc/passwd')", "t.lua:1: io is not available in tokenrun scripts"},
		{"debug", "debug.getinfo(1)", "t.lua:1: debug is not available in tokenrun scripts"},
		{"coroutine", "coroutine.create(print)", "t.lua:1: coroutine is not available in tokenrun scripts"},
		{"channel", "channel.make()", "t.lua:1: channel is not available in tokenrun scripts"},
		{"dofile", "dofile('/etc/passwd')", "t.lua:1: dofile is not available in tokenrun scripts"},
		{"loadfile", "loadfile('/etc/passwd')", "t.lua:1: loadfile is not available in tokenrun scripts"},
		{"load", "load(function() return nil end)", "t.lua:1: load is not available in tokenrun scripts"},
		{"loadstring", "loadstring('return 1')", "t.lua:1: loadstring is not available in tokenrun scripts"},
		{"getfenv", "getfenv(1)", "t.lua:1: getfenv is not available in tokenrun scripts"},
		{"setfenv", "setfenv(1, {})", "t.lua:1: setfenv is not available in tokenrun scripts"},
		{"collectgarbage", "collectgarbage()", "t.lua:1: collectgarbage is not available in tokenrun scripts"},
		{"newproxy", "newproxy(true)", "t.lua:1: newproxy is not available in tokenrun scripts"},
		{"module", "module('x')", "t.lua:1: module is not available in tokenrun scripts"},
		{"read through _G", "local f = _G.dofile", "t.lua:1: dofile is not available in tokenrun scripts"},
		{"string.dump", "string.dump(print)", "t.lua:1: string.dump is not available in tokenrun scripts"},
		{"string.dump as method", "local s = 'x'\nreturn s:dump()", "t.lua:2: string.dump is not available in tokenrun scripts"},
		{"package.loadlib", "package.loadlib('libc.so.6', 'system')", "t.lua:1: package.loadlib is not available in tokenrun scripts"},
		{"package.seeall", "package.seeall({})", "t.lua:1: package.seeall is not available in tokenrun scripts"},
		{"require std module", "require('os')", "t.lua:1: module 'os' is not available in tokenrun scripts (host modules: probe)"},
		{"require unregistered", "require('token')", "t.lua:1: module 'token' is not available in tokenrun scripts (host modules: probe)"},
		{"require file path", "require('./evil')", "t.lua:1: module './evil' is not available in tokenrun scripts (host modules: probe)"},
		{"require via package.path", "package.path = '/tmp/?.lua'\nrequire('evil')", "t.lua:2: module 'evil' is not available in tokenrun scripts (host modules: probe)"},
		{"string.rep huge", "local s = string.rep('x', 1e9)", "t.lua:1: string.rep: result would exceed 16 MiB"},
		{"string.rep huge as method", "local s = ('abc'):rep(2^40)", "t.lua:1: string.rep: result would exceed 16 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, tt.src, RunOptions{})
			se := scriptError(t, err)
			assert.Equal(t, tt.want, se.Error())
			assert.Equal(t, "t.lua", se.File)
			assert.NotZero(t, se.Line)
		})
	}
}

func TestSandboxKeepsLanguage(t *testing.T) {
	// What the sandbox leaves must still behave as Lua 5.1 does.
	res, err := runSrc(t, `
		local probe = require("probe")
		assert(require("probe") == probe, "require caches")
		assert(require("string") == string)
		assert(undefined_global == nil, "unknown globals are plain nil")
		assert(rawget(_G, "os") == nil)
		os = "mine"; assert(os == "mine", "a script may define its own global")
		local t = {}
		for i = 1, 3 do t[#t + 1] = i * 2 end
		local n = 0
		for _, v in ipairs(t) do n = n + v end
		for k in pairs({a = 1, b = 2}) do n = n + 1 end
		assert(string.rep("ab", 3) == "ababab" and ("x"):rep(0) == "")
		assert(pcall(error, "x") == false)
		assert(select("#", probe.echo(1, nil, 3)) == 3)
		assert(string.format("%05.1f", math.pi) == "003.1")
		-- Lua 5.2 names the scripts' .luacheckrc allows.
		assert(rawlen({1, 2}) == 2 and rawlen("abc") == 3)
		assert(select("#", table.unpack({1, 2, 3})) == 3)
		return n, table.concat(t, ","), #package.loaders, package.path, package.cpath
	`, RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, []any{float64(14), "2,4,6", float64(1), "", ""}, res.Values)
}

func TestPrintWritesToConfiguredWriter(t *testing.T) {
	var buf bytes.Buffer
	_, err := runSrc(t, `print("a", 1, nil, true); print(require("probe").open{label = "L"})`, RunOptions{Print: &buf})
	require.NoError(t, err)
	assert.Equal(t, "a\t1\tnil\ttrue\nprobe.Handle: L\n", buf.String())

	// Without a writer print is discarded rather than reaching stdout.
	_, err = runSrc(t, `print("lost")`, RunOptions{})
	require.NoError(t, err)
}

func TestRequireLoopIsAnError(t *testing.T) {
	_, err := runSrc(t, `
		package.preload.a = function() return require("a") end
		require("a")`, RunOptions{})
	se := scriptError(t, err)
	assert.Contains(t, se.Error(), "module 'a' requires itself")
}

func TestSandboxLimitsAreErrors(t *testing.T) {
	// There is no memory limit in gopher-lua; these are the limits it does
	// have, and each must end the run with an error, never crash the host.
	tests := []struct{ name, src, want string }{
		{"data stack", "local t = {}\nreturn unpack(t, 1, 1e7)", "t.lua:2: registry overflow"},
		{"call stack", "local function f() return 1 + f() end\nf()", "t.lua:1: stack overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, tt.src, RunOptions{})
			assert.Equal(t, tt.want, scriptError(t, err).Error())
		})
	}
}
