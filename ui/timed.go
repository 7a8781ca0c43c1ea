package ui

import (
	"context"
	"time"
)

// Timed is a front-end whose every question gives up after a time limit: a signing request
// of a web page that the person does not confirm (or whose password they do not type) within
// it is cancelled rather than left waiting behind the page. Messages and progress pass
// through. It keeps what the front-end it wraps knows about who typed an answer, so the
// safety floor still tells a person's PIN from a program's.
type Timed struct {
	Frontend
	limit time.Duration
}

// NewTimed wraps fe so that each Ask ends after limit with an error wrapping ErrCancelled.
func NewTimed(fe Frontend, limit time.Duration) *Timed { return &Timed{Frontend: fe, limit: limit} }

// Unwrap is the front-end t wraps.
func (t *Timed) Unwrap() Frontend { return t.Frontend }

// Ask asks the wrapped front-end, for at most the limit.
func (t *Timed) Ask(ctx context.Context, p Prompt) (string, error) {
	v, _, err := t.askSourced(ctx, p)
	return v, err
}

func (t *Timed) askSourced(ctx context.Context, p Prompt) (string, bool, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, t.limit, cancelledf("prompt '%s': no answer within %s", p.ID, t.limit))
	defer cancel()
	if s, ok := t.Frontend.(sourced); ok {
		return s.askSourced(ctx, p)
	}
	v, err := t.Frontend.Ask(ctx, p)
	return v, false, err
}
