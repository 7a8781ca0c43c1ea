// Package textenc turns the text files people write on Windows into UTF-8: answers files,
// PIN files, batch lists. Notepad saves "Unicode" as UTF-16 with a byte order mark and
// (before Windows 10 1903) UTF-8 with one; PowerShell 5's `>` and Out-File write UTF-16LE;
// Excel's "CSV UTF-8" starts with a BOM. Read as bytes, such a PIN file is a PIN of NULs and
// BOM bytes, sent to the token as a wrong PIN that costs a try.
//
// Line ends are left alone: YAML and CSV read CRLF themselves, and the PIN readers drop a
// trailing CR.
package textenc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrEncoding is text that is neither UTF-8 nor UTF-16 with a byte order mark.
var ErrEncoding = errors.New("not UTF-8 text")

var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
)

// Decode returns b as UTF-8 without a byte order mark. UTF-16 (little or big endian) needs
// its BOM: without one it cannot be told from other bytes, and text holding NUL bytes is
// refused, since no answer or PIN holds one and UTF-16 without a BOM does. Other bytes pass
// as they are: whether they must be valid UTF-8 is the reader's rule.
func Decode(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, bomUTF8):
		b = b[len(bomUTF8):]
	case bytes.HasPrefix(b, bomUTF16LE):
		return decodeUTF16(b[2:], false)
	case bytes.HasPrefix(b, bomUTF16BE):
		return decodeUTF16(b[2:], true)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, fmt.Errorf("%w: it holds NUL bytes (UTF-16 without a byte order mark?): save it as UTF-8", ErrEncoding)
	}
	return b, nil
}

func decodeUTF16(b []byte, bigEndian bool) ([]byte, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%w: it starts as UTF-16 but has an odd number of bytes: save it again as UTF-8", ErrEncoding)
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		hi, lo := b[2*i+1], b[2*i]
		if bigEndian {
			hi, lo = lo, hi
		}
		units[i] = uint16(hi)<<8 | uint16(lo)
	}
	out := make([]byte, 0, len(units))
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		switch {
		case r == 0:
			return nil, fmt.Errorf("%w: it holds a NUL character", ErrEncoding)
		case utf16.IsSurrogate(r):
			if i+1 >= len(units) {
				return nil, fmt.Errorf("%w: its UTF-16 ends in half a character", ErrEncoding)
			}
			r = utf16.DecodeRune(r, rune(units[i+1]))
			if r == utf8.RuneError {
				return nil, fmt.Errorf("%w: it holds an invalid UTF-16 character", ErrEncoding)
			}
			i++
		}
		out = utf8.AppendRune(out, r)
	}
	return out, nil
}

// UTF16 is s as Windows writes "Unicode" text: a byte order mark, then UTF-16 code units,
// little endian unless bigEndian. For tests of readers of such files.
func UTF16(s string, bigEndian bool) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	if bigEndian {
		order = binary.BigEndian
	}
	b := order.AppendUint16(nil, 0xfeff)
	for _, u := range utf16.Encode([]rune(s)) {
		b = order.AppendUint16(b, u)
	}
	return b
}
