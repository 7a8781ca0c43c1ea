package soft_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/conformance"
	"github.com/tokenrun/tokenrun/token/soft"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		Name: "soft",
		New: func(t *testing.T) token.Provider {
			p, err := soft.Open(soft.Options{Label: "SOFT"}, t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		Label:        "SOFT",
		UserPIN:      "12345678",
		SOPIN:        "87654321",
		UserMaxTries: 10,
		SOMaxTries:   10,
		ExactRetries: true,
	})
}

// TestConformanceReportsNothing runs the suite on the profile "reports nothing, locks after
// 3": the software token made to behave as TPM-backed modules do (soft.Options.NoPINInfo).
func TestConformanceReportsNothing(t *testing.T) {
	conformance.Run(t, conformance.Backend{
		Name: "soft-reports-nothing",
		New: func(t *testing.T) token.Provider {
			dir := t.TempDir()
			require.NoError(t, soft.Create(dir, soft.Options{Label: "TPMLIKE", UserMaxTries: 3, SOMaxTries: 3, NoPINInfo: true}))
			// Opened as tokenrun --soft DIR opens it: default options, the profile is the token's.
			p, err := soft.Open(soft.Options{}, dir)
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		Label:          "TPMLIKE",
		UserPIN:        "12345678",
		SOPIN:          "87654321",
		UserMaxTries:   3,
		SOMaxTries:     3,
		ReportsNothing: true,
	})
}
