package ui_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bui "github.com/tokenrun/tokenrun/bindings/ui"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/ui"
)

func run(t *testing.T, fe ui.Frontend, src string) ([]any, []runtime.CallEvent, error) {
	t.Helper()
	reg := runtime.NewRegistry()
	require.NoError(t, reg.Add(bui.Module(fe)))
	s, err := runtime.Compile("t.lua", []byte(src))
	require.NoError(t, err)
	var calls []runtime.CallEvent
	res, err := runtime.Run(context.Background(), s, runtime.RunOptions{
		Registry: reg, Timeout: 10 * time.Second,
		Observer: runtime.ObserverFunc(func(e runtime.CallEvent) { calls = append(calls, e) }),
	})
	if err != nil {
		return nil, calls, err
	}
	return res.Values, calls, nil
}

func TestAnswers(t *testing.T) {
	answers := map[string]string{
		"user_id": "qq111111_qwertyui", "validity": "3y", "otp_pin": "AB1CD0EFG2H", "go": "yes", "bad_id": "x",
	}
	tests := []struct {
		name, src string
		confirm   bool
		want      []any
		err       string
		cause     error
	}{
		{name: "ask", src: `return require("ui").ask{id = "user_id", label = "User ID"}`, want: []any{"qq111111_qwertyui"}},
		{name: "unanswered takes the default", src: `return require("ui").ask{id = "nope", default = "d"}`, want: []any{"d"}},
		{name: "unanswered without default names the id", src: `return require("ui").ask{id = "nope"}`, err: "no answer for prompt 'nope'", cause: ui.ErrNoAnswer},
		{name: "choose", src: `return require("ui").choose{id = "validity", choices = {"1y", {value = "3y", label = "3 years"}}}`, want: []any{"3y"}},
		{name: "secret", src: `return #require("ui").secret{id = "otp_pin"}`, want: []any{float64(11)}},
		{name: "validate ok", src: `return require("ui").ask{id = "user_id", validate = function(v) return v:find("_") ~= nil end}`, want: []any{"qq111111_qwertyui"}},
		{name: "validate refuses with the script's message", src: `return require("ui").ask{id = "bad_id", validate = function() return nil, "must contain an underscore" end}`,
			err: "must contain an underscore"},
		{name: "confirm needs --yes", src: `return require("ui").confirm{id = "go"}`, err: "--yes"},
		{name: "confirm with --yes", src: `return require("ui").confirm{id = "go"}`, confirm: true, want: []any{true}},
		{name: "human only never from a file", src: `return require("ui").confirm{id = "go", human_only = true}`, confirm: true, err: "go"},
		{name: "id required", src: `require("ui").ask{label = "x"}`, err: "missing option 'id'"},
		{name: "progress", src: `local b = require("ui").progress{id = "p", label = "working"}; b:update(0.5, "half"); b:done(true); return 1`, want: []any{float64(1)}},
		{name: "not interactive", src: `return require("ui").interactive()`, want: []any{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			fe := ui.NewAnswers(answers, ui.AnswersOptions{Out: &out, AllowConfirm: tt.confirm})
			got, _, err := run(t, fe, tt.src)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				if tt.cause != nil {
					assert.ErrorIs(t, err, tt.cause)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestJSONValidationRetry: a driver's invalid answer is refused with the script's message and
// asked again; the secret itself never appears in the output or the observed calls.
func TestJSONValidationRetry(t *testing.T) {
	in := strings.NewReader(`{"id":"otp_pin","value":"short7SECRET"}` + "\n" + `{"id":"otp_pin","value":"AB1CD0EFG2H"}` + "\n")
	var out bytes.Buffer
	src := `return require("ui").secret{id = "otp_pin", label = "OTP PIN",
	          validate = function(v) if #v == 11 then return true end return nil, "must be 11 characters" end}`
	got, calls, err := run(t, ui.NewJSON(in, &out), src)
	require.NoError(t, err)
	assert.Equal(t, []any{"AB1CD0EFG2H"}, got)
	assert.Contains(t, out.String(), "must be 11 characters")
	assert.NotContains(t, out.String(), "short7SECRET")
	assert.NotContains(t, out.String(), "AB1CD0EFG2H")
	require.Len(t, calls, 1)
	assert.Equal(t, []any{runtime.Redacted}, calls[0].Results, "a secret answer is redacted for observers")
}

func TestCancelledDriver(t *testing.T) {
	in := strings.NewReader(`{"id":"user_id","cancel":true}` + "\n")
	_, _, err := run(t, ui.NewJSON(in, &bytes.Buffer{}), `return require("ui").ask{id = "user_id"}`)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ui.ErrCancelled), "%v", err)
}

func TestProtocolOptions(t *testing.T) {
	in := strings.Join([]string{
		`{"id":"key_file","value":"Key.pfx"}`,
		`{"id":"new_pin","value":"short"}`,
		`{"id":"new_pin","value":"long enough"}`,
	}, "\n") + "\n"
	var out bytes.Buffer
	fe := ui.NewJSON(strings.NewReader(in), &out)
	_, _, err := run(t, fe, `
local ui = require("ui")
ui.say("Tries left: 2.", { key = "user_pin_tries_left", args = { retries_left = 2 } })
local f = ui.ask { id = "key_file", kind = "file", label = "Key file" }
ui.secret { id = "new_pin", hints = { min_length = 8, max_length = 16, allowed = "A-Za-z0-9",
  rules = { { id = "password_too_short", text = "At least 8." } } },
  validate = function(v)
    if #v < 8 then return nil, { code = "INVALID_INPUT", message = "At least 8.", problems = { "password_too_short" } } end
    return true
  end }
local bar = ui.progress { id = "ca", label = "CA" }
bar:update { attempt = 2, retry_in = 3 }
bar:done(true)
return f`)
	require.NoError(t, err)
	got := out.String()
	assert.Contains(t, got, `"key":"user_pin_tries_left","args":{"retries_left":2}`)
	assert.Contains(t, got, `{"type":"ask","id":"key_file","kind":"file","label":"Key file","secret":false}`)
	assert.Contains(t, got, `"hints":{"min_length":8,"max_length":16,"allowed":"A-Za-z0-9","rules":[{"id":"password_too_short","text":"At least 8."}]}`)
	assert.Contains(t, got, `{"type":"invalid","id":"new_pin","message":"At least 8.","code":"INVALID_INPUT","problems":["password_too_short"]}`)
	assert.Contains(t, got, `"attempt":2,"retry_in":3}`)

	for _, bad := range []string{
		`require("ui").ask { id = "a", kind = "dir" }`,
		`require("ui").confirm { id = "a", hints = {} }`,
		`require("ui").ask { id = "a", hints = { min = 1 } }`,
		`require("ui").ask { id = "a", hints = { rules = { { id = "x" } } } }`,
		`require("ui").say("x", { keys = "k" })`,
	} {
		_, _, err := run(t, ui.NewJSON(strings.NewReader(""), &bytes.Buffer{}), bad)
		assert.Error(t, err, bad)
	}
}
