package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/internal/textenc"
)

// The encodings and line ends Windows editors write: Notepad (UTF-8, with a BOM before
// Windows 10 1903, or "Unicode": UTF-16LE with a BOM), PowerShell 5's > and Out-File
// (UTF-16LE with a BOM), and CRLF everywhere. An answers file, and a PIN file it names,
// must read the same in each: a PIN read with its BOM or NULs would cost a try.
var windowsEncodings = []struct {
	name   string
	encode func(string) []byte
}{
	{"UTF-8 LF", func(s string) []byte { return []byte(s) }},
	{"UTF-8 CRLF", func(s string) []byte { return []byte(crlf(s)) }},
	{"UTF-8 BOM CRLF", func(s string) []byte { return append([]byte("\xef\xbb\xbf"), crlf(s)...) }},
	{"UTF-16LE BOM CRLF", func(s string) []byte { return textenc.UTF16(crlf(s), false) }},
	{"UTF-16BE BOM CRLF", func(s string) []byte { return textenc.UTF16(crlf(s), true) }},
	{"UTF-16LE BOM LF", func(s string) []byte { return textenc.UTF16(s, false) }},
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestAnswersWindowsEncodings(t *testing.T) {
	for _, enc := range windowsEncodings {
		t.Run(enc.name, func(t *testing.T) {
			dir := t.TempDir()
			pinFile := filepath.Join(dir, "otp.txt")
			require.NoError(t, os.WriteFile(pinFile, enc.encode("AB1CD0EFG2H\n"), 0o600))
			answers := filepath.Join(dir, "answers.yaml")
			src := "# the client's answers\n" +
				"user_id: qq111111_qwertyui\n" +
				"token_label: ТОО «Ақ жол»\n" +
				"otp_pin: {file: '" + pinFile + "'}\n" +
				"note: |\n  two\n  lines\n"
			require.NoError(t, os.WriteFile(answers, enc.encode(src), 0o600))

			a, err := LoadAnswers(answers, AnswersOptions{})
			require.NoError(t, err)
			for _, tt := range []struct {
				p    Prompt
				want string
			}{
				{Prompt{ID: "user_id"}, "qq111111_qwertyui"},
				{Prompt{ID: "token_label"}, "ТОО «Ақ жол»"},
				{Prompt{ID: "otp_pin", Kind: Secret, Validate: validPIN}, "AB1CD0EFG2H"},
				{Prompt{ID: "note"}, "two\nlines"}, // as in a file with LF: the last line end dropped
			} {
				got, err := a.Ask(context.Background(), tt.p)
				require.NoError(t, err, tt.p.ID)
				assert.Equal(t, tt.want, got, tt.p.ID)
			}

			// Errors still name the line a person sees in the editor.
			bad := filepath.Join(dir, "bad.yaml")
			require.NoError(t, os.WriteFile(bad, enc.encode("user_id: qq1\n\nuser_id: qq2\n"), 0o600))
			_, err = LoadAnswers(bad, AnswersOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), bad+":3: prompt 'user_id' is answered twice (first on line 1)")
		})
	}
}

// UTF-16 without a BOM cannot be told apart from other bytes: it is refused with a message
// that says what to do, never read as answers or a PIN.
func TestAnswersUTF16WithoutBOM(t *testing.T) {
	dir := t.TempDir()
	answers := filepath.Join(dir, "answers.yaml")
	require.NoError(t, os.WriteFile(answers, textenc.UTF16("user_id: qq1\r\n", false)[2:], 0o600))
	_, err := LoadAnswers(answers, AnswersOptions{})
	require.ErrorIs(t, err, textenc.ErrEncoding)
	assert.Contains(t, err.Error(), answers+": not UTF-8 text: it holds NUL bytes")
	assert.Contains(t, err.Error(), "save it as UTF-8")

	pinFile := filepath.Join(dir, "otp.txt")
	require.NoError(t, os.WriteFile(pinFile, textenc.UTF16("AB1CD0EFG2H", false)[2:], 0o600))
	a, err := ParseAnswers([]byte("otp_pin: {file: '"+pinFile+"'}\n"), AnswersOptions{})
	require.NoError(t, err)
	_, err = a.Ask(context.Background(), Prompt{ID: "otp_pin", Kind: Secret})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "names the file "+pinFile+", which is not UTF-8 text: it holds NUL bytes")
	assert.NotContains(t, err.Error(), "AB1CD0EFG2H", "errors never quote a secret")
}
