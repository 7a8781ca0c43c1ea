package ui

import (
	"errors"
	"fmt"
)

// Conditions callers branch on with errors.Is.
var (
	// ErrCancelled: the person or the driver gave up on purpose (Ctrl-D at a terminal, a
	// cancel line from a JSON driver). The CLI maps it to its "cancelled" exit code.
	// Cancellation of the context is reported as the context's cause instead, because the
	// front-end cannot tell a Ctrl-C from a deadline.
	ErrCancelled = errors.New("cancelled")

	// ErrNoAnswer: no usable answer can be had without a person: the answers file lacks
	// the prompt or holds an invalid value, the input ended, the prompt is HumanOnly, or a
	// confirmation came from an answers file without --yes.
	ErrNoAnswer = errors.New("no answer")
)

// Abort marks an error from Prompt.Validate as the end of the prompt: Ask returns it
// (wrapped) instead of showing it and asking again. Bindings use it when the validator
// itself broke, such as a Lua error in a script's validate function, which no answer fixes.
func Abort(err error) error {
	if err == nil {
		return nil
	}
	return &abortError{err: err}
}

type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }
func (e *abortError) Unwrap() error { return e.err }

// Codes of a refused answer (the "code" of a JSON "invalid" line). A validator may return
// an *Invalid with a code of its own (a script's policy gives INVALID_INPUT).
const (
	CodeInvalidInput = "INVALID_INPUT" // the validator refused it; the default for a validator's error
	CodeNotAChoice   = "NOT_A_CHOICE"  // not one of a choice prompt's values
	CodeNotYesNo     = "NOT_YES_NO"    // a confirmation answered with something other than yes or no
	CodeTooLong      = "TOO_LONG"      // longer than a front-end accepts
)

// Invalid is an error a Prompt.Validate may return to say why it refused an answer: Code,
// machine-readable (INVALID_INPUT), Problems, the ids of the rules broken (the Rule ids of
// the prompt's Hints: password_too_short), and Message, for the person. A plain error is
// taken as an Invalid with code INVALID_INPUT and its text as the message.
type Invalid struct {
	Code     string
	Problems []string
	Message  string
}

func (e *Invalid) Error() string { return e.Message }

// retryError is an answer the person may correct. Its message is shown as is.
type retryError struct {
	msg      string
	code     string
	problems []string
}

func (e *retryError) Error() string { return e.msg }

func retryf(code, format string, args ...any) error {
	return &retryError{msg: fmt.Sprintf(format, args...), code: code}
}

// redactedError shows msg, a redacted form of err's message. It unwraps to err only when
// nothing was redacted, so that no chain walk can reach the secret through err.Error().
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Unwrap() error {
	if e.msg == e.err.Error() {
		return e.err
	}
	return nil
}

// markedError carries a sentinel for errors.Is and its own full message, so that messages
// read naturally ("no answer for prompt 'x': input closed") rather than as a chain.
type markedError struct {
	sentinel error // nil when the error only rewords err
	msg      string
	err      error // optional cause
}

func (e *markedError) Error() string        { return e.msg }
func (e *markedError) Is(target error) bool { return e.sentinel != nil && target == e.sentinel }
func (e *markedError) Unwrap() error        { return e.err }

func noAnswerf(format string, args ...any) error {
	return &markedError{sentinel: ErrNoAnswer, msg: fmt.Sprintf(format, args...)}
}

func cancelledf(format string, args ...any) error {
	return &markedError{sentinel: ErrCancelled, msg: fmt.Sprintf(format, args...)}
}

// promptErr wraps an error that ends a prompt with the prompt's id.
func promptErr(id string, err error) error {
	var abort *abortError
	if errors.As(err, &abort) {
		return fmt.Errorf("prompt '%s': validate: %w", id, abort.err)
	}
	return fmt.Errorf("prompt '%s': %w", id, err)
}
