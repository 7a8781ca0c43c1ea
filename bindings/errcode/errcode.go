// Package errcode owns the one documented set of error codes that bindings hand to scripts
// as `nil, {code=..., message=...}`, and the class of each code, which the CLI maps to an
// exit code. Adding a code is fine; renaming one breaks every bank's scripts.
package errcode

import (
	"context"
	"errors"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
)

// The codes scripts see.
const (
	PINIncorrect      = "PIN_INCORRECT"       // wrong PIN; retries_left when the token says
	PINLocked         = "PIN_LOCKED"          // too many wrong tries: unblock (user) or support (SO)
	PINInvalid        = "PIN_INVALID"         // the token refuses the PIN's length or characters
	PINNotInitialized = "PIN_NOT_INITIALIZED" // after a format: the SO must set a user PIN
	NotLoggedIn       = "NOT_LOGGED_IN"
	TokenNotPresent   = "TOKEN_NOT_PRESENT"
	TokenDamaged      = "TOKEN_DAMAGED" // the token's own state is broken (no try was counted): backup, unblock or format
	SeveralTokens     = "SEVERAL_TOKENS"
	NotFound          = "NOT_FOUND"
	AlreadyExists     = "ALREADY_EXISTS"
	Unsupported       = "UNSUPPORTED"
	InvalidInput      = "INVALID_INPUT"
	TokenError        = "TOKEN_ERROR" // any other token failure
	Cancelled         = "CANCELLED"
	TimedOut          = "TIMED_OUT"
	Refused           = "REFUSED"    // a procedure (or the host's safety floor) declined to go on for safety
	TokenBusy         = "TOKEN_BUSY" // another tokenrun run holds the token; try again when it ends

	// Signing (module sign).
	NoCertificate = "NO_CERTIFICATE" // no certificate next to the key (same CKA_ID): enroll first
	KeyMismatch   = "KEY_MISMATCH"   // the certificate given holds another key than the key given
	Malformed     = "MALFORMED"      // input that is not what it claims: a certificate, a signature
)

// Class groups codes for exit codes.
type Class string

const (
	ClassToken     Class = "token"
	ClassCA        Class = "ca"
	ClassCancelled Class = "cancelled"
	ClassRefused   Class = "refused"
	ClassScript    Class = "script"
)

// ClassOf maps a code (including ones a script invents) to its class.
func ClassOf(code string) Class {
	switch code {
	case PINIncorrect, PINLocked, PINInvalid, PINNotInitialized, NotLoggedIn, TokenNotPresent, TokenDamaged,
		SeveralTokens, NotFound, AlreadyExists, Unsupported, TokenError, NoCertificate, KeyMismatch, TokenBusy:
		return ClassToken
	case Cancelled, TimedOut:
		return ClassCancelled
	case Refused:
		return ClassRefused
	}
	if len(code) > 3 && code[:3] == "CA_" {
		return ClassCA
	}
	return ClassScript
}

// Of returns the code for an error.
func Of(err error) string {
	switch {
	case errors.Is(err, token.ErrTokenDamaged):
		// First: damage wraps what it found, and it is never a wrong PIN.
		return TokenDamaged
	case errors.Is(err, token.ErrPINIncorrect):
		return PINIncorrect
	case errors.Is(err, token.ErrPINLocked):
		return PINLocked
	case errors.Is(err, token.ErrTryRefused):
		return Refused
	case errors.Is(err, token.ErrTokenBusy):
		return TokenBusy
	case errors.Is(err, token.ErrPINInvalid):
		return PINInvalid
	case errors.Is(err, token.ErrPINNotInitialized):
		return PINNotInitialized
	case errors.Is(err, token.ErrNotLoggedIn):
		return NotLoggedIn
	case errors.Is(err, token.ErrSeveralTokens):
		return SeveralTokens
	case errors.Is(err, token.ErrTokenNotPresent):
		return TokenNotPresent
	case errors.Is(err, token.ErrNoCertificate):
		return NoCertificate
	case errors.Is(err, token.ErrCertificateMismatch):
		return KeyMismatch
	case errors.Is(err, token.ErrNotFound):
		return NotFound
	case errors.Is(err, token.ErrAlreadyExists):
		return AlreadyExists
	case errors.Is(err, token.ErrUnsupported):
		return Unsupported
	case errors.Is(err, token.ErrInvalidInput):
		return InvalidInput
	case errors.Is(err, context.DeadlineExceeded):
		return TimedOut
	case errors.Is(err, context.Canceled):
		return Cancelled
	}
	return TokenError
}

// Fields are the extra fields of the error table for err: retries_left when the token said
// how many tries remain, tokens when several were present.
func Fields(err error) map[string]any {
	f := map[string]any{}
	var te *token.Error
	if errors.As(err, &te) && te.RetriesLeft >= 0 {
		f["retries_left"] = te.RetriesLeft
	}
	var several *token.SeveralTokensError
	if errors.As(err, &several) {
		names := make([]string, len(several.Tokens))
		for i, info := range several.Tokens {
			names[i] = info.Name()
		}
		f["tokens"] = names
	}
	return f
}

// Push pushes the expected-failure pair nil, {code=, message=, ...} for err and returns 2,
// for a binding to `return errcode.Push(L, err)`.
func Push(L *lua.LState, err error) int {
	return runtime.Fail(L, Of(err), err.Error(), Fields(err))
}
