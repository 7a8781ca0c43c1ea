//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"
	"strings"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenrun/tokenrun/token"
)

// Return codes the token package does not name but callers still need to branch on: a curve
// or key size the module refuses is "unsupported", not a generic failure.
var extraConditions = map[uint]error{
	p11.CKR_SLOT_ID_INVALID:            token.ErrTokenNotPresent,
	p11.CKR_KEY_HANDLE_INVALID:         token.ErrNotFound,
	p11.CKR_KEY_SIZE_RANGE:             token.ErrUnsupported,
	p11.CKR_CURVE_NOT_SUPPORTED:        token.ErrUnsupported,
	p11.CKR_DOMAIN_PARAMS_INVALID:      token.ErrUnsupported,
	p11.CKR_MECHANISM_PARAM_INVALID:    token.ErrUnsupported,
	p11.CKR_FUNCTION_NOT_SUPPORTED:     token.ErrUnsupported,
	p11.CKR_KEY_FUNCTION_NOT_PERMITTED: token.ErrUnsupported,
	p11.CKR_PIN_TOO_WEAK:               token.ErrPINInvalid,
	p11.CKR_TEMPLATE_INCOMPLETE:        token.ErrInvalidInput,
	p11.CKR_ATTRIBUTE_TYPE_INVALID:     token.ErrInvalidInput,
	p11.CKR_ATTRIBUTE_READ_ONLY:        token.ErrInvalidInput,
	p11.CKR_DATA_LEN_RANGE:             token.ErrInvalidInput,
	p11.CKR_DATA_INVALID:               token.ErrInvalidInput,
}

// conditions are the token package's sentinels; an *token.Error wrapping none of them only
// says "PKCS#11 call failed", so the code's name is put in instead.
var conditions = []error{
	token.ErrPINIncorrect, token.ErrPINLocked, token.ErrPINInvalid, token.ErrPINNotInitialized,
	token.ErrNotLoggedIn, token.ErrTokenNotPresent, token.ErrNotFound, token.ErrAlreadyExists,
	token.ErrUnsupported, token.ErrInvalidInput, token.ErrClosed,
}

// codeError turns a CK_RV into a *token.Error, so that errors.Is works the same on every
// backend.
func codeError(op string, code uint) *token.Error {
	e := token.NewError(op, token.ReturnCode(code))
	for _, c := range conditions {
		if errors.Is(e.Err, c) {
			return e
		}
	}
	name := codeName(code)
	if cond, ok := extraConditions[code]; ok {
		e.Err = fmt.Errorf("%s: %w", name, cond)
	} else {
		e.Err = errors.New("module returned " + name)
	}
	return e
}

// Names of PKCS#11 v2.40 codes missing from miekg/pkcs11 v1.1.2's table.
var missingNames = map[uint]string{
	p11.CKR_ACTION_PROHIBITED:       "CKR_ACTION_PROHIBITED",
	p11.CKR_CURVE_NOT_SUPPORTED:     "CKR_CURVE_NOT_SUPPORTED",
	p11.CKR_EXCEEDED_MAX_ITERATIONS: "CKR_EXCEEDED_MAX_ITERATIONS",
	p11.CKR_FIPS_SELF_TEST_FAILED:   "CKR_FIPS_SELF_TEST_FAILED",
	p11.CKR_LIBRARY_LOAD_FAILED:     "CKR_LIBRARY_LOAD_FAILED",
	p11.CKR_PIN_TOO_WEAK:            "CKR_PIN_TOO_WEAK",
	p11.CKR_PUBLIC_KEY_INVALID:      "CKR_PUBLIC_KEY_INVALID",
}

// codeName is the name of a code ("CKR_CURVE_NOT_SUPPORTED").
func codeName(code uint) string {
	if n, ok := missingNames[code]; ok {
		return n
	}
	s := p11.Error(code).Error() // "pkcs11: 0x140: CKR_CURVE_NOT_SUPPORTED"
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s[i+2:], "CKR_") {
		return s[i+2:]
	}
	return fmt.Sprintf("CKR_0x%X", code)
}

// wrapErr maps any error from a PKCS#11 call to a *token.Error. Context errors stay
// recognisable with errors.Is(err, context.Canceled).
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var te *token.Error
	if errors.As(err, &te) {
		return err
	}
	var pe p11.Error
	if errors.As(err, &pe) {
		return codeError(op, uint(pe))
	}
	return &token.Error{Op: op, Err: err, RetriesLeft: -1}
}

// newErr is a failure found by this package rather than reported by the module.
func newErr(op string, cond error, format string, args ...any) *token.Error {
	msg := fmt.Sprintf(format, args...)
	return &token.Error{Op: op, Err: fmt.Errorf("%s: %w", msg, cond), RetriesLeft: -1}
}

func closedErr(op string) error {
	return &token.Error{Op: op, Err: token.ErrClosed, RetriesLeft: -1}
}

// isCode reports whether err carries one of the PKCS#11 return codes, raw from miekg or
// already mapped to a *token.Error.
func isCode(err error, codes ...uint) bool {
	if err == nil {
		return false
	}
	var rv uint
	var pe p11.Error
	var te *token.Error
	switch {
	case errors.As(err, &pe):
		rv = uint(pe)
	case errors.As(err, &te) && te.Code != token.CKR_OK:
		rv = uint(te.Code)
	default:
		return false
	}
	for _, c := range codes {
		if rv == c {
			return true
		}
	}
	return false
}
