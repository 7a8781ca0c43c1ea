package runtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpts(t *testing.T) {
	res, err := runSrc(t, `
		local p = require("probe")
		local defaults = p.opts()
		local set = p.opts{s = "x", i = 3, n = 2.5, b = true, d = 90, t = {}, f = print, h = p.open{label = "H"}}
		local str = p.opts{d = "1m30s"}
		return defaults, set, str.d`, RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"s": "def", "i": float64(7), "n": 1.5, "b": false, "d": "1s", "t": false, "f": false, "req": ""}, res.Values[0])
	assert.Equal(t, map[string]any{"s": "x", "i": float64(3), "n": 2.5, "b": true, "d": "1m30s", "t": true, "f": true, "req": "", "h": "H"}, res.Values[1])
	assert.Equal(t, "1m30s", res.Values[2])
}

func TestOptsErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown key", "p.wait{timout = 5}", "t.lua:2: unknown option 'timout' to probe.wait (known: timeout)"},
		{"unknown key lists all known", "p.opts{colour = 1}", "t.lua:2: unknown option 'colour' to probe.opts (known: b, d, f, h, i, n, need, req, s, t)"},
		{"positional value", "p.wait{5}", "t.lua:2: unexpected key [1] in the options to probe.wait: options are named (known: timeout)"},
		{"method", "p.open{}:login('1234', {so = true, sopin = 'x'})", "t.lua:2: unknown option 'sopin' to probe.Handle:login (known: so, so_pin)"},
		{"string wanted", "p.opts{s = 1234}", "t.lua:2: bad option 's' to probe.opts (string expected, got number)"},
		{"integer wanted", "p.opts{i = 1.5}", "t.lua:2: bad option 'i' to probe.opts (integer expected, got a fractional or out of range number)"},
		{"number wanted", "p.opts{n = '1'}", "t.lua:2: bad option 'n' to probe.opts (number expected, got string)"},
		{"boolean wanted", "p.opts{b = 'yes'}", "t.lua:2: bad option 'b' to probe.opts (boolean expected, got string)"},
		{"duration string", "p.opts{d = 'soon'}", `t.lua:2: bad option 'd' to probe.opts (duration expected as seconds or a string like "1m30s", got "soon")`},
		{"duration negative", "p.opts{d = -1}", "t.lua:2: bad option 'd' to probe.opts (duration must be between 0 and 9223372036 seconds, got -1)"},
		{"duration type", "p.opts{d = true}", `t.lua:2: bad option 'd' to probe.opts (duration (seconds or a string like "1m30s") expected, got boolean)`},
		{"table wanted", "p.opts{t = 'x'}", "t.lua:2: bad option 't' to probe.opts (table expected, got string)"},
		{"function wanted", "p.opts{f = 'x'}", "t.lua:2: bad option 'f' to probe.opts (function expected, got string)"},
		{"userdata wanted", "p.opts{h = {}}", "t.lua:2: bad option 'h' to probe.opts (probe.Handle expected, got table)"},
		{"required", "p.opts{need = true}", "t.lua:2: missing option 'req' to probe.opts"},
		{"not a table", "p.opts('x')", "t.lua:2: bad argument #1 to 'opts' (table expected, got string)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, "local p = require('probe')\n"+tt.src, RunOptions{})
			assert.Equal(t, tt.want, scriptError(t, err).Error())
		})
	}
}
