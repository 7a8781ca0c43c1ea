package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/ui"
)

// Person is whoever confirms a signing request and types the token password: the wizard
// page in the product, a terminal, a JSON-protocol driver in tests. The page that asked
// never sees any of it; it gets only the signatures.
type Person interface {
	// Attend returns the front-end the sign_request procedure asks on for one request, and
	// release, called once when that run has ended. It waits until the person can be asked
	// (one request at a time) or ctx ends. req is the whole request, previews included, for
	// the front-end to show beside the procedure's questions.
	Attend(ctx context.Context, req Request) (fe ui.Frontend, release func(), err error)
}

// turn is one request at a time: a person answers one consent page.
type turn chan struct{}

func newTurn() turn { return make(turn, 1) }

func (t turn) take(ctx context.Context) error {
	select {
	case t <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (t turn) give() { <-t }

// StreamPerson asks over the --ui json protocol (docs/protocol.md) on one pair of streams,
// one run after another: each request is a run from its hello line to its result line, and
// the driver's lines between them answer it. It is `tokenrun agent --person json`, for a
// GUI or a test harness that plays the person; a secret it marks "person": true is taken as
// typed by a person, as with --ui json.
type StreamPerson struct {
	out  io.Writer
	turn turn

	mu      sync.Mutex
	current *io.PipeWriter // the running request's input; nil between runs
	asked   bool           // the running request has asked its first question
	ended   error          // the driver's input ended (io.EOF) or failed
}

// NewStreamPerson reads the driver's lines from in and writes the runs' lines to out.
func NewStreamPerson(in io.Reader, out io.Writer) *StreamPerson {
	p := &StreamPerson{out: out, turn: newTurn()}
	go p.forward(in)
	return p
}

// forward hands each line of the driver to the run in progress. Answers sent between runs,
// or in a run before it asked anything, answer nothing and are dropped: a late answer to one
// request must not confirm the next (the protocol would keep it for the next prompt of the
// same id). A cancel line goes through at any moment.
func (p *StreamPerson) forward(in io.Reader) {
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			p.mu.Lock()
			w := p.current
			if !p.asked && !isCancel(line) {
				w = nil
			}
			p.mu.Unlock()
			if w != nil {
				_, _ = w.Write(line) // a run that has ended closed it: the line is dropped
			}
		}
		if err != nil {
			p.mu.Lock()
			p.ended = err
			if p.current != nil {
				p.current.Close()
			}
			p.mu.Unlock()
			return
		}
	}
}

// Attend waits for the previous request's run to end and starts this one's conversation.
func (p *StreamPerson) Attend(ctx context.Context, req Request) (ui.Frontend, func(), error) {
	if err := p.turn.take(ctx); err != nil {
		return nil, nil, err
	}
	r, w := io.Pipe()
	p.mu.Lock()
	p.asked = false
	if p.ended != nil {
		w.Close() // no driver any more: the run's first question ends it (NO_ANSWER)
	} else {
		p.current = w
	}
	p.mu.Unlock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.mu.Lock()
			p.current = nil
			p.mu.Unlock()
			w.Close()
			r.Close()
			p.turn.give()
		})
	}
	return ui.NewJSON(r, askWatch{p}), release, nil
}

// askWatch is the run's output: it notes the first ask line (the JSON front-end writes each
// line in one Write), from which on the driver's answers count.
type askWatch struct{ p *StreamPerson }

func (a askWatch) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(`"type":"ask"`)) {
		a.p.mu.Lock()
		a.p.asked = true
		a.p.mu.Unlock()
	}
	return a.p.out.Write(b)
}

// isCancel reports whether a driver's line is a cancel ({"cancel":true}, with or without id).
func isCancel(line []byte) bool {
	var l struct {
		Cancel bool `json:"cancel"`
	}
	return json.Unmarshal(line, &l) == nil && l.Cancel
}

// TerminalPerson asks at the terminal tokenrun agent runs in (`--person terminal`): the
// request's summary and text previews are printed there, then the procedure's questions.
type TerminalPerson struct {
	term *ui.Terminal
	out  io.Writer
	turn turn
}

// NewTerminalPerson asks on in and out (stdin and stderr).
func NewTerminalPerson(in io.Reader, out io.Writer) *TerminalPerson {
	return &TerminalPerson{term: ui.NewTerminal(in, out, ui.TerminalOptions{}), out: out, turn: newTurn()}
}

// Attend prints the request and hands over the terminal.
func (p *TerminalPerson) Attend(ctx context.Context, req Request) (ui.Frontend, func(), error) {
	if err := p.turn.take(ctx); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(p.out, "\n== %s [%s]\n", termtext.Escape(req.Summary), req.ID)
	for _, d := range req.Documents {
		if d.Preview == "" {
			continue
		}
		fmt.Fprintf(p.out, "-- %d:\n%s\n", d.Index, termtext.Lines(d.Preview))
		if d.Truncated {
			fmt.Fprintln(p.out, "…")
		}
	}
	var once sync.Once
	return p.term, func() { once.Do(p.turn.give) }, nil
}
