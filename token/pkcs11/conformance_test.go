//go:build cgo

package pkcs11

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/conformance"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

func providerFor(t *testing.T, tt p11test.Token) token.Provider {
	p, err := Open(tt.Module)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformanceSoftHSM(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		Name: "softhsm2",
		New: func(t *testing.T) token.Provider {
			p11test.SoftHSM(t)
			return providerFor(t, p11test.SoftHSMToken(t, shLabel, shSOPIN, shUserPIN))
		},
		Label:   shLabel,
		UserPIN: shUserPIN,
		SOPIN:   shSOPIN,
		// SoftHSM2 never locks a PIN (its maintainers declined lockout).
		UserMaxTries: 0,
		SOMaxTries:   0,
	})
}

func TestConformanceOpenCryptoki(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		Name:         "opencryptoki",
		New:          func(t *testing.T) token.Provider { return providerFor(t, p11test.OpenCryptoki(t)) },
		Label:        p11test.OpenCryptokiLabel,
		UserPIN:      p11test.OpenCryptokiUserPIN,
		SOPIN:        p11test.OpenCryptokiSOPIN,
		UserMaxTries: 3,
		SOMaxTries:   3,
		// This build's software token has RSA only.
		Unsupported: []string{"ec-p256", "ec-p384", "ed25519"},
	})
}
