package runtime

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileSource is each class of source that crashed or stalled gopher-lua's
// compiler, at full size, with what Admit must say about it.
var hostileSource = []struct {
	name string
	src  string
	want string // the error, "" for admitted source
}{
	{"1M not", "return " + strings.Repeat("not ", 1<<20) + "true", "t.lua: the source is 4194315 bytes, more than the 1024 KiB a script may have"},
	{"250k not under the size cap", "return " + strings.Repeat("not ", 250000) + "true", "t.lua:1: nesting too deep: more than 200"},
	{"1M nested tables", "return " + strings.Repeat("{", 1<<20), "t.lua: the source is"},
	{"500k nested tables", "return " + strings.Repeat("{", 500000) + strings.Repeat("}", 500000), "t.lua:1: nesting too deep"},
	{"nested parentheses", "local x = " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), "t.lua:1: nesting too deep"},
	{"nested functions", strings.Repeat("local f = function()\n", 300) + strings.Repeat("end\n", 300), "t.lua:200: nesting too deep"},
	{"nested blocks", strings.Repeat("do ", 300) + strings.Repeat("end ", 300), "t.lua:1: nesting too deep"},
	{"nested ifs", strings.Repeat("if x then\n", 250) + strings.Repeat("end\n", 250), "t.lua:201: nesting too deep"},
	{"40k elseif", "if x then\n" + strings.Repeat("elseif x then\n", 40000) + "end", "t.lua:201: nesting too deep"},
	{"unary minus chain", "return " + strings.Repeat("- ", 300) + "1", "t.lua:1: nesting too deep"},
	{"length chain", "return " + strings.Repeat("#", 300) + "t", "t.lua:1: nesting too deep"},
	{"300k concat", "return " + strings.Repeat("x..", 300000) + "x", "t.lua:1: expression too long: more than 1000"},
	{"concat over lines", "return x\n" + strings.Repeat("..x\n", 2000), "t.lua:1002: expression too long"},
	{"additions", "return " + strings.Repeat("1+", 5000) + "1", "t.lua:1: expression too long"},
	{"and chain", "return " + strings.Repeat("x and ", 5000) + "x", "t.lua:1: expression too long"},
	{"field chain", "return x" + strings.Repeat(".y", 5000), "t.lua:1: expression too long"},
	{"call chain", "return f" + strings.Repeat("()", 5000), "t.lua:1: expression too long"},
	{"index chain", "return t" + strings.Repeat("[1]", 5000), "t.lua:1: expression too long"},
	{"string call chain", "return f" + strings.Repeat("'x'", 5000), "t.lua:1: expression too long"},
	{"chain inside brackets", "return f(" + strings.Repeat("a..", 3000) + "a)", "t.lua:1: expression too long"},

	{"brackets in strings", "local s = '" + strings.Repeat("{", 5000) + "'\nreturn s", ""},
	{"brackets in long strings", "local s = [==[" + strings.Repeat("((", 5000) + "]] ]=]]==]\nreturn s", ""},
	{"brackets in comments", "-- " + strings.Repeat("{", 5000) + "\n--[[" + strings.Repeat("not ", 5000) + "]]\nreturn 1", ""},
	{"many statements", strings.Repeat("x = x .. 'a' .. 'b'\n", 20000), ""},
	{"long table", "return {" + strings.Repeat("1, ", 20000) + "}", ""},
	{"long argument list", "return f(" + strings.Repeat("a .. b, ", 150) + "1)", ""},
	{"199 nested tables", "return " + strings.Repeat("{", 199) + strings.Repeat("}", 199), ""},
	{"150 elseif", "if x then\n" + strings.Repeat("elseif x then\n", 150) + "end", ""},
	{"numbers with exponents", "return 1e-5 - 2E+3 - 0x1e-1 - .5 - 3.", ""},
	{"ten thousand small ifs", strings.Repeat("if x then y = 1 elseif z then y = 2 end\n", 10000), ""},
}

func TestAdmitRefusesHostileSource(t *testing.T) {
	for _, tt := range hostileSource {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := Admit("t.lua", []byte(tt.src))
			assert.Less(t, time.Since(start), time.Second)
			if tt.want == "" {
				require.NoError(t, err)
				// What Admit lets through compiles quickly, or fails cleanly.
				start = time.Now()
				_, err = Compile("t.lua", []byte(tt.src))
				if err != nil {
					var se *ScriptError
					require.ErrorAs(t, err, &se)
				}
				assert.Less(t, time.Since(start), 5*time.Second)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			// Compile refuses the same way, before the parser.
			_, cerr := Compile("t.lua", []byte(tt.src))
			assert.Equal(t, err.Error(), cerr.Error())
		})
	}
}

// TestAdmitShippedScripts admits every Lua file of the repository.
func TestAdmitShippedScripts(t *testing.T) {
	n := 0
	require.NoError(t, filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".lua" {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.NoError(t, Admit(p, b))
		n++
		return nil
	}))
	assert.NotZero(t, n)
}

// FuzzAdmit: Admit never panics and answers in linear time; a refusal is a
// *ScriptError naming the file with a line inside it (none for the size
// cap); source it admits compiles without crashing.
func FuzzAdmit(f *testing.F) {
	for _, tt := range hostileSource {
		if len(tt.src) < 4096 {
			f.Add([]byte(tt.src))
		}
	}
	for _, s := range []string{
		"", "--", "--[[", "[[", "'", "\"\\", "[=[ ]]", "0x1e-1", "a..b...c", "f{}'x'[[y]]",
		"return not not not true", "if a then elseif b then else end", "repeat until x",
		"local t = {{{}}}", "return -#-#t", "x = ((((1))))", "function f(...) return ... end",
		"local s = 'a\\\nb'", "return 1 .. 2", "while true do break end", "for i = 1, 2 do end",
		")))", "end end end", "}}}{{{", strings.Repeat("(", 201), strings.Repeat("not ", 201) + "x",
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("../scripts/enroll.lua"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		start := time.Now()
		err := Admit("f.lua", src)
		if d := time.Since(start); d > 2*time.Second { // generous: the machine is shared
			t.Fatalf("Admit took %s on %d bytes", d, len(src))
		}
		if err != nil {
			var se *ScriptError
			if !errors.As(err, &se) || se.File != "f.lua" {
				t.Fatalf("refusal is not a ScriptError for f.lua: %v", err)
			}
			lines := bytes.Count(src, []byte("\n")) + 1
			if len(src) <= MaxSourceSize && (se.Line < 1 || se.Line > lines) {
				t.Fatalf("refusal at line %d of %d: %v", se.Line, lines, err)
			}
			return
		}
		_, _ = Compile("f.lua", src)
	})
}
