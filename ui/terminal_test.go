package ui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the spinner goroutine and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestTerminal is a terminal over a pipe-like reader, with the spinner ticker off so
// output is deterministic.
func newTestTerminal(in io.Reader, opts TerminalOptions) (*Terminal, *syncBuffer) {
	out := &syncBuffer{}
	t := NewTerminal(in, out, opts)
	t.tick = 0
	return t, out
}

func TestTerminalAsk(t *testing.T) {
	numeric := []Option{{Value: "3", Label: "3 years"}, {Value: "1", Label: "1 year"}}
	tests := []struct {
		name  string
		p     Prompt
		input string
		want  string
		out   string
	}{
		{"text", Prompt{ID: "user_id", Label: "User ID"}, "qq111111_qwertyui\n", "qq111111_qwertyui",
			"User ID: \n"},
		{"label falls back to id", Prompt{ID: "user_id"}, "x\n", "x", "user_id: \n"},
		{"text default", Prompt{ID: "user_id", Label: "User ID", Default: "qq1"}, "\n", "qq1",
			"User ID [qq1]: \n"},
		{"help first", Prompt{ID: "user_id", Label: "User ID", Help: "As printed on the acceptance act."}, "u\n", "u",
			"As printed on the acceptance act.\nUser ID: \n"},
		{"crlf", Prompt{ID: "a", Label: "A"}, "abc\r\n", "abc", "A: \n"},
		{"last line without newline", Prompt{ID: "a", Label: "A"}, "abc", "abc", "A: \n"},
		{"secret over a pipe", Prompt{ID: "otp_pin", Kind: Secret, Label: "PIN", Validate: validPIN}, "A1B2C3D4E5F\n", "A1B2C3D4E5F",
			"PIN: \n"},
		{"re-ask on invalid", Prompt{ID: "otp_pin", Kind: Secret, Label: "PIN", Validate: validPIN}, "a1b2\nA1B2C3D4E5F\n", "A1B2C3D4E5F",
			"PIN: \nNot accepted: the PIN is 11 upper-case letters or digits\nPIN: \n"},
		{"choice by number", Prompt{ID: "period", Kind: Choice, Label: "Certificate period", Choices: periods, Default: "1y"}, "2\n", "3y",
			"Certificate period:\n  1) 1 year\n  2) 3 years\nEnter 1-2 [1]: \n"},
		{"choice by value", Prompt{ID: "period", Kind: Choice, Label: "Period", Choices: periods}, "3y\n", "3y",
			"Period:\n  1) 1 year\n  2) 3 years\nEnter 1-2: \n"},
		{"choice default", Prompt{ID: "period", Kind: Choice, Label: "Period", Choices: periods, Default: "3y"}, "\n", "3y",
			"Period:\n  1) 1 year\n  2) 3 years\nEnter 1-2 [2]: \n"},
		{"choice re-ask shows only the line", Prompt{ID: "period", Kind: Choice, Label: "Period", Choices: periods}, "7\n1\n", "1y",
			"Period:\n  1) 1 year\n  2) 3 years\nEnter 1-2: \nNot accepted: \"7\" is not one of the options\nEnter 1-2: \n"},
		{"choice keyed by numeric values", Prompt{ID: "period", Kind: Choice, Label: "Period", Choices: numeric, Default: "1"}, "3\n", "3",
			"Period:\n  3) 3 years\n  1) 1 year\nEnter 3, 1 [1]: \n"},
		{"confirm yes", Prompt{ID: "go", Kind: Confirm, Label: "Format the token?"}, "y\n", "yes",
			"Format the token? [y/n]: \n"},
		{"confirm russian", Prompt{ID: "go", Kind: Confirm, Label: "Go?", Default: "no"}, "да\n", "yes", "Go? [y/N]: \n"},
		{"confirm kazakh", Prompt{ID: "go", Kind: Confirm, Label: "Go?", Default: "yes"}, "жоқ\n", "no", "Go? [Y/n]: \n"},
		{"confirm default", Prompt{ID: "go", Kind: Confirm, Label: "Go?", Default: "yes"}, "\n", "yes", "Go? [Y/n]: \n"},
		{"confirm re-ask", Prompt{ID: "go", Kind: Confirm, Label: "Go?"}, "maybe\nn\n", "no",
			"Go? [y/n]: \nNot accepted: answer yes or no\nGo? [y/n]: \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term, out := newTestTerminal(strings.NewReader(tt.input), TerminalOptions{})
			got, err := term.Ask(context.Background(), tt.p)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.out, out.String())
		})
	}
}

