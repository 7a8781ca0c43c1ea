package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
)

// stopSignals cancel a run: Ctrl-C (os.Interrupt, which is also Ctrl-C and Ctrl-Break on
// Windows) and SIGTERM (what service managers and `kill` send).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// interrupted is the cause of a context cancelled by a signal. It is context.Canceled for
// errors.Is, so every layer that knows cancellation treats it as one.
type interrupted struct{ sig os.Signal }

func (e *interrupted) Error() string { return "cancelled by " + signalName(e.sig) }
func (e *interrupted) Unwrap() error { return context.Canceled }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "Ctrl-C (SIGINT)"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// interruptOf is the signal that cancelled ctx, or nil when no signal did.
func interruptOf(ctx context.Context) *interrupted {
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	var in *interrupted
	if errors.As(context.Cause(ctx), &in) {
		return in
	}
	return nil
}

// stoppingNotice is the line shown when the first signal arrives. A procedure replaces it
// with its catalog's text once the region's language is known.
var stoppingNotice atomic.Pointer[string]

func setStoppingNotice(s string) {
	if s != "" {
		stoppingNotice.Store(&s)
	}
}

const defaultStoppingNotice = "Stopping after the current step… (press Ctrl-C again to quit at once)"

// signalContext returns a context that the first stop signal cancels, with an *interrupted
// cause: the run stops at its next safe point (the token call in progress finishes, the
// journal and transcript are written, temporary files removed), and the command says what
// state the token is in. A second signal exits at once with exitCancelled, after removing
// the temporary files of writes in progress. stop restores the default handling.
func signalContext(parent context.Context, errOut io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, stopSignals...)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			notice := defaultStoppingNotice
			if p := stoppingNotice.Load(); p != nil {
				notice = *p
			}
			fmt.Fprintf(errOut, "\ntokenrun: %s\n", notice)
			cancel(&interrupted{sig})
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			atomicfile.RemoveTemps()
			fmt.Fprintf(errOut, "tokenrun: stopped at once by a second %s; the token call in progress may not have finished: run the same command again to see where it stands\n", signalName(sig))
			os.Exit(exitCancelled)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}
