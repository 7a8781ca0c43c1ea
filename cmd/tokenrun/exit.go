package main

import (
	"context"
	"errors"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/bindings/replay"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/transcript"
	"github.com/tokenrun/tokenrun/ui"
)

// Exit codes, documented in the README. Scripts and batch jobs branch on them.
const (
	exitOK        = 0
	exitInternal  = 1 // a bug in tokenrun itself, or an unexpected system failure
	exitUsage     = 2 // bad flags, missing files, invalid configuration
	exitScript    = 3 // the procedure script failed: syntax, runtime error, API too new
	exitToken     = 4 // PIN incorrect or locked, token missing, several tokens, module failure
	exitCA        = 5 // the certificate authority refused or could not be reached
	exitCancelled = 6 // cancelled by the person, or timed out
	exitRefused   = 7 // the procedure refused to go on for safety
	exitVerify    = 8 // a signature did not verify: a check failed, or it is no CMS signature
	exitDiverged  = 9 // a replay diverged from its transcript
)

// usageError marks errors in how tokenrun was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// verifyError marks a signature that did not verify, so that batch jobs can tell "bad
// signature" apart from "could not check" (usage, internal).
type verifyError struct{ err error }

func (e verifyError) Error() string { return e.err.Error() }
func (e verifyError) Unwrap() error { return e.err }

// cancelledError is a run stopped by a signal. Its message is the one line the person reads:
// what state the token is in and how a rerun continues; err is what the run met on its way
// out (kept for errors.Is and the transcript).
type cancelledError struct {
	notice string
	err    error
	sig    *interrupted
}

func (e *cancelledError) Error() string   { return e.notice }
func (e *cancelledError) Unwrap() []error { return []error{e.sig, e.err} }

// ErrorCode is CANCELLED, whatever code the error met on the way out had.
func (e *cancelledError) ErrorCode() string { return errcode.Cancelled }

// coded is any error that carries a script-visible error code (runtime.ScriptError does).
type coded interface{ ErrorCode() string }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	// Cancellation first: a run stopped by a signal, the person or a deadline exits 6 whatever
	// the layer that met it made of it (a token, CA or usage error wrapping context.Canceled).
	var ce *cancelledError
	if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, ui.ErrCancelled) {
		return exitCancelled
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var bf batchFailedError
	if errors.As(err, &bf) {
		return exitBatchFailed
	}
	var ve verifyError
	if errors.As(err, &ve) {
		return exitVerify
	}
	var de *replay.Divergence
	if errors.As(err, &de) {
		return exitDiverged
	}
	if errors.Is(err, ui.ErrNoAnswer) {
		return exitUsage // the answers file lacks an answer, or a person is needed
	}
	var c coded
	if errors.As(err, &c) && c.ErrorCode() != "" {
		return classExit(errcode.ClassOf(c.ErrorCode()))
	}
	// Any error wrapping a condition scripts have a code for exits by that code's class.
	if code := errcode.Of(err); code != errcode.TokenError {
		return classExit(errcode.ClassOf(code))
	}
	var te *token.Error
	if errors.As(err, &te) {
		return exitToken
	}
	var se *runtime.ScriptError
	if errors.As(err, &se) || errors.Is(err, transcript.ErrSecretLeak) {
		return exitScript // a leaking transcript is the script's bug
	}
	return exitInternal
}

func classExit(c errcode.Class) int {
	switch c {
	case errcode.ClassToken:
		return exitToken
	case errcode.ClassCA:
		return exitCA
	case errcode.ClassCancelled:
		return exitCancelled
	case errcode.ClassRefused:
		return exitRefused
	}
	return exitScript
}
