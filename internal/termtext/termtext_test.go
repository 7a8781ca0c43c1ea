package termtext

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"KAZTOKEN":              "KAZTOKEN",
		"Токен Алматы":          "Токен Алматы",
		"Қазақстан":             "Қазақстан",
		"\x1b]0;pwned\x07label": `\x1b]0;pwned\x07label`,
		"\x1b[2J":               `\x1b[2J`,
		"line\nforged: ok\r":    `line\nforged: ok\r`,
		"admin\u202egnp.exe":    `admin\u202egnp.exe`,
		"a\u2066b\u2069":        `a\u2066b\u2069`,
		"bad\xffutf8":           `bad\xffutf8`,
		`back\slash`:            `back\\slash`,
		"c1\u009bcontrol":       `c1\u009bcontrol`,
		"tab\there":             `tab\there`,
		"":                      "",
	} {
		assert.Equal(t, want, Escape(in), "%q", in)
		assert.Equal(t, in == want, Safe(in), "%q", in)
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b[31mred\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if !Safe(e) && e != s {
			// Only backslashes may remain unsafe in an escaped string.
			for _, r := range e {
				if r < 0x20 || r == 0x7f || isBidiOrInvisibleControl(r) || (r >= 0x80 && r < 0xa0) {
					t.Fatalf("Escape(%q) = %q still holds %U", s, e, r)
				}
			}
		}
	})
}

func TestLines(t *testing.T) {
	assert.Equal(t, "Token: \\x1b[2JKAZ\nnext line\r\n\tC:\\dir", Lines("Token: \x1b[2JKAZ\nnext line\r\n\tC:\\dir"))
	assert.Equal(t, `a\u202eb\rc`, Lines("a\u202eb\rc"))
}
