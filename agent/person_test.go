package agent_test

import (
	"bufio"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/agent/agenttest"
	"github.com/tokenrun/tokenrun/ui"
)

// StreamPerson holds one conversation at a time on one pair of streams: a second request
// waits for the first to be released, and a line sent between runs confirms nothing.
func TestStreamPerson(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := agent.NewStreamPerson(inR, outW)
	ctx := context.Background()
	// Before any run: dropped. The blank line after it (ignored by the protocol) is read only
	// once the first has been handled.
	_, err := inW.Write([]byte(`{"id":"sign_confirm","value":"yes"}` + "\n"))
	require.NoError(t, err)
	_, err = inW.Write([]byte("\n"))
	require.NoError(t, err)

	fe, release, err := p.Attend(ctx, agent.Request{ID: "1"})
	require.NoError(t, err)
	// In the run, before it asked anything: a late answer to the previous request, dropped too.
	_, err = inW.Write([]byte(`{"id":"sign_confirm","value":"yes"}` + "\n"))
	require.NoError(t, err)
	_, err = inW.Write([]byte("\n"))
	require.NoError(t, err)
	waiting, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { _, _, err := p.Attend(waiting, agent.Request{ID: "2"}); second <- err }()

	answered := make(chan []agenttest.Line, 1)
	go func() {
		var plan = agenttest.Plan{Confirm: false}
		lines, _ := agenttest.Answer(bufioReader(outR), inW, plan)
		answered <- lines
	}()
	v, err := fe.Ask(ctx, ui.Prompt{ID: "sign_confirm", Kind: ui.Confirm})
	require.NoError(t, err)
	assert.Equal(t, "no", v, "the early and the late yes were dropped; the driver's answer counts")
	select {
	case err := <-second:
		t.Fatalf("a second request was let in while the first ran: %v", err)
	default:
	}
	cancel()
	assert.ErrorIs(t, <-second, context.Canceled, "waiting for the person ends with its context")
	release()
	fe3, release2, err := p.Attend(ctx, agent.Request{ID: "3"})
	require.NoError(t, err, "the next request gets the person once the first released")
	// A cancel goes through before any question: the run's context ends at once.
	run := fe3.(ui.Lifecycle).Begin(ctx, ui.RunInfo{Command: "agent"})
	_, err = inW.Write([]byte(`{"cancel":true}` + "\n"))
	require.NoError(t, err)
	select {
	case <-run.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a cancel before any question did not end the run")
	}
	release2()
	outW.Close()
	lines := <-answered
	require.NotEmpty(t, lines)
	assert.Equal(t, "ask", lines[0].Type())
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
