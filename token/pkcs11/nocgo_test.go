//go:build !cgo

package pkcs11

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A build without cgo must refuse a module with a message that says why and what to do,
// not fail later or vaguely: the darwin build from Linux is one.
func TestOpenWithoutCgo(t *testing.T) {
	p, err := Open("/Library/OpenSC/lib/opensc-pkcs11.so")
	require.Error(t, err)
	assert.Nil(t, p)
	assert.ErrorIs(t, err, ErrLoad)
	assert.ErrorIs(t, err, ErrNoCgo)
	assert.Contains(t, err.Error(), "/Library/OpenSC/lib/opensc-pkcs11.so")
	assert.Contains(t, err.Error(), "CGO_ENABLED=0")
	assert.Contains(t, err.Error(), "--soft DIR")
}
