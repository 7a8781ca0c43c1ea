package transcript

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/ui"
)

func lines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), string(l))
		out = append(out, m)
	}
	return out
}

func TestRecorderFormat(t *testing.T) {
	r := NewRecorder(Header{Procedure: "change_pin", Module: "software token"})
	r.Call(runtime.CallEvent{Seq: 1, Module: "ui", Func: "secret", Args: []any{map[string]any{"id": "current_pin"}},
		Results: []any{runtime.Redacted}, Duration: time.Millisecond})
	r.Call(runtime.CallEvent{Seq: 2, Module: "token", Type: "token.Token", Func: "login", Self: "token.Token",
		Args: []any{runtime.Redacted}, Results: []any{nil, map[string]any{"code": "PIN_INCORRECT"}}})
	r.Call(runtime.CallEvent{Seq: 3, Module: "token", Type: "token.Token", Func: "certificates",
		Results: []any{"\x30\x82\xff\xfe"}})
	data, err := r.Finish(Footer{Outcome: "error", Code: "PIN_INCORRECT", Exit: 4, ExitClass: "token"})
	require.NoError(t, err)
	recs := lines(t, data)
	require.Len(t, recs, 5)

	tests := []struct {
		name string
		line int
		want map[string]any
	}{
		{"header", 0, map[string]any{"kind": "header", "format": float64(FormatVersion), "procedure": "change_pin", "module": "software token"}},
		{"prompt", 1, map[string]any{"kind": "call", "seq": float64(1), "name": "ui.secret",
			"prompt": map[string]any{"id": "current_pin", "kind": "secret", "answer": "<secret>"}, "duration_us": float64(1000)}},
		{"method", 2, map[string]any{"name": "token.Token:login", "args": []any{"<secret>"},
			"results": []any{nil, map[string]any{"code": "PIN_INCORRECT"}}}},
		{"binary kept for replay", 3, map[string]any{"results": []any{map[string]any{"$bytes": "MIL//g=="}}}},
		{"footer", 4, map[string]any{"kind": "footer", "outcome": "error", "code": "PIN_INCORRECT", "exit": float64(4), "calls": float64(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.want {
				assert.Equal(t, v, recs[tt.line][k], k)
			}
		})
	}
}

func TestSecretsCheck(t *testing.T) {
	s := NewSecrets()
	s.Add("Kx7mQ9pz", `the answer to secret prompt "new_pin"`)
	s.Add("12", "too short to search")
	s.Add(`a"b<c>1`, "a secret JSON escapes")
	s.Add("aaaa", `the answer to secret prompt "weak"`)
	s.Add("0123456789abcdef0123456789abcdef", `a hex-looking secret`)

	tests := []struct {
		name   string
		text   string // one line after the header
		leak   bool
		record string
	}{
		{"redacted", `{"kind":"call","name":"ui.secret","results":["<secret>"]}`, false, ""},
		{"said", `{"kind":"call","name":"ui.say","args":["your PIN is Kx7mQ9pz"]}`, true, "call ui.say"},
		{"escaped", `{"kind":"call","name":"ui.say","args":["x a\"b<c>1"]}`, true, "call ui.say"},
		{"in a key", `{"kind":"call","name":"x","args":[{"Kx7mQ9pz":1}]}`, true, "call x"},
		{"numbers are not searched", `{"kind":"call","name":"x","offset_us":1212}`, false, ""},
		{"certificates are kept", `{"kind":"call","name":"x","results":["-----BEGIN CERTIFICATE-----\nKx7mQ9pz\n"]}`, false, ""},
		{"in the footer", `{"kind":"footer","message":"bad Kx7mQ9pz"}`, true, "footer"},
		{"a digest holding a short PIN by chance", `{"kind":"header","scripts_digest":"12d04f19b2e1338758eaaaaf94f64ec710e1f104a67a202caaba13a00edf7a4f"}`, false, ""},
		{"a short PIN in text", `{"kind":"call","name":"ui.say","args":["pin aaaa"]}`, true, "call ui.say"},
		{"a hex secret said whole", `{"kind":"call","name":"ui.say","args":["0123456789abcdef0123456789abcdef"]}`, true, "call ui.say"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check([]byte(`{"kind":"header"}` + "\n" + tt.text + "\n"))
			if !tt.leak {
				assert.NoError(t, err)
				return
			}
			var le *LeakError
			require.ErrorAs(t, err, &le)
			assert.True(t, errors.Is(err, ErrSecretLeak))
			assert.Equal(t, 2, le.Line)
			assert.Equal(t, tt.record, le.Record)
			assert.NotContains(t, err.Error(), "Kx7mQ9pz", "the error names the problem, not the secret")
		})
	}
}

// stubFrontend answers every prompt with its answers, trying each through Validate.
type stubFrontend struct {
	ui.Frontend
	tries []string
}

func (f *stubFrontend) Ask(_ context.Context, p ui.Prompt) (string, error) {
	for _, v := range f.tries {
		if p.Validate == nil || p.Validate(v) == nil {
			return v, nil
		}
	}
	return "", ui.ErrNoAnswer
}

func TestFrontendCollectsRefusedSecretAnswers(t *testing.T) {
	s := NewSecrets()
	fe := s.Frontend(&stubFrontend{tries: []string{"first-refused", "second-ok"}})
	v, err := fe.Ask(context.Background(), ui.Prompt{ID: "new_pin", Kind: ui.Secret, Validate: func(v string) error {
		if v == "first-refused" {
			return errors.New("too weak")
		}
		return nil
	}})
	require.NoError(t, err)
	assert.Equal(t, "second-ok", v)
	_, err = fe.Ask(context.Background(), ui.Prompt{ID: "user_id", Kind: ui.Text})
	require.NoError(t, err)
	assert.Equal(t, 2, s.Len(), "both secret answers, not the text one")
	require.Error(t, s.Check([]byte(`{"kind":"call","args":["first-refused"]}`)))
}

func TestKeepBoundsTheDirectory(t *testing.T) {
	tests := []struct {
		name    string
		lim     Limits
		sizes   []int
		wantN   int
		newestK bool
	}{
		{"count", Limits{MaxFiles: 3, MaxBytes: 1 << 20}, []int{10, 10, 10, 10, 10}, 3, true},
		{"bytes", Limits{MaxFiles: 20, MaxBytes: 400}, []int{100, 100, 100, 100}, 2, true},
		{"newest kept even alone over the limit", Limits{MaxFiles: 20, MaxBytes: 50}, []int{10, 100}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			var last string
			for i, n := range tt.sizes {
				data := []byte(`{"kind":"header","procedure":"p"}` + "\n" + strings.Repeat("x", n) + "\n" + `{"kind":"footer","outcome":"ok"}` + "\n")
				p, err := Keep(dir, fmt.Sprintf("p%d", i), start.Add(time.Duration(i)*time.Second), data, tt.lim)
				require.NoError(t, err)
				last = filepath.Base(p)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, tt.wantN)
			sums, err := List(dir)
			require.NoError(t, err)
			require.NotEmpty(t, sums)
			assert.Equal(t, last, sums[0].Name, "newest first, and kept")
			assert.Equal(t, "ok", sums[0].Outcome)
		})
	}
}

func TestKeepSameStartDoesNotOverwrite(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	a, err := Keep(dir, "x", start, []byte("{}\n"), DefaultLimits)
	require.NoError(t, err)
	b, err := Keep(dir, "x", start, []byte("{}\n"), DefaultLimits)
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
}
