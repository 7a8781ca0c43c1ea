package cms

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestToDER(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"der unchanged", "3006020101040141", "3006020101040141", ""},
		{"indefinite sequence", "3080020101040141" + "0000", "3006020101040141", ""},
		{"nested indefinite", "3080308002010100000000", "30053003020101", ""},
		{"constructed octet string", "2480040241420401430000", "0403414243", ""},
		{"nested constructed octet string", "248024800401410000040142" + "0000", "04024142", ""},
		{"definite constructed octet string", "2406040141040142", "04024142", ""},
		{"trailing data", "30030201010000", "", "2 bytes of trailing data"},
		{"long form made short", "308103020101", "3003020101", ""},
		{"high tag number", "9f81020141", "9f81020141", ""},
		{"missing end-of-contents", "3080020101", "", "truncated: no end-of-contents"},
		{"length beyond input", "3005020101", "", "truncated: element at offset 0 needs 5 bytes, 3 remain"},
		{"child beyond parent", "300302020101", "", "truncated: element at offset 2 needs 2 bytes, 1 remain"},
		{"indefinite primitive", "0480414200", "", "not DER: primitive element"},
		{"reserved length", "30ff", "", "reserved length"},
		{"huge length", "3085ffffffffff", "", "5-byte length"},
		{"octet string with other segment", "2480020101" + "0000", "", "segment with tag 0x02"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := hex.DecodeString(tc.in)
			require.NoError(t, err)
			got, err := toDER(in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, hex.EncodeToString(got))
		})
	}
}

func TestToDERDepthLimit(t *testing.T) {
	in := []byte{}
	for i := 0; i < 100; i++ {
		in = append(in, 0x30, 0x80)
	}
	for i := 0; i < 100; i++ {
		in = append(in, 0, 0)
	}
	_, err := toDER(in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nested more than")
}
