package token_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bt "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/runtime"
	tk "github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

// run runs src with the token module over p and records every call.
func run(t *testing.T, p tk.Provider, src string) ([]any, []runtime.CallEvent, error) {
	t.Helper()
	b := bt.New(bt.Config{Provider: p, Poll: time.Millisecond})
	t.Cleanup(func() { _ = b.Close() })
	reg := runtime.NewRegistry()
	require.NoError(t, reg.Add(b.Module()))
	s, err := runtime.Compile("t.lua", []byte(src))
	require.NoError(t, err)
	var calls []runtime.CallEvent
	res, err := runtime.Run(context.Background(), s, runtime.RunOptions{
		Registry: reg,
		Timeout:  30 * time.Second,
		Observer: runtime.ObserverFunc(func(e runtime.CallEvent) { calls = append(calls, e) }),
	})
	if err != nil {
		return nil, calls, err
	}
	return res.Values, calls, nil
}

func softProvider(t *testing.T, dirs int) tk.Provider {
	t.Helper()
	var ds []string
	for range max(dirs, 1) {
		ds = append(ds, t.TempDir())
	}
	p, err := soft.Open(soft.Options{}, ds...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	if dirs == 0 {
		// Removing a software token's directory unplugs it.
		require.NoError(t, os.RemoveAll(ds[0]))
	}
	return p
}

func TestScripts(t *testing.T) {
	tests := []struct {
		name   string
		tokens int
		src    string
		want   []any
		err    string
	}{
		{
			name: "wait and info", tokens: 1,
			src: `local tok = assert(require("token").wait{timeout = 1})
			      local i = tok:info()
			      return i.label, i.model, i.flags.user_pin_locked, i.flags.user_pin_retries_left, i.uri:sub(1, 20)`,
			want: []any{"KAZTOKEN", "software token", false, float64(10), "pkcs11:token=KAZTOKE"},
		},
		{
			name: "no token", tokens: 0,
			src: `local tok, err = require("token").wait{timeout = 0.05}
			      return tok == nil, err.code, err.message:find("plug in the token") ~= nil`,
			want: []any{true, "TOKEN_NOT_PRESENT", true},
		},
		{
			name: "several tokens refused and named", tokens: 2,
			src: `local tok, err = require("token").wait{timeout = 5}
			      return tok == nil, err.code, #err.tokens`,
			want: []any{true, "SEVERAL_TOKENS", float64(2)},
		},
		{
			name: "wrong PIN gives code and tries left", tokens: 1,
			src: `local tok = require("token").wait{}
			      local ok, err = tok:login("00000000")
			      return ok == nil, err.code, err.retries_left`,
			want: []any{true, "PIN_INCORRECT", float64(9)},
		},
		{
			name: "key pair, certificate list, hex ids", tokens: 1,
			src: `local tok = require("token").wait{}
			      assert(tok:login("12345678"))
			      local key = assert(tok:generate_key{type = "ec", label = "profile", id = "0a0B"})
			      local keys = tok:keys()
			      return key.id, key.label, key.type, key.curve, key.public_key:sub(1, 26), #keys, keys[1].id, #tok:certificates()`,
			want: []any{"0a0b", "profile", "ec", "P-256", "-----BEGIN PUBLIC KEY-----", float64(1), "0a0b", float64(0)},
		},
		{
			name: "duplicate id is an expected failure", tokens: 1,
			src: `local tok = require("token").wait{}
			      assert(tok:login("12345678"))
			      assert(tok:generate_key{type = "ec", id = "01"})
			      local key, err = tok:generate_key{type = "ec", id = "01"}
			      return key == nil, err.code`,
			want: []any{true, "ALREADY_EXISTS"},
		},
		{
			name: "garbage certificate refused", tokens: 1,
			src: `local tok = require("token").wait{}
			      assert(tok:login("12345678"))
			      local c, err = tok:store_certificate("garbage", {id = "01"})
			      return c == nil, err.code`,
			want: []any{true, "INVALID_INPUT"},
		},
		{
			name: "unblock cycle", tokens: 1,
			src: `local tok = require("token").wait{}
			      for _ = 1, 10 do tok:login("00000000") end
			      local _, err = tok:login("12345678")
			      assert(err.code == "PIN_LOCKED", err.code)
			      assert(tok:info().flags.user_pin_locked)
			      assert(tok:login("87654321", {so = true}))
			      assert(tok:init_pin("24681357"))
			      assert(tok:logout())
			      return tok:login("24681357")`,
			want: []any{true},
		},
		{
			name: "format keeps label by default and wipes the user PIN", tokens: 1,
			src: `local tok = require("token").wait{}
			      assert(tok:format{so_pin = "87654321"})
			      local _, err = tok:login("12345678")
			      return tok:info().label, err.code`,
			want: []any{"KAZTOKEN", "PIN_NOT_INITIALIZED"},
		},
		{
			name: "format with user_pin sets it in the same step, nobody logged in", tokens: 1,
			src: `local tok = require("token").wait{}
			      assert(tok:login("12345678"))
			      assert(tok:generate_key{type = "ec", id = "01"})
			      assert(tok:format{so_pin = "87654321", label = "NEW", user_pin = "24681357"})
			      local keys_before_login = #tok:keys()
			      local _, err = tok:login("12345678")
			      assert(tok:login("24681357"))
			      return tok:info().label, tok:info().flags.user_pin_retries_left, keys_before_login, err.code, #tok:keys()`,
			want: []any{"NEW", float64(10), float64(0), "PIN_INCORRECT", float64(0)},
		},
		{
			name: "format with a user_pin the token refuses changes nothing", tokens: 1,
			src: `local tok = require("token").wait{}
			      local ok, err = tok:format{so_pin = "87654321", label = "NEW", user_pin = "1"}
			      return ok == nil, err.code, tok:info().label, tok:info().flags.so_pin_retries_left`,
			want: []any{true, "PIN_INVALID", "KAZTOKEN", float64(10)},
		},
		{
			name: "misspelt option raises", tokens: 1,
			src: `require("token").wait{timout = 1}`,
			err: "t.lua:1: unknown option 'timout'",
		},
		{
			name: "bad key type raises", tokens: 1,
			src: `local tok = require("token").wait{}
			      tok:generate_key{type = "gost"}`,
			err: `unknown key type "gost"`,
		},
		{
			name: "bad hex id raises", tokens: 1,
			src: `local tok = require("token").wait{}
			      tok:generate_key{type = "ec", id = "zz"}`,
			err: "id must be hex",
		},
		{
			name: "key fields are read-only", tokens: 1,
			src: `local tok = require("token").wait{}
			      assert(tok:login("12345678"))
			      local key = tok:generate_key{type = "ec"}
			      key.id = "00"`,
			err: "token.Key.id is read-only",
		},
		{
			name: "method on wrong receiver", tokens: 1,
			src: `local tok = require("token").wait{}
			      tok.login("x", "y")`,
			err: "token.Token expected, got string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := run(t, softProvider(t, tt.tokens), tt.src)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestSecretsNeverObserved: PINs passed to the token module never reach an observer or an
// error, whatever the call.
func TestSecretsNeverObserved(t *testing.T) {
	secrets := []string{"12345678", "87654321", "24681357", "55554444"}
	src := `local tok = require("token").wait{}
	        tok:login("55554444")
	        assert(tok:login("12345678"))
	        assert(tok:set_pin("12345678", "24681357"))
	        tok:logout()
	        assert(tok:login("87654321", {so = true}))
	        assert(tok:init_pin("12345678"))
	        assert(tok:format{so_pin = "87654321", label = "NEW"})
	        assert(tok:format{so_pin = "87654321", label = "NEW", user_pin = "55554444"})
	        error("the end")`
	_, calls, err := run(t, softProvider(t, 1), src)
	require.Error(t, err)
	require.NotEmpty(t, calls)
	var all strings.Builder
	all.WriteString(err.Error())
	for _, c := range calls {
		all.WriteString(c.Name())
		for _, a := range c.Args {
			all.WriteString(" " + toString(a))
		}
		for _, r := range c.Results {
			all.WriteString(" " + toString(r))
		}
		all.WriteString(c.Err + "\n")
	}
	for _, s := range secrets {
		assert.NotContains(t, all.String(), s)
	}
	assert.Contains(t, all.String(), runtime.Redacted)
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		var b strings.Builder
		for k, x := range v {
			b.WriteString(k + "=" + toString(x) + " ")
		}
		return b.String()
	case []any:
		var b strings.Builder
		for _, x := range v {
			b.WriteString(toString(x) + " ")
		}
		return b.String()
	}
	return ""
}

// TestDamagedToken: a right PIN on a damaged software token is TOKEN_DAMAGED to a script,
// with the directory named and no try counted.
func TestDamagedToken(t *testing.T) {
	dir := t.TempDir()
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	path := filepath.Join(dir, "token.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var st map[string]any
	require.NoError(t, json.Unmarshal(data, &st))
	st["user_pin"].(map[string]any)["secret"].(map[string]any)["iterations"] = 1 << 31
	data, err = json.Marshal(st)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))

	got, _, err := run(t, p, `local tok = require("token").wait{}
	    local _, err = tok:login("12345678")
	    return err.code, err.retries_left == nil, err.message:find("is damaged", 1, true) ~= nil, tok:info().flags.user_pin_retries_left`)
	require.NoError(t, err)
	assert.Equal(t, []any{"TOKEN_DAMAGED", true, true, float64(10)}, got)
}
