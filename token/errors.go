package token

import (
	"errors"
	"fmt"
)

// Conditions callers branch on with errors.Is. Every backend returns an *Error wrapping one of
// these, carrying the PKCS#11 return code (the software token uses the same codes).
var (
	ErrPINIncorrect      = errors.New("PIN incorrect")
	ErrPINLocked         = errors.New("PIN locked")
	ErrPINInvalid        = errors.New("PIN invalid or of the wrong length")
	ErrPINNotInitialized = errors.New("user PIN not initialised")
	ErrNotLoggedIn       = errors.New("not logged in")
	ErrTokenNotPresent   = errors.New("token not present")
	ErrNotFound          = errors.New("not found")
	ErrAlreadyExists     = errors.New("already exists")
	ErrUnsupported       = errors.New("not supported by this token")
	ErrInvalidInput      = errors.New("invalid input")
	ErrClosed            = errors.New("token closed")
	// ErrTokenBusy: another run holds the token (see token/floor); nothing was done.
	ErrTokenBusy = errors.New("token in use by another run")
	// ErrTryRefused: the host's safety floor refused a login that could spend a PIN try that
	// may not be spent (the last one, or any on a token that reports no counters) because no
	// person typed the PIN; nothing was sent to the token.
	ErrTryRefused = errors.New("login refused to protect the PIN tries")
	// ErrTokenDamaged is a token whose own state is broken: the software token's file is
	// corrupt, or a right PIN's keys will not open. It is never a wrong PIN and never costs
	// a try; the way out is a backup, or the SO (unblock, format) when the SO's copy is whole.
	ErrTokenDamaged = errors.New("token damaged")
)

// ReturnCode is a PKCS#11 CK_RV. Declared here so that this package and the software token
// need no cgo.
type ReturnCode uint

// The return codes this project maps; values from PKCS#11 v2.40.
const (
	CKR_OK                          ReturnCode = 0x000
	CKR_GENERAL_ERROR               ReturnCode = 0x005
	CKR_ARGUMENTS_BAD               ReturnCode = 0x007
	CKR_ATTRIBUTE_VALUE_INVALID     ReturnCode = 0x013
	CKR_DEVICE_ERROR                ReturnCode = 0x030
	CKR_DEVICE_REMOVED              ReturnCode = 0x032
	CKR_KEY_TYPE_INCONSISTENT       ReturnCode = 0x063
	CKR_MECHANISM_INVALID           ReturnCode = 0x070
	CKR_OBJECT_HANDLE_INVALID       ReturnCode = 0x082
	CKR_PIN_INCORRECT               ReturnCode = 0x0A0
	CKR_PIN_INVALID                 ReturnCode = 0x0A1
	CKR_PIN_LEN_RANGE               ReturnCode = 0x0A2
	CKR_PIN_EXPIRED                 ReturnCode = 0x0A3
	CKR_PIN_LOCKED                  ReturnCode = 0x0A4
	CKR_SESSION_EXISTS              ReturnCode = 0x0B6
	CKR_TEMPLATE_INCONSISTENT       ReturnCode = 0x0D1
	CKR_TOKEN_NOT_PRESENT           ReturnCode = 0x0E0
	CKR_TOKEN_NOT_RECOGNIZED        ReturnCode = 0x0E1
	CKR_USER_ALREADY_LOGGED_IN      ReturnCode = 0x100
	CKR_USER_NOT_LOGGED_IN          ReturnCode = 0x101
	CKR_USER_PIN_NOT_INITIALIZED    ReturnCode = 0x102
	CKR_USER_TYPE_INVALID           ReturnCode = 0x103
	CKR_USER_ANOTHER_ALREADY_LOGGED ReturnCode = 0x104
)