func TestTerminalAskSequence(t *testing.T) {
	// One reader serves consecutive prompts, line by line, as `printf ... |` would.
	term, _ := newTestTerminal(strings.NewReader("qq1\n\n2\ny\n"), TerminalOptions{})
	ctx := context.Background()
	var got []string
	for _, p := range []Prompt{
		{ID: "user_id"},
		{ID: "label", Default: "MyToken"},
		{ID: "period", Kind: Choice, Choices: periods},
		{ID: "go", Kind: Confirm},
	} {
		v, err := term.Ask(ctx, p)
		require.NoError(t, err, p.ID)
		got = append(got, v)
	}
	assert.Equal(t, []string{"qq1", "MyToken", "3y", "yes"}, got)
}

func TestTerminalAskErrors(t *testing.T) {
	pin := Prompt{ID: "otp_pin", Kind: Secret, Label: "PIN", Validate: validPIN}
	tests := []struct {
		name     string
		p        Prompt
		input    string
		opts     TerminalOptions
		want     string
		sentinel error
	}{
		{"input closed", Prompt{ID: "user_id"}, "", TerminalOptions{},
			"no answer for prompt 'user_id': input closed", ErrNoAnswer},
		{"input closed after invalid", pin, "bad\n", TerminalOptions{},
			"no answer for prompt 'otp_pin': input closed", ErrNoAnswer},
		{"end of input from a person cancels", Prompt{ID: "user_id"}, "", TerminalOptions{Interactive: true},
			"prompt 'user_id': cancelled by end of input", ErrCancelled},
		{"pipe gives up after repeated invalid answers", pin, "a\nb\nc\nA1B2C3D4E5F\n", TerminalOptions{},
			"no answer for prompt 'otp_pin': 3 invalid answers, the last: the PIN is 11 upper-case letters or digits", ErrNoAnswer},
		{"human only over a pipe", Prompt{ID: "last_try", Kind: Secret, HumanOnly: true}, "x\n", TerminalOptions{},
			"prompt 'last_try' needs a person at a terminal, and the input is not a terminal", ErrNoAnswer},
		{"bad prompt", Prompt{ID: "x", Kind: Choice}, "1\n", TerminalOptions{},
			"prompt 'x': a choice prompt needs at least one choice", nil},
		{"aborted validation", Prompt{ID: "user_id", Validate: func(string) error { return Abort(errors.New("lua: boom")) }}, "x\n", TerminalOptions{},
			"prompt 'user_id': validate: lua: boom", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term, _ := newTestTerminal(strings.NewReader(tt.input), tt.opts)
			_, err := term.Ask(context.Background(), tt.p)
			require.EqualError(t, err, tt.want)
			if tt.sentinel != nil {
				assert.ErrorIs(t, err, tt.sentinel)
			}
		})
	}
}

func TestTerminalInteractiveRetriesWithoutLimit(t *testing.T) {
	pin := Prompt{ID: "otp_pin", Kind: Secret, Label: "PIN", Validate: validPIN}
	term, out := newTestTerminal(strings.NewReader("a\nb\nc\nd\nA1B2C3D4E5F\n"), TerminalOptions{Interactive: true})
	assert.True(t, term.Interactive())
	got, err := term.Ask(context.Background(), pin)
	require.NoError(t, err)
	assert.Equal(t, "A1B2C3D4E5F", got)
	assert.Equal(t, 4, strings.Count(out.String(), "Not accepted"))

	// A person may answer a HumanOnly prompt.
	term, _ = newTestTerminal(strings.NewReader("x\n"), TerminalOptions{Interactive: true})
	got, err = term.Ask(context.Background(), Prompt{ID: "last_try", HumanOnly: true})
	require.NoError(t, err)
	assert.Equal(t, "x", got)
}

