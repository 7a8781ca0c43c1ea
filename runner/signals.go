package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	goruntime "runtime"
	"sync/atomic"
	"syscall"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/internal/atomicfile"
)

// stopSignals cancel a run: Ctrl-C (os.Interrupt, which is also Ctrl-C and Ctrl-Break on
// Windows) and SIGTERM (what service managers and `kill` send; on Windows, Go delivers
// closing the console window, logging off and shutting down as SIGTERM). Both exist on
// every system Go builds for, so this needs no per-system file.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// interrupted is the cause of a context cancelled by a signal. It is context.Canceled for
// errors.Is, so every layer that knows cancellation treats it as one.
type interrupted struct{ sig os.Signal }

func (e *interrupted) Error() string { return "cancelled by " + signalName(e.sig) }
func (e *interrupted) Unwrap() error { return context.Canceled }

// signalName names a stop signal as the person who sent it knows it: Windows has no
// SIGINT or SIGTERM to speak of, only keys and the console window.
func signalName(s os.Signal) string {
	windows := goruntime.GOOS == "windows"
	switch {
	case s == os.Interrupt && windows:
		return "Ctrl-C"
	case s == os.Interrupt:
		return "Ctrl-C (SIGINT)"
	case s == syscall.SIGTERM && windows:
		// Windows ends the process about 5 seconds after the console closes: the run stops
		// at its next safe point if it can within them.
		return "closing the console window"
	case s == syscall.SIGTERM:
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

// SetStoppingNotice sets the line shown when the first signal arrives; "" keeps the one
// there is.
func SetStoppingNotice(s string) {
	if s != "" {
		stoppingNotice.Store(&s)
	}
}

const defaultStoppingNotice = "Stopping after the current step… (press Ctrl-C again to quit at once)"

// SignalContext returns a context that the first stop signal cancels, with an *interrupted
// cause: the run stops at its next safe point (the token call in progress finishes, the
// journal and transcript are written, temporary files removed), and the command says what
// state the token is in. A second signal exits at once with ExitCancelled, after removing
// the temporary files of writes in progress. stop restores the default handling.
func SignalContext(parent context.Context, errOut io.Writer) (ctx context.Context, stop func()) {
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
			os.Exit(ExitCancelled)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// CancelledError is a run stopped by a signal. Its message is the one line the person reads:
// what state the token is in and how a rerun continues; err is what the run met on its way
// out (kept for errors.Is and the transcript).
type CancelledError struct {
	notice string
	err    error
	sig    *interrupted
}

func (e *CancelledError) Error() string   { return e.notice }
func (e *CancelledError) Unwrap() []error { return []error{e.sig, e.err} }

// ErrorCode is CANCELLED, whatever code the error met on the way out had.
func (e *CancelledError) ErrorCode() string { return errcode.Cancelled }

// Cancelled is err as a *CancelledError with notice as its message when a signal cancelled
// ctx, else err itself (nil stays nil). For callers that drive a token without Run (the
// sign batch); Run words its notice from what the run changed.
func Cancelled(ctx context.Context, err error, notice string) error {
	if sig := interruptOf(ctx); sig != nil && err != nil {
		return &CancelledError{notice: notice, err: err, sig: sig}
	}
	return err
}
