package runtime

import (
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/runtime/internal/luapattern"
)

// The string and table functions below replace gopher-lua's where one call
// could run long or produce much: the pattern functions match with a copy
// of gopher-lua's matcher that watches the run's context (gopher-lua checks
// it only between VM instructions, and one string.find is one instruction)
// and recurses per pattern item rather than per subject byte; gsub builds
// its result in one pass (gopher-lua's copies the whole string per match);
// and every result is capped at MaxCallOutput. Behaviour otherwise follows
// gopher-lua's, which scripts are tested against.

// installStringLib replaces the string and table functions of L's libraries.
// It runs before guardRaw, which wraps table.concat for read-only proxies.
func installStringLib(L *lua.LState) {
	g := L.G.Global
	str := g.RawGetString("string").(*lua.LTable)
	format := str.RawGetString("format").(*lua.LFunction).GFunction
	set := func(t *lua.LTable, name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }
	set(str, "find", strFind)
	set(str, "match", strMatch)
	set(str, "gsub", strGsub)
	gmatch := L.NewFunction(strGmatch)
	str.RawSetString("gmatch", gmatch)
	str.RawSetString("gfind", gmatch)
	set(str, "rep", stringRep)
	set(str, "format", func(L *lua.LState) int { checkFormat(L); return format(L) })
	for name, fn := range map[string]func(string) string{
		"upper": strings.ToUpper, "lower": strings.ToLower, "reverse": reverse,
	} {
		set(str, name, capped("string."+name, fn))
	}
	tbl := g.RawGetString("table").(*lua.LTable)
	set(tbl, "concat", tableConcat)
	set(tbl, "sort", tableSort)
}

func raiseTooLong(L *lua.LState, fn string) {
	L.RaiseError("%s: result would exceed %d MiB", fn, MaxCallOutput>>20)
}

func capped(name string, fn func(string) string) lua.LGFunction {
	return func(L *lua.LState) int {
		s := L.CheckString(1)
		if len(s) > MaxCallOutput {
			raiseTooLong(L, name)
		}
		L.Push(lua.LString(fn(s)))
		return 1
	}
}

func reverse(s string) string {
	out := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		out[len(s)-1-i] = s[i]
	}
	return string(out)
}

func stringRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := float64(L.CheckNumber(2))
	if math.IsNaN(n) || math.IsInf(n, 0) {
		L.ArgError(2, "repeat count must be a finite number, got "+formatNumber(n))
	}
	// A count below one gives "" as in Lua (padding code relies on it).
	if n < 1 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if float64(len(s))*math.Trunc(n) > MaxCallOutput {
		raiseTooLong(L, "string.rep")
	}
	L.Push(lua.LString(strings.Repeat(s, int(n))))
	return 1
}

// checkFormat refuses what would let string.format produce much from little,
// before Go's fmt runs: widths and precisions of more than two digits (Lua
// refuses them too), '*' and explicit argument indexes (Go's fmt, not Lua's),
// and a result that could exceed MaxCallOutput.
func checkFormat(L *lua.LState) {
	f := L.CheckString(1)
	arg := 2
	size := len(f)
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		flags := 0
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
			flags++
		}
		if flags > 5 {
			L.RaiseError("invalid format (repeated flags)")
		}
		width := digits(f, &i)
		prec := 0
		if i < len(f) && f[i] == '.' {
			i++
			prec = digits(f, &i)
		}
		if width < 0 || prec < 0 || (i < len(f) && (f[i] >= '0' && f[i] <= '9' || f[i] == '*' || f[i] == '[')) {
			L.RaiseError("invalid format (width or precision too long, or not a Lua format) in %q", clip(f, 40))
		}
		conv := byte(0)
		if i < len(f) {
			conv = f[i]
		}
		n := 0
		if arg <= L.GetTop() {
			v := L.Get(arg)
			switch conv {
			case 's', 'q', 'v':
				n = len(v.String())
				if conv == 'q' {
					n = 2*n + 2
				}
			default:
				n = 400 // a float64 in %f is at most 309 digits and a point
			}
		}
		arg++
		size += width + prec + n
		if size > MaxCallOutput {
			raiseTooLong(L, "string.format")
		}
	}
}

