package signing

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/internal/textenc"
)

// A PIN file as Windows tools write it reads as the PIN: a BOM or UTF-16's NULs sent to the
// token would be a wrong PIN, and cost a try.
func TestReadPINFileEncodings(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
		err  string
	}{
		{"echo", []byte("Tb4nRp8w\n"), "Tb4nRp8w", ""},
		{"no newline", []byte("Tb4nRp8w"), "Tb4nRp8w", ""},
		{"Notepad CRLF", []byte("Tb4nRp8w\r\n"), "Tb4nRp8w", ""},
		{"Notepad UTF-8 with BOM", []byte("\xef\xbb\xbfTb4nRp8w\r\n"), "Tb4nRp8w", ""},
		{"PowerShell 5 > (UTF-16LE, BOM, CRLF)", textenc.UTF16("Tb4nRp8w\r\n", false), "Tb4nRp8w", ""},
		{"Set-Content -Encoding Unicode -NoNewline", textenc.UTF16("Tb4nRp8w", false), "Tb4nRp8w", ""},
		{"UTF-16BE with BOM", textenc.UTF16("Tb4nRp8w\r\n", true), "Tb4nRp8w", ""},
		{"Cyrillic in UTF-16", textenc.UTF16("пароль12\r\n", false), "пароль12", ""},
		{"UTF-16 without BOM", textenc.UTF16("Tb4nRp8w\r\n", false)[2:], "", "not UTF-8 text: it holds NUL bytes"},
		{"two lines in UTF-16", textenc.UTF16("Tb4nRp8w\r\nsecond\r\n", false), "", "more than one line"},
		{"empty UTF-16", textenc.UTF16("", false), "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pin.txt")
			require.NoError(t, os.WriteFile(path, tt.data, 0o600))
			var warnings []string
			got, err := ReadPINFile(path, func(w string) { warnings = append(warnings, w) })
			assert.Empty(t, warnings, "a 0600 file is warned about nowhere")
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.Contains(t, err.Error(), path)
				assert.NotContains(t, err.Error(), "Tb4nRp8w", "errors never quote the PIN")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
