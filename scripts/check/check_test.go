package check

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/bindings/all"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/runtime/luadoc"
	"github.com/tokenrun/tokenrun/scripts"
)

// needLuacheck fails under CI=true and skips otherwise, as scripts/lint_test.go does.
func needLuacheck(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("luacheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("luacheck not found: apt-get install lua-check")
		}
		t.Skip("luacheck not found: apt-get install lua-check")
	}
}

func texts(r *Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// TestShippedTree: the tree tokenrun ships passes its own check.
func TestShippedTree(t *testing.T) {
	needLuacheck(t)
	r, err := Tree(context.Background(), scripts.FS, Options{Modules: all.Modules()})
	require.NoError(t, err)
	assert.Empty(t, r.Problems, texts(r))
}

// treeWith is the shipped tree with some files replaced.
func treeWith(t *testing.T, edits map[string]string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	require.NoError(t, fsWalk(scripts.FS, func(p string, b []byte) { m[p] = &fstest.MapFile{Data: b} }))
	for p, s := range edits {
		m[p] = &fstest.MapFile{Data: []byte(s)}
	}
	return m
}

func edit(t *testing.T, file, old, new string) string {
	t.Helper()
	b, err := scripts.FS.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	return strings.Replace(string(b), old, new, 1)
}

// TestFindsMistakes: each kind of mistake is reported with its file and line.
func TestFindsMistakes(t *testing.T) {
	needLuacheck(t)
	fsys := treeWith(t, map[string]string{
		"lib/tokens.lua":       edit(t, "lib/tokens.lua", "token.wait {", "token.wiat {"),
		"change_pin.lua":       edit(t, "change_pin.lua", `version = "1.0.0"`, `version = "1.0"`),
		"unblock.lua":          edit(t, "unblock.lua", "local ui = require(\"ui\")\n", "local ui = require(\"ui\")\nstray = 1\n"),
		"format.lua":           edit(t, "format.lua", "local journal = require(\"journal\")\n", "local journal = require(\"journal\")\nlocal x = = 1\n"),
		"regions/default.yaml": edit(t, "regions/default.yaml", "language:", "oops: 1\nlanguage:"),
		"messages/de.yaml":     "hello: Hallo\n",
	})
	r, err := Tree(context.Background(), fsys, Options{Modules: all.Modules()})
	require.NoError(t, err)
	got := texts(r)
	for _, want := range []string{
		"accessing undefined field 'wiat' of global 'token'",
		"change_pin.lua: procedure metadata: field 'version' must be a semantic version",
		"unblock.lua:5: luacheck: setting non-standard global variable 'stray'",
		"format.lua:5: ",
		"messages/de.yaml",
	} {
		assert.Contains(t, got, want)
	}
	assert.Regexp(t, `regions/default.yaml:\d+: oops: unknown key`, got)
	assert.Regexp(t, `lib/tokens.lua:\d+: luacheck: accessing undefined field 'wiat' of global 'token'`, got)
}

// TestProcedureNameMatchesManifest: a procedure under another name than its manifest's.
func TestProcedureNameMatchesManifest(t *testing.T) {
	fsys := treeWith(t, map[string]string{"unblock.lua": edit(t, "unblock.lua", `name = "unblock"`, `name = "unblocker"`)})
	r, err := Tree(context.Background(), fsys, Options{Modules: all.Modules(), Luacheck: "/bin/true"})
	require.NoError(t, err)
	assert.Contains(t, texts(r), `unblock.lua: procedure name "unblocker" differs from its manifest entry "unblock"`)
}

// TestMissingLuacheck is a failure of the check, never a silent pass.
func TestMissingLuacheck(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r, err := Tree(context.Background(), scripts.FS, Options{Modules: all.Modules()})
	require.NoError(t, err)
	assert.Contains(t, texts(r), "luacheck not found")
}

// TestBlankRequiresKeepsColumns: blanking keeps every later line and column in place,
// and leaves aliases and libraries alone.
func TestBlankRequiresKeepsColumns(t *testing.T) {
	src := "local token = require(\"token\")\nlocal tk = require('token')\nlocal m = require \"lib.msg\"\nlocal ui=require('ui') x()\n"
	got := string(blankRequires([]byte(src), map[string]bool{"token": true, "ui": true}))
	assert.Equal(t, strings.Repeat(" ", 30)+"\nlocal tk = require('token')\nlocal m = require \"lib.msg\"\n"+strings.Repeat(" ", 22)+" x()\n", got)
}

// TestSandboxGlobals proves the generated standard lists only what the sandbox has.
func TestSandboxGlobals(t *testing.T) {
	var b strings.Builder
	b.WriteString("local missing = {}\n")
	for _, g := range luadoc.SandboxGlobals {
		b.WriteString("if " + g + " == nil then missing[#missing+1] = '" + g + "' end\n")
	}
	for lib, fields := range luadoc.SandboxLibraries {
		for _, f := range fields {
			b.WriteString("if " + lib + "." + f + " == nil then missing[#missing+1] = '" + lib + "." + f + "' end\n")
		}
	}
	b.WriteString("return table.concat(missing, ' ')\n")
	sc, err := runtime.Compile("globals.lua", []byte(b.String()))
	require.NoError(t, err)
	res, err := runtime.Run(context.Background(), sc, runtime.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, []any{""}, res.Values)
}
