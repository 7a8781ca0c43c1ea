package runtime

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
)

// luaSer serialises every value of a call; no values reads as one nil
// (gopher-lua's string.match returned none on a miss, Lua and we return nil).
const luaSer = `
local function ser(...)
  local n = select('#', ...)
  if n == 0 then return "nil:nil" end
  local t = {}
  for i = 1, n do local v = select(i, ...); t[i] = type(v) .. ":" .. tostring(v) end
  return table.concat(t, ",")
end
local function each(f, st) local t = {} for a, b in f, st do t[#t + 1] = tostring(a) .. "/" .. tostring(b) end return table.concat(t, ";") end
`

// patternExprs are expressions over s and p whose results must be what
// gopher-lua's own string library gives.
var patternExprs = []string{
	"s:find(p)", "s:find(p, 2)", "s:find(p, -3)", "s:find(p, 1, true)", "s:find(p, 100)",
	"s:match(p)", "s:match(p, 3)", "s:match(p, -2)",
	"each(s:gmatch(p))",
	"s:gsub(p, '<%0>')", "s:gsub(p, '[%1]')", "s:gsub(p, '%%')", "s:gsub(p, 'x%')", "s:gsub(p, '%q')",
	"s:gsub(p, '-', 2)", "s:gsub(p, '')",
	"s:gsub(p, {a = 'A', ['1'] = 'one', hello = false})",
	"s:gsub(p, function(a, b) return b and (a .. b) or (a == 'a' and 'A' or nil) end)",
}

var patternSubjects = []string{
	"", "a", "hello world", "aaa", "abcabc", "  padded  ", "key = value", "x(y(z)w)v", "2026-12-04T18:21:14Z",
	"0123abcd", "a.b.c", "line1\nline2\n", "THE end", "%d%%", "[bracket]", "a-b-c", "aXbXc", "$100", "caret^",
	"pkcs11:token=KAZTOKEN;serial=0123abcd",
}

// A lone "%" and "%b" without its two characters are left out: gopher-lua
// matched them as nothing, Lua and we refuse them ("malformed pattern").
var patterns = []string{
	"a", ".", "%a+", "%d+", "(%w+)", "^(%w+)", "(%w+)$", "%s*", "^%s*(.-)%s*$", "(%w+)%s*=%s*(%w+)", "%b()",
	"()", "()a()", "[%w_]+", "[^%s]+", "[a-c]+", "[]]", "[^]]", "x*", "a-", "a-b", "a?b", ".-", "(a)(b)(c)",
	"(h)(e)", "%.", "%%", "%-", "(%d+)-(%d+)-(%d+)", "^$", "$", "^", "%u%l*", "[%p]", "%x+", "(a*(.)%w(%s*))",
	"(.)%1", "%f", "[%a-]", "[a-]", "^pkcs11:(.*)$", "([^;=]+)=([^;]*)", "%S+", "%c", "[0-9a-f]+$",
	"((a))", "(()b)", "^(a+)", "(", "[a", "(()", "a)", "%1", "%0", "[%",
}

func TestPatternFunctionsMatchGopherLua(t *testing.T) {
	var prog strings.Builder
	prog.WriteString(luaSer)
	prog.WriteString("local exprs = {\n")
	for _, e := range patternExprs {
		fmt.Fprintf(&prog, "  function(s, p) return ser(%s) end,\n", e)
	}
	prog.WriteString(`}
local out = {}
for _, s in ipairs(SUBJECTS) do
  for _, p in ipairs(PATTERNS) do
    for _, f in ipairs(exprs) do
      local ok, r = pcall(f, s, p)
      out[#out + 1] = tostring(ok) .. '|' .. (ok and r or 'error')
    end
  end
end
return out
`)

	bare := lua.NewState()
	defer bare.Close()
	list := func(xs []string) *lua.LTable {
		t := bare.NewTable()
		for _, x := range xs {
			t.Append(lua.LString(x))
		}
		return t
	}
	bare.SetGlobal("SUBJECTS", list(patternSubjects))
	bare.SetGlobal("PATTERNS", list(patterns))
	require.NoError(t, bare.DoString(prog.String()))
	var wl []string
	bare.Get(-1).(*lua.LTable).ForEach(func(_, v lua.LValue) { wl = append(wl, v.String()) })

	anyList := func(xs []string) []any {
		out := make([]any, len(xs))
		for i, x := range xs {
			out[i] = x
		}
		return out
	}
	res, err := runSrc(t, "local SUBJECTS, PATTERNS = (...).args.s, (...).args.p\n"+prog.String(),
		RunOptions{Args: map[string]any{"s": anyList(patternSubjects), "p": anyList(patterns)}})
	require.NoError(t, err)
	var gl []string
	for _, v := range res.Values[0].([]any) {
		gl = append(gl, v.(string))
	}
	require.Equal(t, len(wl), len(gl))
	n := 0
	for i := range wl {
		c := i / len(patternExprs)
		s, p, e := patternSubjects[c/len(patterns)], patterns[c%len(patterns)], patternExprs[i%len(patternExprs)]
		if wl[i] != gl[i] && n < 40 {
			n++
			assert.Equal(t, wl[i], gl[i], "s=%q p=%q: %s", s, p, e)
		}
	}
}

// BenchmarkPatternFunctions compares the string functions the sandbox
// installs with gopher-lua's own on the kind of work procedures do
// (checking a user ID, trimming, splitting a URI, formatting): the cost of
// the context checks and the copied matcher. One op is one call.
func BenchmarkPatternFunctions(b *testing.B) {
	calls := []struct{ name, expr string }{
		{"find", `("pkcs11:token=KAZTOKEN;serial=0123abcd"):find("serial=(%x+)")`},
		{"match", `("  123456789012  "):match("^%s*(%d+)%s*$")`},
		{"gsub", `("a-b-c-d-e-f"):gsub("-", "_")`},
		{"gmatch", `(function() local n = 0 for k, v in ("a=1;b=2;c=3"):gmatch("(%w+)=(%w+)") do n = n + 1 end return n end)()`},
		{"format", `string.format("%s (%d tries left) %5.2f", "PIN", 3, 1.5)`},
		{"rep", `("ab"):rep(10)`},
	}
	for _, impl := range []string{"gopher_lua", "sandbox"} {
		for _, c := range calls {
			b.Run(impl+"/"+c.name, func(b *testing.B) {
				L := lua.NewState()
				defer L.Close()
				if impl == "sandbox" {
					installStringLib(L)
				}
				L.SetContext(context.Background())
				fn, err := L.LoadString("for i = 1, N do local _ = " + c.expr + " end")
				require.NoError(b, err)
				L.SetGlobal("N", lua.LNumber(b.N))
				b.ReportAllocs()
				b.ResetTimer()
				L.Push(fn)
				L.Call(0, 0)
			})
		}
	}
}

func TestTableSort(t *testing.T) {
	res, err := runSrc(t, `
local a = {5, 2, 8, 1, 9, 3}
table.sort(a)
local b = {"pear", "apple", "fig"}
table.sort(b, function(x, y) return x > y end)
local ok, msg = pcall(table.sort, {1, "x", 2})
return table.concat(a, ","), table.concat(b, ","), ok, msg ~= nil`, RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, []any{"1,2,3,5,8,9", "pear,fig,apple", false, true}, res.Values)
}
