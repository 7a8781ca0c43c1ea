package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
)

// changingCalls are the token calls that change what is on the token or how it opens.
var changingCalls = map[string]bool{
	"token.Token:set_pin": true, "token.Token:init_pin": true, "token.Token:format": true,
	"token.Token:generate_key": true, "token.Token:store_certificate": true, "token.Token:delete": true,
}

// pinCalls are the changing calls that change a password.
var pinCalls = map[string]bool{"token.Token:set_pin": true, "token.Token:init_pin": true}

// journalAfterCall names a journal step that a script records just before a token call
// whose outcome a rerun must know, and the step the call's success leads to. The script
// records that step itself once the call returns; when a signal stops the run in between
// (the call has returned, the script's next line never runs) the host records it, and when
// the signal came before the call was made it steps the journal back, so that a rerun
// knows what happened instead of finding out with a PIN try. Only a kill -9, a crash or a
// call that failed leaves the step itself, meaning "not known".
var journalAfterCall = map[string]struct{ call, next string }{
	"setting_pin": {call: "token.Token:set_pin", next: "pin_set"},
}

type callOutcome struct {
	name string
	ok   bool
}

// runWatch is an observer that follows what a run changes on the token and which journal
// steps it records, to tell the person where things stand when a signal stops the run.
type runWatch struct {
	mu      sync.Mutex
	changes []callOutcome            // changing token calls that succeeded, in order
	serials []string                 // tokens whose journal the run read or wrote
	step    map[string]string        // serial -> the last step this run recorded
	since   map[string][]callOutcome // serial -> token calls made after that record
}

func newRunWatch() *runWatch {
	return &runWatch{step: map[string]string{}, since: map[string][]callOutcome{}}
}

// succeeded: returned normally with a first result that is neither nil nor false.
func succeeded(e runtime.CallEvent) bool {
	if e.Err != "" || len(e.Results) == 0 {
		return false
	}
	b, isBool := e.Results[0].(bool)
	return e.Results[0] != nil && (!isBool || b)
}

// reached reports whether a token call got as far as the token: a call that failed with the
// run's own cancellation never did, since every backend (and the safety floor) checks the
// context before it calls the module, and a call the module has begun returns its outcome.
func reached(e runtime.CallEvent) bool {
	if len(e.Results) < 2 {
		return true
	}
	m, ok := e.Results[1].(map[string]any)
	if !ok {
		return true
	}
	code, _ := m["code"].(string)
	return code != errcode.Cancelled && code != errcode.TimedOut
}

func (w *runWatch) Call(e runtime.CallEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := e.Name()
	if e.Module == "journal" && len(e.Args) > 0 {
		serial, _ := e.Args[0].(string)
		if serial == "" {
			return
		}
		known := false
		for _, s := range w.serials {
			known = known || s == serial
		}
		if !known {
			w.serials = append(w.serials, serial)
		}
		if e.Func == "record" && len(e.Args) > 1 && succeeded(e) {
			w.step[serial], _ = e.Args[1].(string)
			w.since[serial] = nil
		}
		return
	}
	if e.Module != "token" {
		return
	}
	if !reached(e) {
		return // as if never called: the token is as it was
	}
	for s := range w.step {
		w.since[s] = append(w.since[s], callOutcome{name, succeeded(e)})
	}
	if changingCalls[name] && succeeded(e) {
		w.changes = append(w.changes, callOutcome{name, true})
	}
}

// cancelled turns the error of a run that a signal stopped into a *cancelledError carrying
// the one line the person reads; any other error (or a run that finished before it
// noticed) passes through. It first settles a journal step left just before a token call.
func (w *runWatch) cancelled(ctx context.Context, s runSpec, err error) error {
	sig := interruptOf(ctx)
	if err == nil || sig == nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	catalog := runCatalog(s.config)
	key, args := "cancelled_token_unchanged", map[string]any{}
	switch {
	case len(w.changes) > 0 && pinCalls[w.changes[len(w.changes)-1].name]:
		key = "cancelled_password_changed"
	case len(w.changes) > 0:
		key = "cancelled_token_changed"
	}
	if s.journal != nil {
		if e := w.settleJournal(s.journal); e != nil {
			key, args = "cancelled_at_"+e.Step, map[string]any{"step": e.Step}
			if _, ok := catalog[key]; !ok {
				key = "cancelled_journal"
			}
		}
	}
	return &cancelledError{notice: region.Text(catalog, key, args), err: err, sig: sig}
}

// settleJournal applies journalAfterCall to the journals this run recorded, and returns the
// open journal of the run's token (the last one it touched), nil when none is open.
func (w *runWatch) settleJournal(store *journal.Store) *journal.Entry {
	var last *journal.Entry
	for _, serial := range w.serials {
		e, err := store.Load(serial)
		if err != nil {
			continue // finished, or never started: nothing to continue
		}
		if fix, ok := journalAfterCall[e.Step]; ok && w.step[serial] == e.Step {
			next := ""
			made := false
			for _, c := range w.since[serial] {
				if c.name == fix.call {
					made = true
					if c.ok {
						next = fix.next
					}
				}
			}
			if !made && len(e.History) >= 2 {
				next = e.History[len(e.History)-2].Name
			}
			if next != "" {
				if ne, rerr := store.Record(serial, e.Procedure, next, nil); rerr == nil {
					e = ne
				}
			}
		}
		last = e
	}
	return last
}

// runCatalog is the run's message catalog (the region's, in its language), else the
// shipped English one, for `run`, which loads no region.
func runCatalog(cfg map[string]any) map[string]string {
	if m, ok := cfg["messages"].(map[string]string); ok {
		return m
	}
	m, err := region.Catalog(scripts.FS, "en", nil)
	if err != nil {
		return map[string]string{"cancelled_token_unchanged": "Cancelled.", "cancelled_token_changed": "Cancelled.",
			"cancelled_password_changed": "Cancelled.", "cancelled_journal": "Cancelled."}
	}
	return m
}

// detail is the cancellation as a transcript's footer keeps it: the notice, the signal and
// what the run met on its way out.
func (e *cancelledError) detail() string {
	if e.err == nil || errors.Is(e.err, context.Canceled) && e.err.Error() == context.Canceled.Error() {
		return fmt.Sprintf("%s (%s)", e.notice, e.sig)
	}
	return fmt.Sprintf("%s (%s: %s)", e.notice, e.sig, e.err)
}