// digits reads at most two decimal digits at f[*i:], as Lua's format does;
// -1 means a third followed.
func digits(f string, i *int) int {
	n := 0
	for k := 0; *i < len(f) && f[*i] >= '0' && f[*i] <= '9'; k++ {
		if k == 2 {
			return -1
		}
		n = n*10 + int(f[*i]-'0')
		*i++
	}
	return n
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// tableConcat is gopher-lua's table.concat (its clamping of i and j
// included), measuring the result before building it. gopher-lua's pushes
// every piece on the data stack, which also overflowed it for long tables.
func tableConcat(L *lua.LState) int {
	tbl := L.CheckTable(1)
	sep := L.OptString(2, "")
	n := tbl.Len()
	i := L.OptInt(3, 1)
	j := L.OptInt(4, n)
	if L.GetTop() == 3 && (i > n || i < 1) {
		L.Push(lua.LString(""))
		return 1
	}
	i = max(min(i, n), 1)
	j = min(j, n)
	if i > j {
		L.Push(lua.LString(""))
		return 1
	}
	size := 0
	for k := i; k <= j; k++ {
		v := tbl.RawGetInt(k)
		if !lua.LVCanConvToString(v) {
			L.RaiseError("invalid value (%s) at index %d in table for concat", v.Type().String(), k)
		}
		size += len(lua.LVAsString(v))
		if k != j {
			size += len(sep)
		}
		if size > MaxCallOutput {
			raiseTooLong(L, "table.concat")
		}
	}
	var b strings.Builder
	b.Grow(size)
	for k := i; k <= j; k++ {
		b.WriteString(lua.LVAsString(tbl.RawGetInt(k)))
		if k != j {
			b.WriteString(sep)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// tableSort is table.sort checking the run's context as it compares:
// gopher-lua's sorts in one Go call, and sorting two million strings ran
// seconds past the deadline. It sorts t[1..#t] (gopher-lua sorted the
// table's array part, the same for a sequence) through a copy.
func tableSort(L *lua.LState) int {
	t := L.CheckTable(1)
	s := &sorter{L: L, vals: make([]lua.LValue, t.Len())}
	if L.GetTop() != 1 {
		s.fn = L.CheckFunction(2)
	}
	if ctx := L.Context(); ctx != nil {
		s.done = ctx.Done()
	}
	for i := range s.vals {
		s.vals[i] = t.RawGetInt(i + 1)
	}
	sort.Sort(s)
	for i, v := range s.vals {
		t.RawSetInt(i+1, v)
	}
	return 0
}

type sorter struct {
	L    *lua.LState
	fn   *lua.LFunction
	vals []lua.LValue
	done <-chan struct{}
	n    int
}

func (s *sorter) Len() int      { return len(s.vals) }
func (s *sorter) Swap(i, j int) { s.vals[i], s.vals[j] = s.vals[j], s.vals[i] }
func (s *sorter) Less(i, j int) bool {
	if s.n++; s.n&1023 == 0 && s.done != nil {
		select {
		case <-s.done:
			s.L.RaiseError("%s", s.L.Context().Err().Error())
		default:
		}
	}
	if s.fn == nil {
		return s.L.LessThan(s.vals[i], s.vals[j])
	}
	s.L.Push(s.fn)
	s.L.Push(s.vals[i])
	s.L.Push(s.vals[j])
	s.L.Call(2, 1)
	less := lua.LVAsBool(s.L.Get(-1))
	s.L.Pop(1)
	return less
}

// subject is s as bytes without a copy: the matcher only reads it.
func subject(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func newMatcher(L *lua.LState, s, pattern string) (*luapattern.Matcher, bool) {
	p, err := luapattern.Compile(pattern)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	var done <-chan struct{}
	if ctx := L.Context(); ctx != nil {
		done = ctx.Done()
	}
	m, err := p.NewMatcher(subject(s), done)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return m, p.Anchored()
}

// matchErr raises a matcher's error; a stopped match raises the context's,
// which the runner turns into "script stopped: ...".
func matchErr(L *lua.LState, err error) {
	if errors.Is(err, luapattern.ErrStopped) {
		if ctx := L.Context(); ctx != nil && ctx.Err() != nil {
			L.RaiseError("%s", ctx.Err().Error())
		}
		L.RaiseError("pattern matching stopped")
	}
	L.RaiseError("%s", err.Error())
}

// pushCaptures pushes the captures of md (the whole match when it has
// none, if whole) and returns how many.
func pushCaptures(L *lua.LState, s string, md *luapattern.MatchData, whole bool) int {
	if md.CaptureLength() == 2 {
		if !whole {
			return 0
		}
		L.Push(lua.LString(s[md.Capture(0):md.Capture(1)]))
		return 1
	}
	for i := 2; i < md.CaptureLength(); i += 2 {
		if md.IsPosCapture(i) {
			L.Push(lua.LNumber(md.Capture(i)))
		} else {
			L.Push(lua.LString(s[md.Capture(i):md.Capture(i+1)]))
		}
	}
	return md.CaptureLength()/2 - 1
}

// startIndex is gopher-lua's luaIndex2StringIndex for a start position.
func startIndex(s string, i int) int {
	if i != 0 {
		i--
	}
	if i < 0 {
		i = len(s) + i + 1
	}
	return max(0, i)
}

func strFind(L *lua.LState) int {
	s := L.CheckString(1)
	pattern := L.CheckString(2)
	if len(pattern) == 0 {
		L.Push(lua.LNumber(1))
		L.Push(lua.LNumber(0))
		return 2
	}
	init := startIndex(s, L.OptInt(3, 1))
	plain := L.GetTop() == 4 && lua.LVAsBool(L.Get(4))
	if plain || !strings.ContainsAny(pattern, "^$*+?.()[%-") {
		if init > len(s) {
			L.Push(lua.LNil)
			return 1
		}
		pos := strings.Index(s[init:], pattern)
		if pos < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + pos + 1))
		L.Push(lua.LNumber(init + pos + len(pattern)))
		return 2
	}
	m, _ := newMatcher(L, s, pattern)
	md, err := m.Find(init)
	if err != nil {
		matchErr(L, err)
	}
	if md == nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(md.Capture(0) + 1))
	L.Push(lua.LNumber(md.Capture(1)))
	return 2 + pushCaptures(L, s, md, false)
}

func strMatch(L *lua.LState) int {
	s := L.CheckString(1)
	pattern := L.CheckString(2)
	offset := L.OptInt(3, 1)
	if offset < 0 {
		offset = len(s) + offset + 1
	}
	offset = max(offset-1, 0)
	m, _ := newMatcher(L, s, pattern)
	md, err := m.Find(offset)
	if err != nil {
		matchErr(L, err)
	}
	if md == nil {
		L.Push(lua.LNil)
		return 1
	}
	return pushCaptures(L, s, md, true)
}

// strGmatch matches lazily, one match per call of the iterator, where
// gopher-lua's found every match (and copied the subject) up front.
func strGmatch(L *lua.LState) int {
	s := L.CheckString(1)
	pattern := L.CheckString(2)
	m, anchored := newMatcher(L, s, pattern)
	pos, finished := 0, false
	L.Push(L.NewFunction(func(L *lua.LState) int {
		for !finished && pos <= len(s) {
			sp := pos
			md, err := m.MatchAt(sp)
			if err != nil {
				matchErr(L, err)
			}
			if anchored {
				finished = true
			}
			if md != nil {
				pos = max(md.Capture(1), sp+1)
				return pushCaptures(L, s, md, true)
			}
			pos++
		}
		finished = true
		return 0
	}))
	return 1
}

func strGsub(L *lua.LState) int {
	s := L.CheckString(1)
	pattern := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, -1)
	m, anchored := newMatcher(L, s, pattern)

	var b strings.Builder
	add := func(piece string) {
		if b.Len()+len(piece) > MaxCallOutput {
			raiseTooLong(L, "string.gsub")
		}
		b.WriteString(piece)
	}
	n := 0
	copied := 0 // s[:copied] is in b already
	for sp := 0; sp <= len(s) && (limit < 0 || n < limit); {
		md, err := m.MatchAt(sp)
		if err != nil {
			matchErr(L, err)
		}
		if md != nil {
			n++
			start, end := md.Capture(0), md.Capture(1)
			add(s[copied:start])
			add(replacement(L, s, md, repl))
			copied = end
			sp = max(end, sp+1)
		} else {
			sp++
		}
		if anchored {
			break
		}
	}
	if n == 0 {
		L.Push(L.Get(1))
		L.Push(lua.LNumber(0))
		return 2
	}
	if copied < len(s) {
		add(s[copied:])
	}
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// capture is capture k of md (1-based; 0 and, with no captures, 1 are the
// whole match) as the string gsub substitutes.
func capture(L *lua.LState, s string, md *luapattern.MatchData, k int) string {
	idx := 2 * k
	if idx == 2 && md.CaptureLength() == 2 {
		idx = 0
	}
	if idx >= md.CaptureLength() {
		L.RaiseError("invalid capture index")
	}
	if md.IsPosCapture(idx) {
		return strconv.Itoa(md.Capture(idx))
	}
	return s[md.Capture(idx):md.Capture(idx+1)]
}

func replacement(L *lua.LState, s string, md *luapattern.MatchData, repl lua.LValue) string {
	whole := s[md.Capture(0):md.Capture(1)]
	var v lua.LValue
	switch r := repl.(type) {
	case lua.LString:
		rs := string(r)
		if strings.IndexByte(rs, '%') < 0 {
			return rs
		}
		var out []byte
		for i := 0; i < len(rs); i++ {
			c := rs[i]
			if c != '%' || i+1 == len(rs) {
				out = append(out, c)
				continue
			}
			i++
			c = rs[i]
			if c < '0' || c > '9' {
				// gopher-lua keeps the '%' of an unknown escape ("%x" stays
				// "%x"); "%%" is one '%'.
				if c != '%' {
					out = append(out, '%')
				}
				out = append(out, c)
				continue
			}
			piece := capture(L, s, md, int(c-'0'))
			if len(out)+len(piece) > MaxCallOutput {
				raiseTooLong(L, "string.gsub")
			}
			out = append(out, piece...)
		}
		return string(out)
	case *lua.LTable:
		key := lua.LValue(lua.LString(whole))
		if md.CaptureLength() > 2 {
			if md.IsPosCapture(2) {
				key = lua.LNumber(md.Capture(2))
			} else {
				key = lua.LString(s[md.Capture(2):md.Capture(3)])
			}
		}
		v = L.GetTable(r, key)
	case *lua.LFunction:
		L.Push(r)
		nargs := pushCaptures(L, s, md, true)
		L.Call(nargs, 1)
		v = L.Get(-1)
		L.Pop(1)
	}
	if lua.LVIsFalse(v) {
		return whole
	}
	if !lua.LVCanConvToString(v) {
		L.RaiseError("invalid replacement value (a %s)", v.Type().String())
	}
	return lua.LVAsString(v)
}
