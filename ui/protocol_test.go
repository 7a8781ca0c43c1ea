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
	assert.ErrorIs(t, context.Cause(ctx), ErrCancelled, "the whole run is cancelled")
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
