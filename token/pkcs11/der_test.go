//go:build cgo

package pkcs11

import (
	"encoding/asn1"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestECDSADER compares the hand-written encoding with encoding/asn1 on awkward values:
// leading zeros, top bits set, zero, and P-521 sizes that need a long-form length.
func TestECDSADER(t *testing.T) {
	pad := func(n int, b ...byte) []byte { return append(make([]byte, n-len(b)), b...) }
	ff := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		return b
	}
	tests := []struct {
		name string
		r, s []byte
	}{
		{"small", pad(32, 1), pad(32, 2)},
		{"top bit set", ff(32), ff(32)},
		{"zero", make([]byte, 32), pad(32, 0x80)},
		{"p384", ff(48), pad(48, 0x7f, 1)},
		{"p521 long form", ff(66), ff(66)},
	}
	for _, tt := range tests {
		got, err := ecdsaDER(append(append([]byte(nil), tt.r...), tt.s...))
		require.NoError(t, err)
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(tt.r), new(big.Int).SetBytes(tt.s)})
		require.NoError(t, err)
		assert.Equal(t, want, got, tt.name)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}} {
		_, err := ecdsaDER(bad)
		assert.Error(t, err)
	}
}
