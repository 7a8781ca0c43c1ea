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