func TestTerminalNotInteractiveOverPipe(t *testing.T) {
	term, _ := newTestTerminal(strings.NewReader(""), TerminalOptions{})
	assert.False(t, term.Interactive())
}

func TestTerminalLongLine(t *testing.T) {
	in := strings.Repeat("x", maxLine+10) + "\nok\n"
	term, out := newTestTerminal(strings.NewReader(in), TerminalOptions{})
	got, err := term.Ask(context.Background(), Prompt{ID: "a", Label: "A"})
	require.NoError(t, err)
	assert.Equal(t, "ok", got, "the rest of the long line is skipped, not taken as the next answer")
	assert.Equal(t, "A: \nNot accepted: the answer is too long\nA: \n", out.String())
}

func TestTerminalContextCancel(t *testing.T) {
	// A pipe whose writer never writes: cancellation must still end the prompt.
	pr, pw := io.Pipe()
	defer pw.Close()
	term, _ := newTestTerminal(pr, TerminalOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := term.Ask(ctx, Prompt{ID: "user_id"})
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
		assert.EqualError(t, err, "prompt 'user_id': context canceled")
	case <-time.After(5 * time.Second):
		t.Fatal("Ask did not return after cancellation")
	}

	// The read left running is handed to the next prompt, so the line is not lost.
	go func() { _, _ = pw.Write([]byte("late\n")) }()
	got, err := term.Ask(context.Background(), Prompt{ID: "user_id"})
	require.NoError(t, err)
	assert.Equal(t, "late", got)
}

func TestTerminalContextCause(t *testing.T) {
	term, _ := newTestTerminal(strings.NewReader("never read\n"), TerminalOptions{})
	cause := errors.New("interrupted")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	_, err := term.Ask(ctx, Prompt{ID: "user_id"})
	require.ErrorIs(t, err, cause)
	// Nothing was read: the line is still there for a later prompt.
	got, err := term.Ask(context.Background(), Prompt{ID: "user_id"})
	require.NoError(t, err)
	assert.Equal(t, "never read", got)
}

func TestTerminalSay(t *testing.T) {
	term, out := newTestTerminal(strings.NewReader(""), TerminalOptions{})
	ctx := context.Background()
	require.NoError(t, term.Say(ctx, Info, "Plug in the token."))
	require.NoError(t, term.Say(ctx, Warn, "The token holds a profile."))
	require.NoError(t, term.Say(ctx, Error, "Two tokens are connected."))
	assert.EqualError(t, term.Say(ctx, Level(5), "x"), "unknown message level 5")
	assert.Equal(t, "Plug in the token.\nWarning: The token holds a profile.\nError: Two tokens are connected.\n", out.String())
}

