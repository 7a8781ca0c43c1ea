// Package termtext makes untrusted text safe to print on a terminal: token labels and
// serials (set by whoever formatted the token), values recorded in a transcript, file names
// in a bundle. Such text may hold ESC (which starts terminal control sequences: colours,
// cursor moves, title changes, on some terminals worse), CR and LF (which forge lines), or
// Unicode bidirectional controls (which reorder what the reader sees, "Trojan Source").
// Escape shows each as a visible escape instead.
package termtext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every control character, bidirectional control and invalid UTF-8
// byte written as a Go-style escape (\x1b, \n, \u202e), and backslashes doubled so the
// result reads back unambiguously. Ordinary text, Cyrillic and Kazakh included, is as it was.
func Escape(s string) string {
	if Safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isBidiOrInvisibleControl(r) || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// Safe reports whether s prints as it reads: no control characters, no bidirectional
// controls, valid UTF-8, no backslash.
func Safe(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r < 0xa0 || isBidiOrInvisibleControl(r) {
			return false
		}
		i += size
	}
	return true
}

// isBidiOrInvisibleControl: the bidirectional embedding, override and isolate controls,
// the directional marks, and the line and paragraph separators.
func isBidiOrInvisibleControl(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, // LRE RLE PDF LRO RLO
		r >= 0x2066 && r <= 0x2069,            // LRI RLI FSI PDI
		r == 0x200e, r == 0x200f, r == 0x061c, // LRM RLM ALM
		r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

// Lines is Escape for messages meant to span lines: newlines stay (and a CR before one), as
// do tabs and backslashes; every other control, bidirectional control and invalid byte is
// escaped. For text a program composed around untrusted parts (a message naming a token's
// label), where the lines are the program's and the controls can only be the intruder's.
func Lines(s string) string {
	if Safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n' || r == '\t' || r == '\\':
			b.WriteRune(r)
		case r == '\r' && i+1 < len(s) && s[i+1] == '\n':
			b.WriteRune(r)
		default:
			b.WriteString(Escape(s[i : i+size]))
		}
		i += size
	}
	return b.String()
}
