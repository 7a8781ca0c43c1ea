// Package luapattern is gopher-lua's Lua pattern matcher
// (github.com/yuin/gopher-lua/pm, v1.1.2) adapted so that one call cannot run
// past its run's deadline or exhaust the Go stack:
//
//   - the matcher counts its steps and checks a done channel every
//     checkEvery steps, so a backtracking pattern over a long subject stops
//     when the run's context ends (gopher-lua checks the context only between
//     VM instructions, and one string.find is a single instruction);
//   - a repetition of one character class (x*, x+, x-) loops instead of
//     recursing once per character, as PUC Lua's max_expand/min_expand do, so
//     the recursion depth follows the pattern, not the subject; it is capped
//     at MaxDepth;
//   - patterns have at most MaxCaptures captures (Lua 5.1's LUA_MAXCAPTURES);
//   - matching is incremental (one match at a time) rather than collecting
//     every match of a subject up front.
//
// Original code: Copyright (c) 2015 Yusuke Inuzuka, MIT License:
//
//	Permission is hereby granted, free of charge, to any person obtaining a copy
//	of this software and associated documentation files (the "Software"), to deal
//	in the Software without restriction, including without limitation the rights
//	to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
//	copies of the Software, and to permit persons to whom the Software is
//	furnished to do so, subject to the following conditions:
//
//	The above copyright notice and this permission notice shall be included in
//	all copies or substantial portions of the Software.
//
//	THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
//	IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
//	FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
//	AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
//	LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
//	OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
//	THE SOFTWARE.
package luapattern

import (
	"errors"
	"fmt"
)

const (
	// MaxCaptures is Lua 5.1's LUA_MAXCAPTURES. It also bounds the parser's
	// recursion, which nests once per open capture.
	MaxCaptures = 32
	// MaxDepth bounds the matcher's recursion. With repetitions looping,
	// the depth grows with the pattern's items and captures, not with the
	// subject; a pattern needing more is refused rather than given the Go
	// stack (gopher-lua allowed a million frames, hundreds of MiB of stack).
	MaxDepth = 10000
	// MaxSubject is the longest subject a match position can address: positions
	// are stored in 31 bits.
	MaxSubject = 1<<31 - 1

	// checkEvery is how many matcher steps pass between two looks at the
	// done channel: a few microseconds of matching, so a stopped run ends
	// promptly and a quick match pays nearly nothing.
	checkEvery = 4096

	eos = -1
)

// ErrStopped is returned when done was closed during a match.
var ErrStopped = errors.New("pattern matching stopped")

// Error is a malformed or too complex pattern.
type Error struct {
	Pos     int // position in the pattern, or -1 (end of pattern), or -2 (none)
	Message string
}

func newError(pos int, message string, args ...any) *Error {
	if len(args) == 0 {
		return &Error{pos, message}
	}
	return &Error{pos, fmt.Sprintf(message, args...)}
}

func (e *Error) Error() string {
	switch e.Pos {
	case eos:
		return fmt.Sprintf("%s at EOS", e.Message)
	case -2:
		return e.Message
	default:
		return fmt.Sprintf("%s at %d", e.Message, e.Pos)
	}
}

// MatchData holds one match's captures. Index 0 and 1 are the whole match;
// 2k and 2k+1 capture k.
type MatchData struct {
	// layout: position<<1, low bit set for a position capture "()"
	captures []uint32
}

func (st *MatchData) addPosCapture(s, pos int) {
	for s+1 >= len(st.captures) {
		st.captures = append(st.captures, 0)
	}
	st.captures[s] = (uint32(pos) << 1) | 1
	st.captures[s+1] = (uint32(pos) << 1) | 1
}

func (st *MatchData) setCapture(s, pos int) uint32 {
	for s >= len(st.captures) {
		st.captures = append(st.captures, 0)
	}
	v := st.captures[s]
	st.captures[s] = uint32(pos) << 1
	return v
}

func (st *MatchData) restoreCapture(s int, pos uint32) { st.captures[s] = pos }

// CaptureLength is twice the number of captures, the whole match included.
func (st *MatchData) CaptureLength() int { return len(st.captures) }

// IsPosCapture reports whether capture idx is a position capture "()".
func (st *MatchData) IsPosCapture(idx int) bool { return (st.captures[idx] & 1) == 1 }

