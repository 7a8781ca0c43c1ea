package ui

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ui/protocoltest"
)

// lines splits what the front-end wrote into its lines.
func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestJSONHelloFirstResultLast(t *testing.T) {
	out := &syncBuffer{}
	j := NewJSON(strings.NewReader(`{"id":"user_id","value":"qq"}`+"\n"), out)
	j.now = func() time.Time { return time.Time{} }
	ctx := j.Begin(context.Background(), RunInfo{Command: "enroll", Procedure: "enroll", Language: "kk", Tokenrun: "dev", APILevel: 1})
	j.Procedure("enroll", "1.0.0")
	require.NoError(t, j.SayMessage(ctx, Message{Level: Warn, Text: "Tries left: 2.", Key: "user_pin_tries_left", Args: map[string]any{"retries_left": 2}}))
	v, err := j.Ask(ctx, Prompt{ID: "user_id", Hints: &Hints{MinLength: 2, Pattern: "^[a-z]+$", Allowed: "a-z", Example: "qq",
		Rules: []Rule{{ID: "r", Text: "Lower case"}}}})
	require.NoError(t, err)
	assert.Equal(t, "qq", v)
	bar, err := j.Progress(ctx, "request_certificate", "Asking the CA")
	require.NoError(t, err)
	UpdateProgress(bar, Step{Fraction: -1, Attempt: 2, RetryIn: 1500 * time.Millisecond})
	bar.Done(true, "")
	require.NoError(t, j.End(RunResult{Outcome: OutcomeOK, Exit: 0, Result: map[string]any{"serial": "0a"}}))
	require.NoError(t, j.Say(ctx, Info, "after the result: dropped"))
	got := lines(out.String())
	want := []string{
		`{"type":"hello","protocol":2,"run_id":"` + j.RunID() + `","command":"enroll","procedure":"enroll","version":"1.0.0","language":"kk","tokenrun":"dev","api_level":1}`,
		`{"type":"say","level":"warn","text":"Tries left: 2.","key":"user_pin_tries_left","args":{"retries_left":2}}`,
		`{"type":"ask","id":"user_id","kind":"text","label":"user_id","secret":false,"hints":{"min_length":2,"pattern":"^[a-z]+$","allowed":"a-z","example":"qq","rules":[{"id":"r","text":"Lower case"}]}}`,
		`{"type":"progress","id":"request_certificate","label":"Asking the CA","fraction":null,"elapsed":0}`,
		`{"type":"progress","id":"request_certificate","label":"Asking the CA","fraction":null,"elapsed":0,"attempt":2,"retry_in":1.5}`,
		`{"type":"progress_done","id":"request_certificate","label":"Asking the CA","ok":true,"elapsed":0}`,
		`{"type":"result","outcome":"ok","exit":0,"result":{"serial":"0a"}}`,
	}
	assert.Equal(t, want, got)
	assert.Len(t, j.RunID(), 32)
	require.NoError(t, protocoltest.Session(out.String()))
}

