package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/bindings/replay"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/transcript"
	"github.com/tokenrun/tokenrun/ui"
)

// Exit codes, documented in the README. Scripts and batch jobs branch on them.
const (
	ExitOK        = 0
	ExitInternal  = 1 // a bug in tokenrun itself, or an unexpected system failure
	ExitUsage     = 2 // bad flags, missing files, invalid configuration
	ExitScript    = 3 // the procedure script failed: syntax, runtime error, API too new
	ExitToken     = 4 // PIN incorrect or locked, token missing, several tokens, module failure
	ExitCA        = 5 // the certificate authority refused or could not be reached
	ExitCancelled = 6 // cancelled by the person, or timed out
	ExitRefused   = 7 // the procedure refused to go on for safety
	ExitVerify    = 8 // a signature did not verify: a check failed, or it is no CMS signature
	ExitDiverged  = 9 // a replay diverged from its transcript
)

// UsageError marks errors in how tokenrun was called (exit 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// VerifyError marks a signature that did not verify (exit 8), so that batch jobs can tell
// "bad signature" apart from "could not check" (usage, internal).
type VerifyError struct{ Err error }

func (e VerifyError) Error() string { return e.Err.Error() }
func (e VerifyError) Unwrap() error { return e.Err }

// CodedError carries the script-visible code that decides the exit code (see ExitCode), for
// failures a caller finds itself rather than returned by the token. Cond is the token
// condition it amounts to (token.ErrPINLocked), for errors.Is, kept out of the message.
type CodedError struct {
	Code string
	Err  error
	Cond error
}

func (e CodedError) Error() string        { return e.Err.Error() }
func (e CodedError) Unwrap() error        { return e.Err }
func (e CodedError) Is(target error) bool { return e.Cond != nil && target == e.Cond }
func (e CodedError) ErrorCode() string    { return e.Code }

// coded is any error that carries a script-visible error code (runtime.ScriptError does).
type coded interface{ ErrorCode() string }

// ExitCode is the process exit code for a run that ended with err.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	// Cancellation first: a run stopped by a signal, the person or a deadline exits 6 whatever
	// the layer that met it made of it (a token, CA or usage error wrapping context.Canceled).
	var ce *CancelledError
	if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, ui.ErrCancelled) {
		return ExitCancelled
	}
	var ue UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var ve VerifyError
	if errors.As(err, &ve) {
		return ExitVerify
	}
	var de *replay.Divergence
	if errors.As(err, &de) {
		return ExitDiverged
	}
	if errors.Is(err, ui.ErrNoAnswer) {
		return ExitUsage // the answers file lacks an answer, or a person is needed
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
		return ExitToken
	}
	var se *runtime.ScriptError
	if errors.As(err, &se) || errors.Is(err, transcript.ErrSecretLeak) {
		return ExitScript // a leaking transcript is the script's bug
	}
	return ExitInternal
}

func classExit(c errcode.Class) int {
	switch c {
	case errcode.ClassToken:
		return ExitToken
	case errcode.ClassCA:
		return ExitCA
	case errcode.ClassCancelled:
		return ExitCancelled
	case errcode.ClassRefused:
		return ExitRefused
	}
	return ExitScript
}

// ErrorCode is the script-visible code of a run's error, when it has one.
func ErrorCode(err error) string {
	var c coded
	if errors.As(err, &c) && c.ErrorCode() != "" {
		return c.ErrorCode()
	}
	if code := errcode.Of(err); code != errcode.TokenError {
		return code
	}
	return ""
}

// ExitClass names an exit code as the README's table does.
func ExitClass(code int) string {
	names := map[int]string{ExitOK: "ok", ExitInternal: "internal", ExitUsage: "usage", ExitScript: "script",
		ExitToken: "token", ExitCA: "ca", ExitCancelled: "cancelled", ExitRefused: "refused", ExitVerify: "verify", ExitDiverged: "diverged"}
	if n, ok := names[code]; ok {
		return n
	}
	return strings.ToLower(fmt.Sprintf("exit %d", code))
}
