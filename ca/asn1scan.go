package ca

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file reads just enough BER/DER to explain a key container go-pkcs12 cannot open: where
// the structure is cut short, and which algorithm OIDs it uses. go-pkcs12 stops at the first
// thing it does not support and its messages vary ("MAC digest algorithm not supported: ...",
// "unknown algorithm: ..."), so a GOST container is recognised here, from the OIDs themselves,
// before go-pkcs12 is asked to open it.

// errTruncated is returned when an element claims more bytes than the input has.
var errTruncated = errors.New("truncated")

// Limits that keep a hostile file from costing more than a glance.
const (
	maxASN1Depth    = 48
	maxASN1Elements = 100000
)

// element is one BER element. content excludes the header and, for the indefinite-length
// form, the end-of-contents octets.
type element struct {
	class       byte // 0 universal, 1 application, 2 context-specific, 3 private
	constructed bool
	tag         int
	content     []byte
	size        int // bytes consumed: header, content and end-of-contents
	missing     int // for errTruncated: how many bytes the element lacks
}

// parseElement reads the element at the start of b.
func parseElement(b []byte, depth int) (element, error) {
	var e element
	if depth > maxASN1Depth {
		return e, errors.New("nested too deeply")
	}
	if len(b) < 2 {
		e.missing = 2 - len(b)
		return e, errTruncated
	}
	e.class = b[0] >> 6
	e.constructed = b[0]&0x20 != 0
	e.tag = int(b[0] & 0x1f)
	i := 1
	if e.tag == 0x1f { // high tag number form
		e.tag = 0
		for {
			if i >= len(b) {
				e.missing = 1
				return e, errTruncated
			}
			c := b[i]
			i++
			if e.tag > 1<<22 {
				return e, errors.New("tag number too large")
			}
			e.tag = e.tag<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		e.missing = 1
		return e, errTruncated
	}
	l := int(b[i])
	i++
	if l == 0x80 { // indefinite length: children up to end-of-contents
		if !e.constructed {
			return e, errors.New("indefinite length on a primitive element")
		}
		start := i
		for {
			if len(b)-i < 2 {
				e.missing = 2 - (len(b) - i)
				return e, errTruncated
			}
			if b[i] == 0 && b[i+1] == 0 {
				e.content = b[start:i]
				e.size = i + 2
				return e, nil
			}
			child, err := parseElement(b[i:], depth+1)
			if err != nil {
				e.missing = child.missing
				return e, err
			}
			i += child.size
		}
	}
	if l&0x80 != 0 {
		k := l & 0x7f
		if k > 4 {
			return e, fmt.Errorf("length of %d bytes is too large", k)
		}
		if len(b)-i < k {
			e.missing = k - (len(b) - i)
			return e, errTruncated
		}
		l = 0
		for _, c := range b[i : i+k] {
			l = l<<8 | int(c)
		}
		i += k
	}
	if len(b)-i < l {
		e.missing = l - (len(b) - i)
		return e, errTruncated
	}
	e.content = b[i : i+l]
	e.size = i + l
	return e, nil
}

// children parses the elements inside a constructed element.
func (e element) children(depth int) ([]element, error) {
	var out []element
	b := e.content
	for len(b) > 0 {
		c, err := parseElement(b, depth+1)
		if err != nil {
			return out, err
		}
		out = append(out, c)
		b = b[c.size:]
	}
	return out, nil
}

func (e element) is(class byte, constructed bool, tag int) bool {
	return e.class == class && e.constructed == constructed && e.tag == tag
}

func (e element) isSequence() bool { return e.is(0, true, 16) }

// oid decodes a primitive OBJECT IDENTIFIER's content.
func (e element) oid() (asn1.ObjectIdentifier, bool) {
	if !e.is(0, false, 6) || len(e.content) == 0 {
		return nil, false
	}
	var oid asn1.ObjectIdentifier
	v := 0
	for i, c := range e.content {
		if v > 1<<24 {
			return nil, false
		}
		v = v<<7 | int(c&0x7f)
		if c&0x80 != 0 {
			if i == len(e.content)-1 {
				return nil, false
			}
			continue
		}
		if len(oid) == 0 {
			switch {
			case v < 40:
				oid = append(oid, 0, v)
			case v < 80:
				oid = append(oid, 1, v-40)
			default:
				oid = append(oid, 2, v-80)
			}
		} else {
			oid = append(oid, v)
		}
		v = 0
	}
	return oid, true
}

// walkOIDs calls visit for every OBJECT IDENTIFIER in b, in document order, looking inside
// OCTET STRINGs that themselves hold BER (PKCS#12 nests its safes that way). It stops early
// when visit returns false. Malformed parts are skipped: this is for explaining, not parsing.
func walkOIDs(b []byte, visit func(asn1.ObjectIdentifier) bool) {
	budget := maxASN1Elements
	var walk func(b []byte, depth int) bool
	walk = func(b []byte, depth int) bool {
		for len(b) > 0 {
			budget--
			if budget < 0 || depth > maxASN1Depth {
				return false
			}
			e, err := parseElement(b, depth)
			if err != nil {
				return true
			}
			b = b[e.size:]
			switch {
			case e.constructed:
				if !walk(e.content, depth+1) {
					return false
				}
			case e.is(0, false, 6):
				if oid, ok := e.oid(); ok && !visit(oid) {
					return false
				}
			case e.is(0, false, 4) && len(e.content) > 1 && e.content[0]&0x20 != 0:
				// An OCTET STRING that starts like a constructed element may wrap more BER.
				if inner, err := parseElement(e.content, depth+1); err == nil && inner.size == len(e.content) {
					if !walk(e.content, depth+1) {
						return false
					}
				}
			}
		}
		return true
	}
	walk(b, 0)
}

// gostArcs are the OID arcs of GOST algorithms: the Russian ones (GOST R 34.10/34.11, TC 26,
// CryptoPro) and Kazakhstan's (GOST 34.310/34.311 and their 2015 successors).
var gostArcs = []struct {
	prefix string
	family string
}{
	{"1.2.643.", "Russian GOST"},
	{"1.2.398.3.10.", "Kazakh GOST"},
}

// oidNames names the GOST OIDs most likely to appear in a bank's container, so the message a
// person reads says more than digits.
var oidNames = map[string]string{
	"1.2.643.2.2.3":        "GOST R 34.11-94 with GOST R 34.10-2001 signature",
	"1.2.643.2.2.9":        "GOST R 34.11-94 hash",
	"1.2.643.2.2.10":       "HMAC with GOST R 34.11-94",
	"1.2.643.2.2.19":       "GOST R 34.10-2001 key",
	"1.2.643.2.2.21":       "GOST 28147-89 cipher",
	"1.2.643.7.1.1.1.1":    "GOST R 34.10-2012 256-bit key",
	"1.2.643.7.1.1.1.2":    "GOST R 34.10-2012 512-bit key",
	"1.2.643.7.1.1.2.2":    "GOST R 34.11-2012 256-bit hash (Streebog-256)",
	"1.2.643.7.1.1.2.3":    "GOST R 34.11-2012 512-bit hash (Streebog-512)",
	"1.2.643.7.1.1.3.2":    "GOST R 34.10-2012 256-bit signature",
	"1.2.643.7.1.1.3.3":    "GOST R 34.10-2012 512-bit signature",
	"1.2.643.7.1.1.4.1":    "HMAC with GOST R 34.11-2012 256-bit",
	"1.2.643.7.1.1.4.2":    "HMAC with GOST R 34.11-2012 512-bit",
	"1.2.398.3.10.1.1.1.1": "GOST 34.310-2004 key",
	"1.2.398.3.10.1.1.1.2": "GOST 34.310-2004 signature",
	"1.2.398.3.10.1.1.2.1": "GOST R 34.10-2015 256-bit key",
	"1.2.398.3.10.1.1.2.2": "GOST R 34.10-2015 512-bit key",
}

// gostName says whether oid is a GOST algorithm and how to name it to a person.
func gostName(oid string) (string, bool) {
	for _, a := range gostArcs {
		if strings.HasPrefix(oid, a.prefix) {
			if n, ok := oidNames[oid]; ok {
				return n, true
			}
			return "a " + a.family + " algorithm", true
		}
	}
	return "", false
}

// oidInText finds the first dotted OID (at least four arcs) in a library's error text.
func oidInText(s string) string {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r == '.' || r >= '0' && r <= '9')
	}) {
		f = strings.Trim(f, ".")
		parts := strings.Split(f, ".")
		if len(parts) < 4 {
			continue
		}
		ok := true
		for _, p := range parts {
			if _, err := strconv.Atoi(p); err != nil || p == "" {
				ok = false
				break
			}
		}
		if ok {
			return f
		}
	}
	return ""
}
