package textenc

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	const text = "user_id: qq111111_qwertyui\r\ntoken_label: ТОО Ақ жол 😀\r\n"
	tests := []struct {
		name string
		in   []byte
		want string // "" with err
		err  string
	}{
		{"UTF-8", []byte(text), text, ""},
		{"UTF-8 with BOM (Notepad, Excel)", append([]byte{0xef, 0xbb, 0xbf}, text...), text, ""},
		{"UTF-16LE with BOM (Notepad Unicode, PowerShell 5)", UTF16(text, false), text, ""},
		{"UTF-16BE with BOM", UTF16(text, true), text, ""},
		{"empty", nil, "", ""},
		{"UTF-16LE BOM only", []byte{0xff, 0xfe}, "", ""},
		{"Latin-1 passes for the reader to judge", []byte("caf\xe9"), "caf\xe9", ""},
		{"UTF-16LE without BOM", UTF16(text, false)[2:], "", "NUL bytes"},
		{"odd length", append(UTF16("1234", false), '5'), "", "odd number of bytes"},
		{"NUL inside UTF-16", UTF16("12\x0034", false), "", "NUL character"},
		{"lone high surrogate at the end", binary.LittleEndian.AppendUint16([]byte{0xff, 0xfe}, 0xd83d), "", "half a character"},
		{"high surrogate then a letter", binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16([]byte{0xff, 0xfe}, 0xd83d), 'a'), "", "invalid UTF-16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrEncoding)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}
