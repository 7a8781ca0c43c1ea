package runtime

import (
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
	bare := lua.NewState()
	defer bare.Close()
	var src strings.Builder
	src.WriteString(luaSer)
	src.WriteString("local cases = ...\nlocal out = {}\nfor i, c in ipairs(cases) do\n  local s, p = c[1], c[2]\n  local f = c[3]\n")
	src.WriteString("  local ok, r = pcall(f, s, p)\n  out[i] = tostring(ok) .. '|' .. (ok and r or 'error')\nend\nreturn out\n")
	// Each expression becomes a function of (s, p) in both states.
	var fns strings.Builder
	fns.WriteString("local exprs = {\n")
	for _, e := range patternExprs {
		fmt.Fprintf(&fns, "  function(s, p) return ser(%s) end,\n", e)
	}
	fns.WriteString("}\n")
	var cases strings.Builder
	cases.WriteString("local cases = {}\n")
	for _, s := range patternSubjects {
		for _, p := range patterns {
			for i := range patternExprs {
				fmt.Fprintf(&cases, "cases[#cases + 1] = {%q, %q, exprs[%d]}\n", s, p, i+1)
			}
		}
	}
	prog := luaSer + fns.String() + cases.String() + strings.Replace(src.String()[len(luaSer):], "local cases = ...\n", "", 1)

	require.NoError(t, bare.DoString(prog))
	var wl []string
	bare.Get(-1).(*lua.LTable).ForEach(func(_, v lua.LValue) { wl = append(wl, v.String()) })

	res, err := runSrc(t, prog, RunOptions{})
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
