package token

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSeveralTokens: more than one token matches where exactly one is required. The procedures
// refuse to go on, so that another company's token is never one typo away.
var ErrSeveralTokens = errors.New("several tokens present")

// SeveralTokensError names the tokens that matched.
type SeveralTokensError struct{ Tokens []Info }

func (e *SeveralTokensError) Error() string {
	names := make([]string, len(e.Tokens))
	for i, t := range e.Tokens {
		names[i] = t.Name()
	}
	return fmt.Sprintf("%d tokens are present: %s; unplug all but the one to work on", len(e.Tokens), strings.Join(names, ", "))
}

func (e *SeveralTokensError) Unwrap() error { return ErrSeveralTokens }

// Selection is what is present, split the way "exactly one token" counts it.
//
// Uninitialised tokens are not counted: they hold no keys and no certificate, so they cannot
// be another company's token, and SoftHSM2 always shows one in a spare slot. They are listed
// so callers can say they were ignored, and IncludeUninitialized counts them (formatting a
// factory-fresh token needs that).
type Selection struct {
	Matched       []Info // matching initialised tokens (all matching ones with IncludeUninitialized)
	Uninitialized []Info // matching uninitialised tokens that were not counted
}

// SelectOptions narrows and counts tokens.
type SelectOptions struct {
	URI                  *URI // nil: every token
	IncludeUninitialized bool
}

// Select lists what is present and splits it.
func Select(ctx context.Context, p Provider, opts SelectOptions) (Selection, error) {
	infos, err := p.Tokens(ctx)
	if err != nil {
		return Selection{}, err
	}
	var s Selection
	for _, info := range infos {
		if opts.URI != nil && !opts.URI.MatchToken(info) {
			continue
		}
		if !info.Initialized && !opts.IncludeUninitialized {
			s.Uninitialized = append(s.Uninitialized, info)
			continue
		}
		s.Matched = append(s.Matched, info)
	}
	return s, nil
}

// One returns the single matching token, or an error naming what was found instead.
func (s Selection) One() (Info, error) {
	switch len(s.Matched) {
	case 1:
		return s.Matched[0], nil
	case 0:
		msg := "no token found: plug in the token"
		if len(s.Uninitialized) > 0 {
			msg = fmt.Sprintf("no initialised token found (%d uninitialised token(s) present, e.g. %s)", len(s.Uninitialized), s.Uninitialized[0].Name())
		}
		return Info{}, &Error{Op: "find token", Err: fmt.Errorf("%s: %w", msg, ErrTokenNotPresent), RetriesLeft: -1}
	default:
		return Info{}, &SeveralTokensError{Tokens: s.Matched}
	}
}

// WaitOptions says how long to wait for a token to be plugged in.
type WaitOptions struct {
	SelectOptions
	Timeout time.Duration // 0: look once
	Poll    time.Duration // default 250 ms
	// Waiting, when set, is told how long the wait has lasted after every look that found
	// no token: a progress display's countdown.
	Waiting func(waited time.Duration)
}

// Wait waits until at least one matching token is present, then requires exactly one. It
// returns at once with an error when several are present: waiting would not help.
func Wait(ctx context.Context, p Provider, opts WaitOptions) (Info, error) {
	poll := opts.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	parent := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	start := time.Now()
	for {
		s, err := Select(ctx, p, opts.SelectOptions)
		if err != nil {
			// The wait's own time ran out during a look (a slow module): no token came, as
			// when it runs out between looks; only the caller's context ending is an error
			// of its own (cancelled, timed out).
			if ctx.Err() != nil && parent.Err() == nil {
				return Info{}, fmt.Errorf("waited %s: %w", opts.Timeout, ErrTokenNotPresent)
			}
			return Info{}, err
		}
		if len(s.Matched) > 0 || opts.Timeout <= 0 {
			return s.One()
		}
		if opts.Waiting != nil {
			opts.Waiting(time.Since(start))
		}
		select {
		case <-ctx.Done():
			info, err := s.One()
			if err != nil && errors.Is(err, ErrTokenNotPresent) {
				return info, fmt.Errorf("waited %s: %w", opts.Timeout, err)
			}
			return info, err
		case <-time.After(poll):
		}
	}
}