// TestSchemaEveryLine validates every kind of line the front-end writes against
// docs/protocol.schema.json, and the schema against lines that break it.
func TestSchemaEveryLine(t *testing.T) {
	in := strings.Join([]string{
		`not json`, `{"id":"other","value":"x"}`, `{"id":"validity"}`,
		`{"id":"validity","value":"5y"}`, `{"id":"validity","value":"1y"}`,
		`{"id":"go","value":"maybe"}`, `{"id":"go","value":"yes"}`,
		`{"id":"pin","value":"1234","person":true}`,
		`{"id":"key_file","value":"/tmp/Key.pfx"}`,
		`{"id":"user_id","value":"x"}`, `{"id":"user_id","value":"qq"}`,
	}, "\n") + "\n"
	out := &syncBuffer{}
	j := NewJSON(strings.NewReader(in), out)
	ctx := j.Begin(context.Background(), RunInfo{Command: "run", Procedure: "t", Language: "ru", Tokenrun: "dev", APILevel: 1})
	require.NoError(t, j.Say(ctx, Info, ""))
	require.NoError(t, j.SayMessage(ctx, Message{Level: Error, Text: "x", Key: "k", Args: map[string]any{"n": 1, "s": "v"}}))
	for _, p := range []Prompt{
		{ID: "validity", Kind: Choice, Label: "Validity", Help: "h", Default: "1y", Choices: periods},
		{ID: "go", Kind: Confirm, Label: "Go?", Default: "no", HumanOnly: true},
		{ID: "pin", Kind: Secret, Label: "PIN", Optional: true, Hints: &Hints{MinLength: 4, MaxLength: 8}},
		{ID: "key_file", Kind: File, Label: "Key file"},
		{ID: "user_id", Label: "User ID", Hints: &Hints{Pattern: "^q+$", Example: "qq"}, Validate: func(v string) error {
			if v != "qq" {
				return &Invalid{Problems: []string{"user_id_invalid"}, Message: "like qq"}
			}
			return nil
		}},
	} {
		_, err := j.Ask(ctx, p)
		require.NoError(t, err, p.ID)
	}
	bar, err := j.Progress(ctx, "token_wait", "")
	require.NoError(t, err)
	bar.Update(0.25, "1s/4s")
	UpdateProgress(bar, Step{Fraction: 2, Attempt: 3, RetryIn: time.Second})
	bar.Done(false, "gone")
	require.NoError(t, j.Signed(ctx, SignedDocument{In: "a.txt", Out: "a.txt.p7s", Index: 1, Total: 2}))
	require.NoError(t, j.End(RunResult{Outcome: OutcomeCancelled, Code: "CANCELLED", Exit: 6, Message: "cancelled",
		Result: map[string]any{"signed": 1, "total": 2}}))
	require.NoError(t, protocoltest.Session(out.String()))
	for _, typ := range []string{"hello", "say", "ask", "error", "invalid", "progress", "progress_done", "signed", "result"} {
		assert.Contains(t, out.String(), `{"type":"`+typ+`"`)
	}

	for _, bad := range []string{
		`{"type":"ask","id":"a","kind":"secret","label":"x","secret":false}`,
		`{"type":"ask","id":"a","kind":"choice","label":"x","secret":false}`,
		`{"type":"ask","id":"a b","kind":"text","label":"x","secret":false}`,
		`{"type":"say","level":"debug","text":"x"}`,
		`{"type":"say","level":"info","text":"x","args":{}}`,
		`{"type":"progress","id":"p","label":"p","fraction":1.5,"elapsed":0}`,
		`{"type":"result","outcome":"ok","exit":3}`,
		`{"type":"result","outcome":"error","exit":4}`,
		`{"type":"result","outcome":"cancelled","code":"PIN_LOCKED","exit":6,"message":"x"}`,
		`{"type":"invalid","id":"a","message":"x"}`,
		`{"type":"hello","protocol":1,"run_id":"00","tokenrun":"dev"}`,
		`{"type":"nonsense"}`,
	} {
		assert.Error(t, protocoltest.HostLine(bad), bad)
	}
	for _, good := range []string{`{"id":"a","value":"v"}`, `{"id":"a","value":"v","person":true}`, `{"cancel":true}`,
		`{"id":"a","cancel":true}`, `{"type":"hello","protocol":2}`} {
		assert.NoError(t, protocoltest.DriverLine(good), good)
	}
	for _, bad := range []string{`{"id":"a"}`, `{"value":"v"}`, `{"id":"a","value":1}`, `{"cancel":"yes"}`} {
		assert.Error(t, protocoltest.DriverLine(bad), bad)
	}
}

func TestJSONCancelAnytime(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	out := &syncBuffer{}
	j := NewJSON(inR, out)
	ctx := j.Begin(context.Background(), RunInfo{Procedure: "enroll"})
	// Nothing is asked: the run is busy (a key being generated) when the driver gives up.
	_, err := io.WriteString(inW, `{"cancel":true}`+"\n")
	require.NoError(t, err)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a cancel line did not cancel the run")
	}
	assert.ErrorIs(t, context.Cause(ctx), ErrCancelled)
	_, err = j.Ask(ctx, Prompt{ID: "next"})
	assert.ErrorIs(t, err, ErrCancelled)
}

