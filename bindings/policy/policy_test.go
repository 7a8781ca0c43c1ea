package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bp "github.com/tokenrun/tokenrun/bindings/policy"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
)

func TestPolicy(t *testing.T) {
	r, err := region.Load(scripts.FS, "default")
	require.NoError(t, err)
	cat, err := r.Catalog("en")
	require.NoError(t, err)
	tests := []struct {
		name, src string
		want      []any
		code      string
		msg       string
	}{
		{name: "user id ok", src: `return policy.user_id("qq111111_qwertyui")`, want: []any{true}},
		{name: "user id shows the example", src: `return policy.user_id("QQ111111")`, code: "INVALID_INPUT", msg: "qq111111_qwertyui"},
		{name: "otp pin upper-cased", src: `return policy.otp_pin(" ab1cd0efg2h ")`, want: []any{"AB1CD0EFG2H"}},
		{name: "otp pin wrong length", src: `return policy.otp_pin("AB1")`, code: "INVALID_INPUT", msg: "11"},
		{name: "confusable positions", src: `local p = policy.confusable("AB1CD0EFG2H"); return #p, p[1], p[2]`, want: []any{float64(2), float64(3), float64(6)}},
		{name: "password ok", src: `return policy.password("Kz7mWq9x", "Kz7mWq9x")`, want: []any{true}},
		{name: "password run refused without echoing it", src: `return policy.password("xx123yyzz", "xx123yyzz")`, code: "INVALID_INPUT"},
		{name: "password mismatch", src: `return policy.password("Kz7mWq9x", "Kz7mWq9y")`, code: "INVALID_INPUT"},
		{name: "text", src: `return policy.text("password_too_short", {min = 8})`, want: []any{region.Format(cat["password_too_short"], map[string]any{"min": 8})}},
		{name: "password hints", src: `local h = policy.hints("password"); return h.min_length, h.max_length, h.allowed, #h.rules, h.rules[1].id, h.rules[4].id`,
			want: []any{float64(8), float64(16), "A-Za-z0-9", float64(4), "password_too_short", "password_sequence"}},
		{name: "otp pin hints", src: `local h = policy.hints("otp_pin"); return h.min_length, h.max_length, h.allowed`, want: []any{float64(11), float64(11), nil}},
		{name: "user id hints", src: `local h = policy.hints("user_id"); return h.example`, want: []any{"qq111111_qwertyui"}},
		{name: "no hints for other inputs", src: `return policy.hints("so_pin")`, msg: "no hints for so_pin"},
		{name: "unknown text is a script bug", src: `return policy.text("no_such_key")`, msg: "no message no_such_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := runtime.NewRegistry()
			require.NoError(t, reg.Add(bp.Module(r, cat)))
			s, err := runtime.Compile("t.lua", []byte(`local policy = require("policy")`+"\n"+tt.src))
			require.NoError(t, err)
			var calls []runtime.CallEvent
			res, err := runtime.Run(t.Context(), s, runtime.RunOptions{Registry: reg, Timeout: 5 * time.Second,
				Observer: runtime.ObserverFunc(func(e runtime.CallEvent) { calls = append(calls, e) })})
			if tt.code != "" || tt.msg != "" {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), "123yy", "a password is never echoed")
				if tt.code != "" {
					var se *runtime.ScriptError
					require.ErrorAs(t, err, &se)
					assert.Equal(t, tt.code, se.Code)
				}
				assert.Contains(t, err.Error(), tt.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.Values)
			for _, c := range calls {
				for _, a := range c.Args {
					assert.NotEqual(t, "Kz7mWq9x", a, "secrets are redacted for observers")
				}
			}
		})
	}
}