func TestTerminalSayWriteError(t *testing.T) {
	term := NewTerminal(strings.NewReader(""), failWriter{}, TerminalOptions{})
	err := term.Say(context.Background(), Info, "x")
	assert.EqualError(t, err, "say: disk full")
	_, err = term.Ask(context.Background(), Prompt{ID: "a"})
	assert.EqualError(t, err, "prompt 'a': disk full")
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTerminalProgressPlain(t *testing.T) {
	term, out := newTestTerminal(strings.NewReader(""), TerminalOptions{})
	p, err := term.Progress(context.Background(), "generate", "Generating the profile")
	require.NoError(t, err)
	p.Update(-1, "")        // nothing new to say
	p.Update(0.01, "")      // 0%
	p.Update(0.05, "")      // still 0%: thinned
	p.Update(0.42, "")      // 40%
	p.Update(0.42, "")      // same
	p.Update(0.45, "at CA") // new note
	p.Update(-1, "waiting")
	p.Done(true, "certificate stored")
	p.Done(false, "ignored")
	p.Update(1, "ignored")
	assert.Equal(t, "Generating the profile...\n"+
		"Generating the profile: 0%\n"+
		"Generating the profile: 40%\n"+
		"Generating the profile: 40% at CA\n"+
		"Generating the profile: waiting\n"+
		"Generating the profile: done (certificate stored)\n", out.String())

	out2 := &syncBuffer{}
	p, err = NewTerminal(strings.NewReader(""), out2, TerminalOptions{}).Progress(context.Background(), "fmt", "")
	require.NoError(t, err)
	p.Done(false, "")
	assert.Equal(t, "fmt...\nfmt: failed\n", out2.String(), "the id stands in for an empty label")
}

func TestTerminalProgressRedraw(t *testing.T) {
	term, out := newTestTerminal(strings.NewReader("qq1\n"), TerminalOptions{Redraw: true})
	ctx := context.Background()
	p, err := term.Progress(ctx, "generate", "Generating")
	require.NoError(t, err)
	p.Update(0.5, "")
	p.Update(0.5, "at CA")
	p.Update(1, "")
	require.NoError(t, term.Say(ctx, Warn, "slow network"))
	_, err = term.Ask(ctx, Prompt{ID: "user_id", Label: "User ID"})
	require.NoError(t, err)
	p.Done(true, "")
	blank := "\r" + strings.Repeat(" ", len("| Generating 100%")) + "\r"
	assert.Equal(t, ""+
		"\r| Generating"+
		"\r| Generating  50%"+
		"\r| Generating  50% - at CA"+
		"\r| Generating 100%"+strings.Repeat(" ", len(" - at CA"))+ // padded over the longer line before
		blank+"Warning: slow network\n"+ // cleared for the message...
		"\r| Generating 100%"+ // ...and redrawn
		blank+"User ID: \n"+ // cleared for the prompt
		"\r| Generating 100%"+ // redrawn after it
		blank+"Generating: done\n",
		out.String())
}

func TestTerminalProgressRedrawTruncates(t *testing.T) {
	term, out := newTestTerminal(strings.NewReader(""), TerminalOptions{Redraw: true})
	term.width = 20
	p, err := term.Progress(context.Background(), "g", "Генерация профиля на токене")
	require.NoError(t, err)
	defer p.Done(true, "")
	assert.Equal(t, "\r| Генерация профиля", out.String(), "cut to width-1 runes, not bytes")
}

func TestTerminalProgressNested(t *testing.T) {
	term, out := newTestTerminal(strings.NewReader(""), TerminalOptions{Redraw: true})
	ctx := context.Background()
	outer, _ := term.Progress(ctx, "a", "A")
	inner, _ := term.Progress(ctx, "b", "B")
	outer.Update(0.5, "") // the older bar no longer owns the line: not drawn
	outer.Done(true, "")  // but its end is reported
	inner.Done(true, "")
	assert.Equal(t, "\r| A"+"\r   \r"+"\r| B"+"\r   \r"+"A: done\n"+"\r| B"+"\r   \r"+"B: done\n", out.String())
}

func TestTerminalProgressSpins(t *testing.T) {
	term, out := newTestTerminal(strings.NewReader(""), TerminalOptions{Redraw: true})
	term.tick = time.Millisecond
	p, err := term.Progress(context.Background(), "g", "Waiting for the CA")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "/ Waiting") }, 5*time.Second, time.Millisecond)
	p.Done(true, "")
	n := len(out.String())
	time.Sleep(10 * time.Millisecond)
	assert.Len(t, out.String(), n, "no drawing after Done")
	assert.True(t, strings.HasSuffix(out.String(), "Waiting for the CA: done\n"))
}