func TestJSONCancelDuringPrompt(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	j := NewJSON(inR, &syncBuffer{})
	ctx := j.Begin(context.Background(), RunInfo{Procedure: "enroll"})
	go func() { _, _ = io.WriteString(inW, `{"id":"user_id","cancel":true}`+"\n") }()
	_, err := j.Ask(ctx, Prompt{ID: "user_id"})
	require.ErrorIs(t, err, ErrCancelled)
	assert.Equal(t, "prompt 'user_id': cancelled by the driver", err.Error())
	assert.NoError(t, ctx.Err(), "the prompt's error ends the run, naming the prompt")
}

func TestJSONStaleCancelIsNoRunCancel(t *testing.T) {
	in := `{"id":"other","cancel":true}` + "\n" + `{"id":"user_id","value":"v"}` + "\n"
	j := NewJSON(strings.NewReader(in), &syncBuffer{})
	ctx := j.Begin(context.Background(), RunInfo{})
	// Ask first so that the prompt is pending when the stale cancel is read.
	v, err := j.Ask(ctx, Prompt{ID: "user_id"})
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	assert.NoError(t, ctx.Err())
}

func TestJSONDriverHelloIgnored(t *testing.T) {
	in := `{"type":"hello","protocol":2}` + "\n" + `{"id":"a","value":"v"}` + "\n"
	out := &syncBuffer{}
	v, err := NewJSON(strings.NewReader(in), out).Ask(context.Background(), Prompt{ID: "a"})
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	assert.NotContains(t, out.String(), `"error"`)
}

func TestJSONInvalidCodes(t *testing.T) {
	in := `{"id":"pw","value":"short"}` + "\n" + `{"id":"pw","value":"long enough"}` + "\n"
	out := &syncBuffer{}
	p := Prompt{ID: "pw", Kind: Secret, Validate: func(v string) error {
		if len(v) < 8 {
			return &Invalid{Code: "INVALID_INPUT", Problems: []string{"password_too_short"}, Message: "At least 8 characters."}
		}
		return nil
	}}
	_, err := NewJSON(strings.NewReader(in), out).Ask(context.Background(), p)
	require.NoError(t, err)
	assert.Contains(t, out.String(), `{"type":"invalid","id":"pw","message":"At least 8 characters.","code":"INVALID_INPUT","problems":["password_too_short"]}`)
}

func TestFileKindAndHintsCheck(t *testing.T) {
	assert.Equal(t, "file", File.String())
	assert.NoError(t, Prompt{ID: "key_file", Kind: File, Optional: true, Hints: &Hints{}}.Check())
	assert.EqualError(t, Prompt{ID: "c", Kind: Confirm, Hints: &Hints{}}.Check(), "prompt 'c': only text, file and secret prompts have hints")
	assert.Error(t, Prompt{ID: "t", Hints: &Hints{MinLength: 5, MaxLength: 2}}.Check())
	out := &syncBuffer{}
	_, err := NewJSON(strings.NewReader(""), out).Ask(context.Background(), Prompt{ID: "key_file", Kind: File, Label: "Key file"})
	require.ErrorIs(t, err, ErrNoAnswer)
	assert.Equal(t, `{"type":"ask","id":"key_file","kind":"file","label":"Key file","secret":false}`+"\n", out.String())
}

func TestFindThroughWrappers(t *testing.T) {
	j := NewJSON(strings.NewReader(""), io.Discard)
	w := NewWitness(j)
	lc, ok := Find[Lifecycle](w)
	require.True(t, ok)
	assert.Same(t, j, lc)
	_, ok = Find[Lifecycle](NewTerminal(strings.NewReader(""), io.Discard, TerminalOptions{}))
	assert.False(t, ok)
	// SayMessage falls back to Say on a front-end without keys.
	var b strings.Builder
	require.NoError(t, SayMessage(context.Background(), NewTerminal(strings.NewReader(""), &b, TerminalOptions{}), Message{Level: Info, Text: "hi", Key: "k"}))
	assert.Contains(t, b.String(), "hi")
	assert.False(t, errors.Is(nil, ErrCancelled))
}
