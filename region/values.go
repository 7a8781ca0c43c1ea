package region

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pattern is a regular expression from the configuration (RE2 syntax). It must match the whole
// input, whether or not it is written with ^ and $: a pattern meant to check an ID must not
// accept an ID with junk around it.
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// NewPattern compiles expr.
func NewPattern(expr string) (Pattern, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return Pattern{}, err // reported on the expression as written, not our anchored one
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{src: expr, re: re}, nil
}

// String is the expression as written.
func (p Pattern) String() string { return p.src }

// MatchString reports whether s matches the whole pattern; the zero Pattern matches anything.
func (p Pattern) MatchString(s string) bool { return p.re == nil || p.re.MatchString(s) }

func (p *Pattern) decodeNode(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "expected a regular expression, got " + describe(n)
	}
	c, err := NewPattern(n.Value)
	if err != nil {
		return fmt.Sprintf("the regular expression %q does not compile: %v (the syntax is RE2: https://github.com/google/re2/wiki/Syntax)", n.Value, unwrapRegexp(err))
	}
	*p = c
	return ""
}

// unwrapRegexp drops the package's prefix: the message already says it is a regular
// expression.
func unwrapRegexp(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// AttrValue is a template attribute's value as the configuration writes it: true or false, a
// number (a CK_ULONG), or raw bytes as a quoted hex string. Quoting decides: 0102 is the
// number 102, "0102" the two bytes 01 02.
type AttrValue struct {
	Kind   AttrKind
	Bool   bool
	Number uint64
	Bytes  []byte
}

// AttrKind is the kind of an AttrValue.
type AttrKind int

const (
	AttrUnset  AttrKind = iota // no value written
	AttrBool                   // true or false: one byte, CK_BBOOL
	AttrNumber                 // a CK_ULONG
	AttrBytes                  // raw bytes, written as a quoted hex string
)

// maxExact is the largest integer a Lua number (a float64) holds exactly: configuration
// numbers reach scripts as Lua numbers, so a larger one would arrive changed.
const maxExact = 1 << 53

func (a *AttrValue) decodeNode(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				*a = AttrValue{Kind: AttrBool, Bool: b}
				return ""
			}
		case "!!int":
			u, err := parseUint(n.Value)
			if err != nil {
				return fmt.Sprintf("expected a number from 0 to 2^53, got %q", n.Value)
			}
			*a = AttrValue{Kind: AttrNumber, Number: u}
			return ""
		case "!!str":
			b, err := hex.DecodeString(strings.TrimPrefix(n.Value, "0x"))
			if err != nil {
				return fmt.Sprintf("a text value must be hex-encoded bytes such as \"06082a\", got %q", n.Value)
			}
			*a = AttrValue{Kind: AttrBytes, Bytes: b}
			return ""
		}
	}
	return "expected true, false, a number or a quoted hex string, got " + describe(n)
}

// plain is the value as a script and the token module's templates take it.
func (a AttrValue) plain() any {
	switch a.Kind {
	case AttrBool:
		return a.Bool
	case AttrNumber:
		return a.Number
	case AttrBytes:
		return hex.EncodeToString(a.Bytes)
	}
	return nil
}
