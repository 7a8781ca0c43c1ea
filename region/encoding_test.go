package region

import (
	"maps"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/internal/textenc"
)

// A region file and a message catalog a bank's IT edits in Notepad (CRLF; UTF-8 with a BOM,
// or "Unicode": UTF-16 with a BOM) load as the same file saved as UTF-8 with LF, and a
// mistake in one is still reported at the line the editor shows.
func TestLoadWindowsEncodings(t *testing.T) {
	almaty, err := os.ReadFile("testdata/regions/almaty.yaml")
	require.NoError(t, err)
	kk, err := os.ReadFile("../scripts/messages/kk.yaml")
	require.NoError(t, err)
	crlf := func(b []byte) string { return strings.ReplaceAll(string(b), "\n", "\r\n") }
	fsys := fixtureTree(t)
	want, err := Load(fsys, "almaty")
	require.NoError(t, err)
	wantKK, err := want.Catalog("kk")
	require.NoError(t, err)

	for _, tt := range []struct {
		name   string
		encode func([]byte) []byte
	}{
		{"CRLF", func(b []byte) []byte { return []byte(crlf(b)) }},
		{"UTF-8 BOM CRLF", func(b []byte) []byte { return append([]byte("\xef\xbb\xbf"), crlf(b)...) }},
		{"UTF-16LE BOM CRLF", func(b []byte) []byte { return textenc.UTF16(crlf(b), false) }},
		{"UTF-16BE BOM CRLF", func(b []byte) []byte { return textenc.UTF16(crlf(b), true) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			edited := maps.Clone(fsys) // the same roots file: only the encodings differ
			edited["regions/almaty.yaml"] = &fstest.MapFile{Data: tt.encode(almaty)}
			edited["messages/kk.yaml"] = &fstest.MapFile{Data: tt.encode(kk)}
			edited["regions/bad.yaml"] = &fstest.MapFile{Data: tt.encode([]byte("# a typo on line 3\nlanguage: kk\nca: {timeuot: 5m}\n"))}
			got, err := Load(edited, "almaty")
			require.NoError(t, err)
			assert.Equal(t, want.Map(), got.Map())
			gotKK, err := got.Catalog("kk")
			require.NoError(t, err)
			assert.Equal(t, wantKK, gotKK, "the kk catalog reads the same")

			_, err = Load(edited, "bad")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "regions/bad.yaml:3")
		})
	}
}
