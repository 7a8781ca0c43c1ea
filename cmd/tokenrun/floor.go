package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/floor"
	"github.com/tokenrun/tokenrun/ui"
)

func lockWaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", EnvVars: []string{"TOKENRUN_LOCK_WAIT"}, Value: floor.DefaultLockWait,
		Usage: "how long to wait for a token another tokenrun run is using, before giving up (exit 4)"}
}

// guardSpec is what the safety floor needs to know of one run.
type guardSpec struct {
	command  string            // "tokenrun enroll", shown to a run that finds the token held
	lockWait time.Duration     // --lock-wait; 0 is the default
	witness  *ui.Witness       // who typed which secret
	messages map[string]string // the run's catalog; nil: English
}

// guard puts the host's safety floor (token/floor) under every token p opens for this run:
// the token lock and the tries ledger live under TOKENRUN_HOME, so every tokenrun process
// of this user shares them.
func guard(p token.Provider, g guardSpec) (*floor.Provider, error) {
	home, err := homeDir()
	if err != nil {
		return nil, err
	}
	wait := g.lockWait
	if wait < 0 {
		return nil, usageError{fmt.Errorf("--lock-wait %s: want a duration of 0 or more", wait)}
	}
	fe := g.witness
	return floor.Wrap(p, floor.Options{
		Dir:      filepath.Join(home, "floor"),
		Command:  g.command,
		LockWait: wait,
		Person:   fe.TypedByPerson,
		Waiting: func(info token.Info, h floor.Holder) {
			if wait == 0 {
				wait = floor.DefaultLockWait
			}
			args := map[string]any{"token": info.Name(), "holder": h.String(), "seconds": int(wait.Seconds())}
			text := "The token {token} is in use by {holder}. Waiting up to {seconds} s for it to finish…"
			if t, ok := g.messages["token_busy_waiting"]; ok {
				text = t
			}
			_ = fe.Say(context.Background(), ui.Warn, region.FormatIn(g.messages[region.LangKey], text, args))
		},
	}), nil
}