// Capture is the position stored at idx.
func (st *MatchData) Capture(idx int) int { return int(st.captures[idx] >> 1) }

/* scanner */

type scannerState struct {
	Pos     int
	started bool
}

type scanner struct {
	src   []byte
	State scannerState
	saved scannerState
}

func newScanner(src []byte) *scanner { return &scanner{src: src} }

func (sc *scanner) Length() int { return len(sc.src) }

func (sc *scanner) Next() int {
	if !sc.State.started {
		sc.State.started = true
		if len(sc.src) == 0 {
			sc.State.Pos = eos
		}
	} else {
		sc.State.Pos = sc.NextPos()
	}
	if sc.State.Pos == eos {
		return eos
	}
	return int(sc.src[sc.State.Pos])
}

func (sc *scanner) CurrentPos() int { return sc.State.Pos }

func (sc *scanner) NextPos() int {
	if sc.State.Pos == eos || sc.State.Pos >= len(sc.src)-1 {
		return eos
	}
	if !sc.State.started {
		return 0
	}
	return sc.State.Pos + 1
}

func (sc *scanner) Peek() int {
	cureof := sc.State.Pos == eos
	ch := sc.Next()
	if !cureof {
		if sc.State.Pos == eos {
			sc.State.Pos = len(sc.src) - 1
		} else {
			sc.State.Pos--
			if sc.State.Pos < 0 {
				sc.State.Pos = 0
				sc.State.started = false
			}
		}
	}
	return ch
}

func (sc *scanner) Save() { sc.saved = sc.State }

func (sc *scanner) Restore() { sc.State = sc.saved }

/* bytecode */

type opCode int

const (
	opChar opCode = iota
	opMatch
	opTailMatch
	opJmp
	opSplit
	opSave
	opPSave
	opBrace
	opNumber
	opGreedy // Class repeated as often as possible, at least Operand1 times, then backing off
	opLazy   // Class repeated as few times as possible
)

type inst struct {
	OpCode   opCode
	Class    class
	Operand1 int
	Operand2 int
}

/* classes */

type class interface {
	Matches(ch int) bool
}

type dotClass struct{}

func (pn *dotClass) Matches(ch int) bool { return true }

type charClass struct {
	Ch int
}

func (pn *charClass) Matches(ch int) bool { return pn.Ch == ch }

type singleClass struct {
	Class int
}

func (pn *singleClass) Matches(ch int) bool {
	ret := false
	switch pn.Class {
	case 'a', 'A':
		ret = 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z'
	case 'c', 'C':
		ret = (0x00 <= ch && ch <= 0x1F) || ch == 0x7F
	case 'd', 'D':
		ret = '0' <= ch && ch <= '9'
	case 'l', 'L':
		ret = 'a' <= ch && ch <= 'z'
	case 'p', 'P':
		ret = (0x21 <= ch && ch <= 0x2f) || (0x3a <= ch && ch <= 0x40) || (0x5b <= ch && ch <= 0x60) || (0x7b <= ch && ch <= 0x7e)
	case 's', 'S':
		switch ch {
		case ' ', '\f', '\n', '\r', '\t', '\v':
			ret = true
		}
	case 'u', 'U':
		ret = 'A' <= ch && ch <= 'Z'
	case 'w', 'W':
		ret = '0' <= ch && ch <= '9' || 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z'
	case 'x', 'X':
		ret = '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'
	case 'z', 'Z':
		ret = ch == 0
	default:
		return ch == pn.Class
	}
	if 'A' <= pn.Class && pn.Class <= 'Z' {
		return !ret
	}
	return ret
}

type setClass struct {
	IsNot   bool
	Classes []class
}

func (pn *setClass) Matches(ch int) bool {
	for _, class := range pn.Classes {
		if class.Matches(ch) {
			return !pn.IsNot
		}
	}
	return pn.IsNot
}

type rangeClass struct {
	Begin class
	End   class
}

func (pn *rangeClass) Matches(ch int) bool {
	if begin, ok := pn.Begin.(*charClass); ok {
		end, ok := pn.End.(*charClass)
		if !ok {
			return false
		}
		return begin.Ch <= ch && ch <= end.Ch
	}
	return false
}

/* patterns */

type pattern any

type singlePattern struct {
	Class class
}

type seqPattern struct {
	MustHead bool
	MustTail bool
	Patterns []pattern
}

type repeatPattern struct {
	Type  int
	Class class
}

