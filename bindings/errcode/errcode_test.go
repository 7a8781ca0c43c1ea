package errcode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tokenrun/tokenrun/token"
)

func TestOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"wrong PIN", token.NewError("login", token.CKR_PIN_INCORRECT), PINIncorrect},
		{"locked", token.NewError("login", token.CKR_PIN_LOCKED), PINLocked},
		{"damaged", &token.Error{Op: "login", Code: token.CKR_DEVICE_ERROR, Err: fmt.Errorf("the software token in /x is damaged: %w", token.ErrTokenDamaged)}, TokenDamaged},
		// Damage names what it found; whatever else it wraps, it is damage.
		{"damaged, also wrapping another condition", fmt.Errorf("%w: %w", token.ErrTokenDamaged, token.ErrPINIncorrect), TokenDamaged},
		{"any other failure", errors.New("boom"), TokenError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.code, Of(tc.err))
		})
	}
}

func TestClassOf(t *testing.T) {
	for code, class := range map[string]Class{
		TokenDamaged: ClassToken, PINNotInitialized: ClassToken, TokenError: ClassToken,
		Cancelled: ClassCancelled, Refused: ClassRefused, "CA_REFUSED": ClassCA, "MY_OWN": ClassScript,
	} {
		assert.Equal(t, class, ClassOf(code), code)
	}
}
