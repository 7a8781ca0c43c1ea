package runtime

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObserverSeesCalls(t *testing.T) {
	rec := &recorder{}
	_, err := runSrc(t, `
		local p = require("probe")
		p.add(1, 2)
		local h = p.open{label = "L"}
		h:label()
		p.call(function(x) return p.add(x, 1) end, 5)
		local ok, err = p.fail()
		pcall(function() p.add(1, "x") end)`, RunOptions{Observer: rec})
	require.NoError(t, err)
	ev := rec.events
	require.Len(t, ev, 7)

	assert.Equal(t, "probe.add", ev[0].Name())
	assert.Equal(t, uint64(1), ev[0].Seq)
	assert.Equal(t, []any{float64(1), float64(2)}, ev[0].Args)
	assert.Equal(t, []any{float64(3)}, ev[0].Results)

	assert.Equal(t, []any{"probe.Handle: L"}, ev[1].Results)
	assert.Equal(t, "probe.Handle:label", ev[2].Name())
	assert.Equal(t, "probe.Handle: L", ev[2].Self)
	assert.Empty(t, ev[2].Args)
	assert.Equal(t, []any{"L"}, ev[2].Results)

	// A callback's calls are nested: reported first (they end first), with
	// a later Seq and a greater Depth than the call that made them.
	assert.Equal(t, "probe.add", ev[3].Name())
	assert.Equal(t, 1, ev[3].Depth)
	assert.Equal(t, "probe.call", ev[4].Name())
	assert.Equal(t, 0, ev[4].Depth)
	assert.Less(t, ev[4].Seq, ev[3].Seq)
	assert.Equal(t, []any{"<function>", float64(5)}, ev[4].Args)

	assert.Equal(t, []any{nil, map[string]any{"code": "PIN_INCORRECT", "message": "wrong PIN", "retries_left": float64(2)}}, ev[5].Results)

	assert.Equal(t, "t.lua:8: bad argument #2 to add (number expected, got string)", ev[6].Err)
	assert.Empty(t, ev[6].Results)
}

func TestObserverRedactsSecrets(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		args    []any
		results []any
	}{
		{"positional", `p.login("alice", "12345678")`, []any{"alice", Redacted}, []any{true}},
		{"option field", `p.open{label = "L", pin = "12345678"}`, []any{map[string]any{"label": "L", "pin": Redacted}}, []any{"probe.Handle: L"}},
		{"method positional", `p.open{}:login("12345678")`, []any{Redacted}, []any{true}},
		{"method option field", `p.open{}:login("12345678", {so = true, so_pin = "12345678"})`,
			[]any{Redacted, map[string]any{"so": true, "so_pin": Redacted}}, []any{true}},
		{"nested field", `p.enroll{url = "u", auth = {password = "pw-123456"}, list = {{password = "x"}}}`,
			[]any{map[string]any{"url": "u", "auth": map[string]any{"password": Redacted}, "list": []any{map[string]any{"password": Redacted}}}}, []any{true}},
		// Redaction follows the declaration of the function called: echo
		// declares no secrets.
		{"undeclared", `p.echo({pin = "1234"})`, []any{map[string]any{"pin": "1234"}}, []any{map[string]any{"pin": "1234"}}},
		{"result", `p.secret("PIN?")`, []any{"PIN?"}, []any{Redacted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			_, err := runSrc(t, "local p = require('probe')\n"+tt.src, RunOptions{Observer: rec})
			require.NoError(t, err)
			last := rec.events[len(rec.events)-1]
			assert.Equal(t, tt.args, last.Args)
			if tt.results != nil {
				assert.Equal(t, tt.results, last.Results)
			}
		})
	}
}

func TestSecretsAreScrubbedFromErrors(t *testing.T) {
	for _, obs := range []Observer{nil, &recorder{}} {
		_, err := runSrc(t, "local p = require('probe')\np.login('alice', 'bad-PIN-4711')", RunOptions{Observer: obs})
		se := scriptError(t, err)
		assert.Equal(t, "t.lua:2: login of alice with PIN <secret> refused", se.Error())
		if rec, ok := obs.(*recorder); ok {
			require.Len(t, rec.events, 1)
			assert.Equal(t, "t.lua:2: login of alice with PIN <secret> refused", rec.events[0].Err)
			assert.Equal(t, []any{"alice", Redacted}, rec.events[0].Args)
		}
	}
}

func TestObserverSeesPanicsAsErrors(t *testing.T) {
	rec := &recorder{}
	_, err := runSrc(t, "require('probe').crash()", RunOptions{Observer: rec})
	require.Error(t, err)
	require.Len(t, rec.events, 1)
	assert.True(t, strings.HasPrefix(rec.events[0].Err, "internal error in probe.crash: runtime error"))
}