type posCapPattern struct{}

type capPattern struct {
	Pattern pattern
}

type numberPattern struct {
	N int
}

type bracePattern struct {
	Begin int
	End   int
}

/* parse */

type parser struct {
	sc       *scanner
	captures int
}

func parseClass(sc *scanner, allowset bool) class {
	ch := sc.Next()
	switch ch {
	case '%':
		c := sc.Next()
		if c == eos {
			panic(newError(eos, "malformed pattern (ends with '%%')"))
		}
		return &singleClass{c}
	case '.':
		if allowset {
			return &dotClass{}
		}
		return &charClass{ch}
	case '[':
		if allowset {
			return parseClassSet(sc)
		}
		return &charClass{ch}
	case eos:
		panic(newError(sc.CurrentPos(), "unexpected EOS"))
	default:
		return &charClass{ch}
	}
}

func parseClassSet(sc *scanner) class {
	set := &setClass{false, []class{}}
	if sc.Peek() == '^' {
		set.IsNot = true
		sc.Next()
	}
	isrange := false
	for {
		ch := sc.Peek()
		switch ch {
		case eos:
			panic(newError(sc.CurrentPos(), "unexpected EOS"))
		case ']':
			if len(set.Classes) > 0 {
				sc.Next()
				goto exit
			}
			fallthrough
		case '-':
			if len(set.Classes) > 0 {
				sc.Next()
				isrange = true
				continue
			}
			fallthrough
		default:
			set.Classes = append(set.Classes, parseClass(sc, false))
		}
		if isrange {
			begin := set.Classes[len(set.Classes)-2]
			end := set.Classes[len(set.Classes)-1]
			set.Classes = set.Classes[0 : len(set.Classes)-2]
			set.Classes = append(set.Classes, &rangeClass{begin, end})
			isrange = false
		}
	}
exit:
	if isrange {
		set.Classes = append(set.Classes, &charClass{'-'})
	}
	return set
}

func (p *parser) parsePattern(toplevel bool) *seqPattern {
	sc := p.sc
	pat := &seqPattern{}
	if toplevel {
		if sc.Peek() == '^' {
			sc.Next()
			pat.MustHead = true
		}
	}
	for {
		ch := sc.Peek()
		switch ch {
		case '%':
			sc.Save()
			sc.Next()
			switch sc.Peek() {
			case '0':
				panic(newError(sc.CurrentPos(), "invalid capture index"))
			case '1', '2', '3', '4', '5', '6', '7', '8', '9':
				pat.Patterns = append(pat.Patterns, &numberPattern{sc.Next() - 48})
			case 'b':
				sc.Next()
				b, e := sc.Next(), sc.Next()
				if b == eos || e == eos {
					panic(newError(eos, "missing arguments to '%%b'"))
				}
				pat.Patterns = append(pat.Patterns, &bracePattern{b, e})
			default:
				sc.Restore()
				pat.Patterns = append(pat.Patterns, &singlePattern{parseClass(sc, true)})
			}
		case '.', '[', ']':
			pat.Patterns = append(pat.Patterns, &singlePattern{parseClass(sc, true)})
		case ')':
			if toplevel {
				panic(newError(sc.CurrentPos(), "invalid ')'"))
			}
			return pat
		case '(':
			sc.Next()
			p.captures++
			if p.captures > MaxCaptures {
				panic(newError(sc.CurrentPos(), "too many captures (at most %d)", MaxCaptures))
			}
			if sc.Peek() == ')' {
				sc.Next()
				pat.Patterns = append(pat.Patterns, &posCapPattern{})
			} else {
				ret := &capPattern{p.parsePattern(false)}
				if sc.Peek() != ')' {
					panic(newError(sc.CurrentPos(), "unfinished capture"))
				}
				sc.Next()
				pat.Patterns = append(pat.Patterns, ret)
			}
		case '*', '+', '-', '?':
			sc.Next()
			if len(pat.Patterns) > 0 {
				spat, ok := pat.Patterns[len(pat.Patterns)-1].(*singlePattern)
				if ok {
					pat.Patterns = pat.Patterns[0 : len(pat.Patterns)-1]
					pat.Patterns = append(pat.Patterns, &repeatPattern{ch, spat.Class})
					continue
				}
			}
			pat.Patterns = append(pat.Patterns, &singlePattern{&charClass{ch}})
		case '$':
			if toplevel && (sc.NextPos() == sc.Length()-1 || sc.NextPos() == eos) {
				pat.MustTail = true
			} else {
				pat.Patterns = append(pat.Patterns, &singlePattern{&charClass{ch}})
			}
			sc.Next()
		case eos:
			sc.Next()
			return pat
		default:
			sc.Next()
			pat.Patterns = append(pat.Patterns, &singlePattern{&charClass{ch}})
		}
	}
}