var codeNames = map[ReturnCode]string{
	CKR_OK: "CKR_OK", CKR_GENERAL_ERROR: "CKR_GENERAL_ERROR", CKR_ARGUMENTS_BAD: "CKR_ARGUMENTS_BAD",
	CKR_ATTRIBUTE_VALUE_INVALID: "CKR_ATTRIBUTE_VALUE_INVALID", CKR_DEVICE_ERROR: "CKR_DEVICE_ERROR",
	CKR_DEVICE_REMOVED: "CKR_DEVICE_REMOVED", CKR_KEY_TYPE_INCONSISTENT: "CKR_KEY_TYPE_INCONSISTENT",
	CKR_MECHANISM_INVALID:     "CKR_MECHANISM_INVALID",
	CKR_OBJECT_HANDLE_INVALID: "CKR_OBJECT_HANDLE_INVALID", CKR_PIN_INCORRECT: "CKR_PIN_INCORRECT",
	CKR_PIN_INVALID: "CKR_PIN_INVALID", CKR_PIN_LEN_RANGE: "CKR_PIN_LEN_RANGE", CKR_PIN_EXPIRED: "CKR_PIN_EXPIRED",
	CKR_PIN_LOCKED: "CKR_PIN_LOCKED", CKR_SESSION_EXISTS: "CKR_SESSION_EXISTS",
	CKR_TEMPLATE_INCONSISTENT: "CKR_TEMPLATE_INCONSISTENT", CKR_TOKEN_NOT_PRESENT: "CKR_TOKEN_NOT_PRESENT",
	CKR_TOKEN_NOT_RECOGNIZED: "CKR_TOKEN_NOT_RECOGNIZED", CKR_USER_ALREADY_LOGGED_IN: "CKR_USER_ALREADY_LOGGED_IN",
	CKR_USER_NOT_LOGGED_IN: "CKR_USER_NOT_LOGGED_IN", CKR_USER_PIN_NOT_INITIALIZED: "CKR_USER_PIN_NOT_INITIALIZED",
	CKR_USER_TYPE_INVALID: "CKR_USER_TYPE_INVALID", CKR_USER_ANOTHER_ALREADY_LOGGED: "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
}

func (c ReturnCode) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CKR_0x%X", uint(c))
}

// sentinelFor maps a return code to the condition callers branch on (nil: none).
func sentinelFor(c ReturnCode) error {
	switch c {
	case CKR_PIN_INCORRECT:
		return ErrPINIncorrect
	case CKR_PIN_LOCKED:
		return ErrPINLocked
	case CKR_PIN_INVALID, CKR_PIN_LEN_RANGE:
		return ErrPINInvalid
	case CKR_USER_PIN_NOT_INITIALIZED:
		return ErrPINNotInitialized
	case CKR_USER_NOT_LOGGED_IN:
		return ErrNotLoggedIn
	case CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_RECOGNIZED:
		return ErrTokenNotPresent
	case CKR_OBJECT_HANDLE_INVALID:
		return ErrNotFound
	case CKR_MECHANISM_INVALID, CKR_KEY_TYPE_INCONSISTENT:
		return ErrUnsupported
	case CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT:
		return ErrInvalidInput
	}
	return nil
}

// Error is a token failure: the operation, the PKCS#11 return code when there is one, and
// the condition. It never holds a PIN.
type Error struct {
	Op   string     // "login", "set PIN", ...
	Code ReturnCode // CKR_OK when the failure did not come from a module
	Err  error      // one of the ErrX conditions, or another cause
	// RetriesLeft is the tries left on the PIN concerned after a wrong PIN; -1 when the token
	// does not say.
	RetriesLeft int
}

// NewError builds an *Error from a return code, mapping it to its condition.
func NewError(op string, code ReturnCode) *Error {
	err := sentinelFor(code)
	if err == nil {
		err = errors.New("PKCS#11 call failed")
	}
	return &Error{Op: op, Code: code, Err: err, RetriesLeft: -1}
}

func (e *Error) Error() string {
	msg := e.Op + ": " + e.Err.Error()
	if e.Code != CKR_OK {
		msg += " (" + e.Code.String() + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }
