package cms

import (
	"fmt"
)

func truncatedf(format string, args ...any) error {
	return fmt.Errorf("truncated: "+format, args...)
}

func notDERf(format string, args ...any) error {
	return fmt.Errorf("not DER: "+format, args...)
}

// maxDepth bounds nesting: a CMS message with certificates nests about a dozen deep, and a
// bound keeps hostile input from recursing without end.
const maxDepth = 64

// toDER re-encodes BER as DER as far as parsing a CMS message needs: indefinite lengths
// become definite, non-minimal lengths minimal, and constructed OCTET STRINGs (how streaming
// signers such as `openssl cms -stream` and many Java tools write the content) become one
// primitive OCTET STRING. DER input comes back byte for byte. RFC 5652 has the signature over
// the DER form of the signed attributes, so re-encoding them is what a verifier must do anyway.
// Errors name the offset, and say "truncated" when the input ends inside an element.
func toDER(in []byte) ([]byte, error) {
	out, end, err := appendDER(make([]byte, 0, len(in)), in, 0, 0)
	if err != nil {
		return nil, err
	}
	if end != len(in) {
		return nil, fmt.Errorf("%d bytes of trailing data after the message (which ends at offset %d)", len(in)-end, end)
	}
	return out, nil
}

// appendDER reads one BER element at in[off:], appends its DER form to dst, and returns the
// offset after the element. in is cut at the end of the enclosing definite-length element,
// so a child cannot claim bytes beyond its parent.
func appendDER(dst, in []byte, off, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return nil, 0, notDERf("nested more than %d deep at offset %d", maxDepth, off)
	}
	start := off
	if off >= len(in) {
		return nil, 0, truncatedf("element expected at offset %d", off)
	}
	first := in[off]
	off++
	constructed := first&0x20 != 0
	if first&0x1f == 0x1f { // high tag number: base-128 continuation bytes
		for n := 0; ; n++ {
			if off >= len(in) {
				return nil, 0, truncatedf("tag at offset %d", start)
			}
			if n == 4 {
				return nil, 0, notDERf("tag at offset %d is too long", start)
			}
			b := in[off]
			off++
			if b&0x80 == 0 {
				break
			}
		}
	}
	tag := in[start:off]
	if off >= len(in) {
		return nil, 0, truncatedf("length of the element at offset %d", start)
	}
	lb := in[off]
	off++
	indefinite := false
	length := 0
	switch {
	case lb < 0x80:
		length = int(lb)
	case lb == 0x80:
		if !constructed {
			return nil, 0, notDERf("primitive element at offset %d has an indefinite length", start)
		}
		indefinite = true
	case lb == 0xff:
		return nil, 0, notDERf("element at offset %d has a reserved length octet", start)
	default:
		n := int(lb & 0x7f)
		if n > 4 {
			return nil, 0, notDERf("element at offset %d has a %d-byte length", start, n)
		}
		if off+n > len(in) {
			return nil, 0, truncatedf("length of the element at offset %d", start)
		}
		for _, b := range in[off : off+n] {
			length = length<<8 | int(b)
		}
		off += n
		if length < 0 {
			return nil, 0, notDERf("element at offset %d has an impossible length", start)
		}
	}
	if !indefinite && length > len(in)-off {
		return nil, 0, truncatedf("element at offset %d needs %d bytes, %d remain", start, length, len(in)-off)
	}
	if !constructed {
		return appendElement(dst, tag, in[off:off+length]), off + length, nil
	}

	// Children: up to the end-of-contents octets, or to the end of the definite length.
	var body []byte
	var err error
	if indefinite {
		for {
			if off+1 < len(in) && in[off] == 0 && in[off+1] == 0 {
				off += 2
				break
			}
			if off >= len(in) {
				return nil, 0, truncatedf("no end-of-contents for the element at offset %d", start)
			}
			if body, off, err = appendDER(body, in, off, depth+1); err != nil {
				return nil, 0, err
			}
		}
	} else {
		end := off + length
		for off < end {
			if body, off, err = appendDER(body, in[:end], off, depth+1); err != nil {
				return nil, 0, err
			}
		}
	}
	if len(tag) == 1 && first == 0x24 { // constructed OCTET STRING: join the segments
		flat, err := joinOctetStrings(body, start)
		if err != nil {
			return nil, 0, err
		}
		return appendElement(dst, []byte{0x04}, flat), off, nil
	}
	return appendElement(dst, tag, body), off, nil
}

// joinOctetStrings concatenates the contents of a run of DER primitive OCTET STRINGs.
func joinOctetStrings(body []byte, at int) ([]byte, error) {
	var flat []byte
	for len(body) > 0 {
		if body[0] != 0x04 {
			return nil, notDERf("constructed OCTET STRING at offset %d holds a segment with tag 0x%02x", at, body[0])
		}
		hdr, n := derLength(body)
		flat = append(flat, body[hdr:hdr+n]...)
		body = body[hdr+n:]
	}
	return flat, nil
}

// derLength reads the header of a DER element written by appendElement.
func derLength(b []byte) (header, length int) {
	lb := b[1]
	if lb < 0x80 {
		return 2, int(lb)
	}
	n := int(lb & 0x7f)
	for _, c := range b[2 : 2+n] {
		length = length<<8 | int(c)
	}
	return 2 + n, length
}

func appendElement(dst, tag, content []byte) []byte {
	dst = append(dst, tag...)
	return append(appendLength(dst, uint64(len(content))), content...)
}

// appendLength appends a DER length: short form below 128, else the fewest octets (n below
// 2^32: MaxStreamDocument keeps streamed content there).
func appendLength(dst []byte, n uint64) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 1<<8:
		return append(dst, 0x81, byte(n))
	case n < 1<<16:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