type iptr struct {
	insts   []inst
	capture int
}

func compilePattern(p pattern, ps ...*iptr) []inst {
	var ptr *iptr
	toplevel := false
	if len(ps) == 0 {
		toplevel = true
		ptr = &iptr{[]inst{{opSave, nil, 0, -1}}, 2}
	} else {
		ptr = ps[0]
	}
	switch pat := p.(type) {
	case *singlePattern:
		ptr.insts = append(ptr.insts, inst{opChar, pat.Class, -1, -1})
	case *seqPattern:
		for _, cp := range pat.Patterns {
			compilePattern(cp, ptr)
		}
	case *repeatPattern:
		idx := len(ptr.insts)
		switch pat.Type {
		case '*':
			ptr.insts = append(ptr.insts, inst{opGreedy, pat.Class, 0, -1})
		case '+':
			ptr.insts = append(ptr.insts, inst{opGreedy, pat.Class, 1, -1})
		case '-':
			ptr.insts = append(ptr.insts, inst{opLazy, pat.Class, -1, -1})
		case '?':
			ptr.insts = append(ptr.insts,
				inst{opSplit, nil, idx + 1, idx + 2},
				inst{opChar, pat.Class, -1, -1})
		}
	case *posCapPattern:
		ptr.insts = append(ptr.insts, inst{opPSave, nil, ptr.capture, -1})
		ptr.capture += 2
	case *capPattern:
		c0, c1 := ptr.capture, ptr.capture+1
		ptr.capture += 2
		ptr.insts = append(ptr.insts, inst{opSave, nil, c0, -1})
		compilePattern(pat.Pattern, ptr)
		ptr.insts = append(ptr.insts, inst{opSave, nil, c1, -1})
	case *bracePattern:
		ptr.insts = append(ptr.insts, inst{opBrace, nil, pat.Begin, pat.End})
	case *numberPattern:
		ptr.insts = append(ptr.insts, inst{opNumber, nil, pat.N, -1})
	}
	if toplevel {
		if p.(*seqPattern).MustTail {
			ptr.insts = append(ptr.insts, inst{opSave, nil, 1, -1}, inst{opTailMatch, nil, -1, -1})
		}
		ptr.insts = append(ptr.insts, inst{opSave, nil, 1, -1}, inst{opMatch, nil, -1, -1})
	}
	return ptr.insts
}

/* VM */

// errTooComplex is raised (as a panic inside the matcher) past MaxDepth.
var errTooComplex = newError(-2, "pattern too complex")

// stopped is the panic value used when done is closed mid-match.
type stopped struct{}

type machine struct {
	src   []byte
	insts []inst
	done  <-chan struct{}
	steps int
}

func (m *machine) step(n int) {
	m.steps += n
	if m.steps >= checkEvery {
		m.steps = 0
		if m.done != nil {
			select {
			case <-m.done:
				panic(stopped{})
			default:
			}
		}
	}
}

