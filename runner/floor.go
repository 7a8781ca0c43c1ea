package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/floor"
	"github.com/tokenrun/tokenrun/ui"
)

// GuardOptions are what the safety floor needs to know of one run.
type GuardOptions struct {
	Command  string            // "tokenrun enroll", shown to a run that finds the token held
	LockWait time.Duration     // --lock-wait; 0 is the default
	Witness  *ui.Witness       // who typed which secret
	Messages map[string]string // the run's catalog; nil: English
}

// Guard puts the host's safety floor (token/floor) under every token p opens for this run:
// the token lock and the tries ledger live under TOKENRUN_HOME, so every tokenrun process
// of this user shares them. Run does this itself; a caller that drives a token from Go
// (the sign batch) calls it.
func Guard(p token.Provider, g GuardOptions) (*floor.Provider, error) {
	home, err := Home()
	if err != nil {
		return nil, err
	}
	wait := g.LockWait
	if wait < 0 {
		return nil, UsageError{fmt.Errorf("--lock-wait %s: want a duration of 0 or more", wait)}
	}
	fe := g.Witness
	return floor.Wrap(p, floor.Options{
		Dir:      filepath.Join(home, "floor"),
		Command:  g.Command,
		LockWait: wait,
		Person:   fe.TypedByPerson,
		Waiting: func(info token.Info, h floor.Holder) {
			if wait == 0 {
				wait = floor.DefaultLockWait
			}
			args := map[string]any{"token": info.Name(), "holder": h.String(), "seconds": int(wait.Seconds())}
			text := "The token {token} is in use by {holder}. Waiting up to {seconds} s for it to finish…"
			if t, ok := g.Messages["token_busy_waiting"]; ok {
				text = t
			}
			_ = fe.Say(context.Background(), ui.Warn, region.FormatIn(g.Messages[region.LangKey], text, args))
		},
	}), nil
}
