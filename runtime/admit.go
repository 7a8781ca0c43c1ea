package runtime

import (
	"fmt"
)

// gopher-lua's compiler recurses once per nesting level of the syntax tree
// and cannot be stopped: a million nested "not" or "{" is a fatal Go stack
// overflow (not a panic anyone can recover), and a chain of 300,000 ".."
// compiles for over a minute. Admit refuses such source before the parser
// sees it, from a single lexical pass.
const (
	// MaxSourceSize is the largest script or library file compiled: the
	// biggest shipped procedure is about 11 KiB.
	MaxSourceSize = 1 << 20
	// MaxNesting bounds brackets, blocks (function, do, if, repeat), elseif
	// branches of the open ifs and unary operators open at once; Lua's own
	// parser stops at 200 C levels.
	MaxNesting = 200
	// MaxExpressionTerms bounds the operators (binary operators, field and
	// method access, calls and indexing) chained in one expression: each is a
	// level of the compiler's recursion. Written code chains a few dozen.
	MaxExpressionTerms = 1000
)

// Admit checks that src is small and shallow enough to be compiled safely.
// It looks at tokens only: what it accepts may still be a syntax error,
// which the parser reports. A refusal is a *ScriptError with the line.
func Admit(name string, src []byte) error {
	if len(src) > MaxSourceSize {
		return &ScriptError{File: name, Message: fmt.Sprintf("the source is %d bytes, more than the %d KiB a script may have", len(src), MaxSourceSize>>10)}
	}
	a := admitter{src: src, line: 1, chains: make([]int, 1, 16), elseifs: make([]int, 1, 16)}
	return a.scan(name)
}

const tooDeep = "nesting too deep: more than %d brackets, blocks, elseif branches and unary operators open at once"

type admitter struct {
	src    []byte
	i      int
	line   int
	depth  int   // brackets and blocks open
	unary  int   // unary operators in a row
	chains []int // operators chained at each bracket level
	// elseifs counts the elseif branches of each open block: the compiler
	// nests each one inside the previous, so they count as nesting until
	// the block's end.
	elseifs []int
	// value is whether the last token ends an operand (a name, literal,
	// closing bracket): then '-' is binary and '(' '[' '{' or a string is a
	// call or index on it.
	value bool
}

func (a *admitter) fail(name, format string, args ...any) error {
	return &ScriptError{File: name, Line: a.line, Message: fmt.Sprintf(format, args...)}
}

func (a *admitter) open(name string) error {
	a.depth++
	if a.depth+a.unary > MaxNesting {
		return a.fail(name, tooDeep, MaxNesting)
	}
	return nil
}