// run is a recursive virtual machine based on "Regular Expression
// Matching: the Virtual Machine Approach"
// (https://swtch.com/~rsc/regexp/regexp2.html).
func (m *machine) run(pc, sp, depth int, md *MatchData) (bool, int) {
	depth++
	if depth > MaxDepth {
		panic(errTooComplex)
	}
	src := m.src
	for {
		m.step(1)
		in := &m.insts[pc]
		switch in.OpCode {
		case opChar:
			if sp >= len(src) || !in.Class.Matches(int(src[sp])) {
				return false, sp
			}
			pc++
			sp++
		case opMatch:
			return true, sp
		case opTailMatch:
			return sp >= len(src), sp
		case opJmp:
			pc = in.Operand1
		case opSplit:
			if ok, nsp := m.run(in.Operand1, sp, depth, md); ok {
				return true, nsp
			}
			pc = in.Operand2
		case opGreedy:
			n := 0
			for sp+n < len(src) && in.Class.Matches(int(src[sp+n])) {
				n++
			}
			m.step(n)
			for ; n >= in.Operand1; n-- {
				if ok, nsp := m.run(pc+1, sp+n, depth, md); ok {
					return true, nsp
				}
			}
			return false, sp
		case opLazy:
			for {
				if ok, nsp := m.run(pc+1, sp, depth, md); ok {
					return true, nsp
				}
				if sp >= len(src) || !in.Class.Matches(int(src[sp])) {
					return false, sp
				}
				sp++
			}
		case opSave:
			s := md.setCapture(in.Operand1, sp)
			if ok, nsp := m.run(pc+1, sp, depth, md); ok {
				return true, nsp
			}
			md.restoreCapture(in.Operand1, s)
			return false, sp
		case opPSave:
			md.addPosCapture(in.Operand1, sp+1)
			pc++
		case opBrace:
			if sp >= len(src) || int(src[sp]) != in.Operand1 {
				return false, sp
			}
			count := 1
			start := sp
			matched := false
			for sp = sp + 1; sp < len(src); sp++ {
				if int(src[sp]) == in.Operand2 {
					count--
				}
				if count == 0 {
					matched = true
					break
				}
				if int(src[sp]) == in.Operand1 {
					count++
				}
			}
			m.step(sp - start)
			if !matched {
				return false, sp
			}
			pc++
			sp++
		case opNumber:
			idx := in.Operand1 * 2
			if idx >= md.CaptureLength()-1 {
				panic(newError(-2, "invalid capture index"))
			}
			capture := src[md.Capture(idx):md.Capture(idx+1)]
			m.step(len(capture))
			for i := 0; i < len(capture); i++ {
				if i+sp >= len(src) || capture[i] != src[i+sp] {
					return false, sp
				}
			}
			pc++
			sp += len(capture)
		default:
			panic("luapattern: unknown opcode")
		}
	}
}

/* API */

// Pattern is a compiled Lua pattern.
type Pattern struct {
	insts    []inst
	mustHead bool
}

// Compile parses a Lua pattern.
func Compile(p string) (pat *Pattern, err error) {
	defer func() {
		if v := recover(); v != nil {
			perr, ok := v.(*Error)
			if !ok {
				panic(v)
			}
			err = perr
		}
	}()
	ps := &parser{sc: newScanner([]byte(p))}
	seq := ps.parsePattern(true)
	return &Pattern{insts: compilePattern(seq), mustHead: seq.MustHead}, nil
}

// Anchored reports whether the pattern starts with '^'.
func (p *Pattern) Anchored() bool { return p.mustHead }

// Matcher matches one pattern against one subject, one match at a time.
type Matcher struct {
	p *Pattern
	m machine
	// spare is the MatchData of the last failed attempt, reused by the next:
	// a scan tries every position of the subject.
	spare *MatchData
}

// NewMatcher prepares p against src. done may be nil; when it is closed, a
// running match returns ErrStopped.
func (p *Pattern) NewMatcher(src []byte, done <-chan struct{}) (*Matcher, error) {
	if len(src) > MaxSubject {
		return nil, newError(-2, "subject too long for pattern matching")
	}
	return &Matcher{p: p, m: machine{src: src, insts: p.insts, done: done}}, nil
}

// MatchAt tries one match starting exactly at sp (0 <= sp <= len(src)).
// It returns nil when there is none.
func (mt *Matcher) MatchAt(sp int) (md *MatchData, err error) {
	defer func() {
		if v := recover(); v != nil {
			switch e := v.(type) {
			case stopped:
				md, err = nil, ErrStopped
			case *Error:
				md, err = nil, e
			default:
				panic(v)
			}
		}
	}()
	md = mt.spare
	if md == nil {
		md = &MatchData{}
	}
	md.captures = md.captures[:0]
	if ok, _ := mt.m.run(0, sp, 0, md); ok {
		mt.spare = nil
		return md, nil
	}
	mt.spare = md
	return nil, nil
}

// Find returns the first match starting at init or later (only at init for an
// anchored pattern), or nil.
func (mt *Matcher) Find(init int) (*MatchData, error) {
	for sp := init; sp <= len(mt.m.src); sp++ {
		md, err := mt.MatchAt(sp)
		if err != nil || md != nil {
			return md, err
		}
		if mt.p.mustHead {
			break
		}
	}
	return nil, nil
}
