package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/ui"
)

// OnceOptions are one request answered without a server: `tokenrun sign-request`, with which
// a bank tries its adapted sign_request procedure on a request file, and the procedure's
// golden tests.
type OnceOptions struct {
	Runner   *Runner
	Frontend ui.Frontend // who is asked: the command's --ui
	Audit    *audit.Log
	Origin   string // the page the request stands for; normalised like agent.origins
	Message  []byte // the page's message: {"module", "method", "args"}
	Version  string
}

// Refusal is a request Once answered with an error before any run: a malformed request,
// keys in files, XML. Message is the person's words, Details the developer's.
type Refusal struct{ Code, Message, Details string }

func (r *Refusal) Error() string { return r.Code + ": " + r.Details }

// Once answers one message as the agent would answer a page whose origin is allowed, asking
// on o.Frontend, and returns the answer (JSON) and the error of the request: the run's
// (nil when it signed), or a runner.UsageError holding a *Refusal when none ran.
func Once(ctx context.Context, o OnceOptions) ([]byte, error) {
	origin, err := region.NormalizeOrigin(o.Origin)
	if err != nil {
		return nil, runner.UsageError{Err: fmt.Errorf("--origin: %w", err)}
	}
	s, err := New(Options{Runner: o.Runner, Person: &onePerson{fe: o.Frontend}, Audit: o.Audit, Version: o.Version, Log: io.Discard})
	if err != nil {
		return nil, err
	}
	var failed error
	s.onFailure = func(f *failure, text string) {
		switch {
		case f.err != nil:
			failed = f.err
		case f.cancelled:
			failed = ui.ErrCancelled
		default:
			failed = runner.UsageError{Err: &Refusal{Code: f.code, Message: text, Details: f.details}}
		}
	}
	b, err := json.Marshal(s.answer(ctx, &connection{origin: origin}, o.Message))
	if err != nil {
		return nil, err
	}
	return b, failed
}

// onePerson is the command's own front-end, for one request.
type onePerson struct{ fe ui.Frontend }

func (p *onePerson) Attend(context.Context, Request) (ui.Frontend, func(), error) {
	return p.fe, func() {}, nil
}
