// Package agenttest plays the person in tests of the signing agent: it answers a
// sign_request run's questions over the --ui json protocol (docs/protocol.md) as a person at
// the consent page would (confirm, type the token password marked "person": true), or
// declines, cancels, types a wrong password or stays silent. Driver is an agent.Person for a
// Server in the test's process; Answer and AnswerRuns speak to the lines of a `tokenrun agent
// --person json` process, or of any front-end that speaks the protocol (the wizard's tests).
package agenttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/ui"
)

// Plan is what the person does with one request.
type Plan struct {
	// Confirm answers the consent question (sign_confirm) yes; false answers no.
	Confirm bool
	// PIN is typed at current_pin, as a person types it; "" cancels there.
	PIN string
	// Cancel cancels at the first question instead of answering it (the page closed, the
	// person pressed Cancel).
	Cancel bool
	// Silent answers nothing: the agent's consent time limit ends the request.
	Silent bool
	// FinalTry answers final_try (spending the last PIN try) yes; else no.
	FinalTry bool
	// Answers are values for other prompt ids; a prompt with none is cancelled.
	Answers map[string]string
}

// Confirmed is the usual plan: confirm and type pin.
func Confirmed(pin string) Plan { return Plan{Confirm: true, PIN: pin} }

// Line is one line the host wrote, decoded.
type Line map[string]any

// Type is the line's type: hello, ask, say, result...
func (l Line) Type() string { s, _ := l["type"].(string); return s }

// ID is the line's prompt or progress id.
func (l Line) ID() string { s, _ := l["id"].(string); return s }

// Answer reads one run's lines from r (the host's output) and writes the person's answers
// to w (its input) until the result line, which it returns with the lines before it. The
// end of r before a result is io.ErrUnexpectedEOF, unless the run began without a hello
// line: a host that wires no lifecycle (an agent.Runner without Begin) ends its runs so.
func Answer(r *bufio.Reader, w io.Writer, plan Plan) ([]Line, error) {
	return answer(r, w, plan, nil)
}

// answer is Answer telling seen of each line as it comes.
func answer(r *bufio.Reader, w io.Writer, plan Plan, seen func(Line)) ([]Line, error) {
	var lines []Line
	asked, hello := false, false
	for {
		b, err := r.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && (hello || len(lines) == 0) {
				return lines, io.ErrUnexpectedEOF
			}
			if err == io.EOF {
				return lines, nil
			}
			return lines, err
		}
		var l Line
		if err := json.Unmarshal(b, &l); err != nil {
			return lines, fmt.Errorf("agenttest: the host wrote %q: %w", b, err)
		}
		lines = append(lines, l)
		if seen != nil {
			seen(l)
		}
		switch l.Type() {
		case "hello":
			hello = true
		case "result":
			return lines, nil
		case "invalid":
			send(w, map[string]any{"id": l.ID(), "cancel": true})
		case "ask":
			first := !asked
			asked = true
			if plan.Silent {
				continue
			}
			if plan.Cancel && first {
				send(w, map[string]any{"cancel": true})
				continue
			}
			send(w, plan.answer(l))
		}
	}
}

// answer is the person's answer to an ask line.
func (p Plan) answer(l Line) map[string]any {
	id := l.ID()
	switch id {
	case "sign_confirm":
		return map[string]any{"id": id, "value": yesNo(p.Confirm)}
	case "current_pin":
		if p.PIN == "" {
			return map[string]any{"id": id, "cancel": true}
		}
		return map[string]any{"id": id, "value": p.PIN, "person": true}
	case "final_try":
		return map[string]any{"id": id, "value": yesNo(p.FinalTry)}
	}
	if v, ok := p.Answers[id]; ok {
		return map[string]any{"id": id, "value": v, "person": l["kind"] == "secret"}
	}
	return map[string]any{"id": id, "cancel": true}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func send(w io.Writer, m map[string]any) {
	b, _ := json.Marshal(m)
	_, _ = w.Write(append(b, '\n'))
}

// AnswerRuns answers run after run on one pair of streams (`tokenrun agent --person json`):
// each run's plan is next(), called at its first line. It returns when r ends.
func AnswerRuns(r io.Reader, w io.Writer, next func() Plan, done func(lines []Line, err error)) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		if _, err := br.Peek(1); err != nil {
			return
		}
		lines, err := Answer(br, w, next())
		if done != nil {
			done(lines, err)
		}
		if err != nil {
			return
		}
	}
}

// Driver is an agent.Person for a Server in the test's process: each request is answered by
// the next plan given to Plan (a request with none left is cancelled), and what each run
// showed is kept.
type Driver struct {
	mu    sync.Mutex
	plans []Plan
	runs  []Run
	seen  []Line
	wg    sync.WaitGroup
}

// Seen is every line of every run so far, the runs in progress included, in order.
func (d *Driver) Seen() []Line {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Line(nil), d.seen...)
}

// Run is one request as the driver saw it: the request the agent handed over, every line of
// its conversation, and how reading them ended.
type Run struct {
	Request agent.Request
	Lines   []Line
	Err     error
}

// Plan queues plans for the next requests, in order.
func (d *Driver) Plan(plans ...Plan) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.plans = append(d.plans, plans...)
}

// Runs are the requests answered so far, once their conversations have ended.
func (d *Driver) Runs() []Run {
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Run(nil), d.runs...)
}

// Attend implements agent.Person.
func (d *Driver) Attend(ctx context.Context, req agent.Request) (ui.Frontend, func(), error) {
	d.mu.Lock()
	plan := Plan{Cancel: true}
	if len(d.plans) > 0 {
		plan, d.plans = d.plans[0], d.plans[1:]
	}
	d.mu.Unlock()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		lines, err := answer(bufio.NewReader(outR), inW, plan, func(l Line) {
			d.mu.Lock()
			d.seen = append(d.seen, l)
			d.mu.Unlock()
		})
		_, _ = io.Copy(io.Discard, outR) // nothing follows a result, but never block the host
		d.mu.Lock()
		d.runs = append(d.runs, Run{Request: req, Lines: lines, Err: err})
		d.mu.Unlock()
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			outW.Close()
			inW.Close()
		})
	}
	return ui.NewJSON(inR, outW), release, nil
}