func (a *admitter) term(name string) error {
	a.chains[len(a.chains)-1]++
	if a.chains[len(a.chains)-1] > MaxExpressionTerms {
		return a.fail(name, "expression too long: more than %d operators, calls and field accesses in a row", MaxExpressionTerms)
	}
	return nil
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func (a *admitter) scan(name string) error {
	src := a.src
	for a.i < len(src) {
		c := src[a.i]
		switch {
		case c == '\n':
			a.line++
			a.i++
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			a.i++
			continue
		case c == '-' && a.i+1 < len(src) && src[a.i+1] == '-':
			a.i += 2
			if lvl, ok := a.longBracket(); ok {
				a.skipLong(lvl)
			} else {
				for a.i < len(src) && src[a.i] != '\n' {
					a.i++
				}
			}
			continue
		}
		wasValue := a.value
		a.value = false
		switch {
		case c == '"' || c == '\'':
			a.skipQuoted(c)
			if wasValue {
				if err := a.term(name); err != nil { // f"str"
					return err
				}
			}
			a.value, a.unary = true, 0
		case c == '[':
			if lvl, ok := a.longBracket(); ok {
				a.skipLong(lvl)
				if wasValue {
					if err := a.term(name); err != nil {
						return err
					}
				}
				a.value, a.unary = true, 0
				continue
			}
			fallthrough
		case c == '(' || c == '{':
			a.i++
			if wasValue {
				if err := a.term(name); err != nil { // call or index
					return err
				}
			}
			// The operand inside starts with no unary operators of its own,
			// but those before it stay open until it closes.
			if err := a.open(name); err != nil {
				return err
			}
			a.chains = append(a.chains, 0)
		case c == ')' || c == ']' || c == '}':
			a.i++
			if a.depth > 0 {
				a.depth--
			}
			if len(a.chains) > 1 {
				a.chains = a.chains[:len(a.chains)-1]
			}
			a.value, a.unary = true, 0
		case c >= '0' && c <= '9' || c == '.' && a.i+1 < len(src) && src[a.i+1] >= '0' && src[a.i+1] <= '9':
			a.skipNumber()
			a.value, a.unary = true, 0
		case isNameByte(c):
			start := a.i
			for a.i < len(src) && isNameByte(src[a.i]) {
				a.i++
			}
			if err := a.word(name, string(src[start:a.i])); err != nil {
				return err
			}
		case c == ',' || c == ';' || c == '=' && !(a.i+1 < len(src) && src[a.i+1] == '='):
			a.i++
			a.chains[len(a.chains)-1] = 0
			a.unary = 0
		case c == '#' || c == '-' && !wasValue:
			a.i++
			a.unary++
			if a.depth+a.unary > MaxNesting {
				return a.fail(name, tooDeep, MaxNesting)
			}
		case c == '.' && a.i+2 < len(src) && src[a.i+1] == '.' && src[a.i+2] == '.':
			a.i += 3
			a.value, a.unary = true, 0
		default:
			// Binary operators and '.', ':' (one or two bytes).
			a.i++
			if a.i < len(src) && (c == '.' && src[a.i] == '.' || src[a.i] == '=' && (c == '=' || c == '~' || c == '<' || c == '>') || c == ':' && src[a.i] == ':') {
				a.i++
			}
			a.unary = 0
			if err := a.term(name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *admitter) word(name, w string) error {
	switch w {
	case "function", "do", "if", "repeat":
		a.chains[len(a.chains)-1] = 0
		a.unary = 0
		if err := a.open(name); err != nil {
			return err
		}
		// A block's statements are chained apart from what surrounds it.
		a.chains = append(a.chains, 0)
		a.elseifs = append(a.elseifs, 0)
	case "elseif":
		a.chains[len(a.chains)-1] = 0
		a.unary = 0
		a.elseifs[len(a.elseifs)-1]++
		return a.open(name)
	case "end", "until":
		if a.depth > 0 {
			a.depth--
		}
		if len(a.elseifs) > 1 {
			a.depth = max(0, a.depth-a.elseifs[len(a.elseifs)-1])
			a.elseifs = a.elseifs[:len(a.elseifs)-1]
		}
		if len(a.chains) > 1 {
			a.chains = a.chains[:len(a.chains)-1]
		}
		a.chains[len(a.chains)-1] = 0
		a.unary = 0
		a.value = w == "end" // function ... end can be an operand
	case "not":
		a.unary++
		if a.depth+a.unary > MaxNesting {
			return a.fail(name, tooDeep, MaxNesting)
		}
	case "and", "or":
		a.unary = 0
		return a.term(name)
	case "nil", "true", "false":
		a.value, a.unary = true, 0
	case "local", "return", "then", "else", "while", "for", "in", "break", "goto":
		a.chains[len(a.chains)-1] = 0
		a.unary = 0
	default:
		a.value, a.unary = true, 0
	}
	return nil
}

// longBracket reports a long bracket opening at a.i ("[[", "[=[", ...) and
// consumes it.
func (a *admitter) longBracket() (int, bool) {
	src := a.src
	if a.i >= len(src) || src[a.i] != '[' {
		return 0, false
	}
	j := a.i + 1
	for j < len(src) && src[j] == '=' {
		j++
	}
	if j < len(src) && src[j] == '[' {
		lvl := j - a.i - 1
		a.i = j + 1
		return lvl, true
	}
	return 0, false
}

func (a *admitter) skipLong(lvl int) {
	src := a.src
	for a.i < len(src) {
		c := src[a.i]
		a.i++
		if c == '\n' {
			a.line++
			continue
		}
		if c != ']' {
			continue
		}
		j := a.i
		for j < len(src) && src[j] == '=' {
			j++
		}
		if j-a.i == lvl && j < len(src) && src[j] == ']' {
			a.i = j + 1
			return
		}
	}
}

func (a *admitter) skipQuoted(q byte) {
	src := a.src
	a.i++
	for a.i < len(src) {
		c := src[a.i]
		a.i++
		switch c {
		case q:
			return
		case '\\':
			if a.i < len(src) {
				if src[a.i] == '\n' {
					a.line++
				}
				a.i++
			}
		case '\n':
			a.line++
			return // unfinished string: the parser says so
		}
	}
}

func (a *admitter) skipNumber() {
	src := a.src
	for a.i < len(src) {
		c := src[a.i]
		if (c == '+' || c == '-') && a.i > 0 && (src[a.i-1] == 'e' || src[a.i-1] == 'E') && !hexNumberBefore(src, a.i) {
			a.i++
			continue
		}
		if isNameByte(c) || c == '.' {
			a.i++
			continue
		}
		return
	}
}

// hexNumberBefore reports whether the number ending before i is hex (0x1e-1
// is 0x1e minus 1, not an exponent).
func hexNumberBefore(src []byte, i int) bool {
	j := i - 1
	for j > 0 && (isNameByte(src[j-1]) || src[j-1] == '.') {
		j--
	}
	return j+1 < len(src) && src[j] == '0' && (src[j+1] == 'x' || src[j+1] == 'X')
}
