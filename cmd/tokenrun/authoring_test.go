package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runner"
)

func TestScriptsCheck(t *testing.T) {
	if _, err := exec.LookPath("luacheck"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("luacheck not found: apt-get install lua-check")
	}
	r := tokenrun(t, "", "scripts", "check")
	assert.Equal(t, runner.ExitOK, r.code, r.stdout+r.err)
	assert.Contains(t, r.stdout, "the shipped scripts: ok")

	dir := filepath.Join(t.TempDir(), "tree")
	r = tokenrun(t, "", "scripts", "export", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	lib := filepath.Join(dir, "lib", "tokens.lua")
	src, err := os.ReadFile(lib)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(lib, []byte(strings.Replace(string(src), "token.wait {", "token.wiat {", 1)), 0o644))
	r = tokenrun(t, "", "scripts", "check", dir)
	assert.Equal(t, runner.ExitScript, r.code, r.stdout+r.err)
	assert.Regexp(t, `lib/tokens.lua:\d+: luacheck: accessing undefined field 'wiat' of global 'token'`, r.stdout)
}

func TestScriptsTypesAndDocs(t *testing.T) {
	dir := t.TempDir()
	r := tokenrun(t, "", "scripts", "types", "--out", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	for _, m := range []string{"token", "ui", "ca", "sign", "journal", "policy"} {
		b, err := os.ReadFile(filepath.Join(dir, m+".lua"))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(b), "---@meta "+m+"\n"))
	}
	r = tokenrun(t, "", "scripts", "docs", "--out", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	got, err := os.ReadFile(filepath.Join(dir, "lua-reference.md"))
	require.NoError(t, err)
	want, err := os.ReadFile("../../docs/lua-reference.md")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

// TestScriptsCheckRunsGoldens: `scripts check DIR` runs DIR/tests on a software token with
// DIR's procedures, and a message changed under a golden is a problem (exit 3) showing
// the first differing line; the user's TOKENRUN_HOME is left alone.
func TestScriptsCheckRunsGoldens(t *testing.T) {
	if _, err := exec.LookPath("luacheck"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("luacheck not found: apt-get install lua-check")
	}
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	dir := filepath.Join(t.TempDir(), "tree")
	r := tokenrun(t, "", "scripts", "export", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	require.NoError(t, os.CopyFS(filepath.Join(dir, "tests"), os.DirFS(goldenTree)))

	r = tokenrun(t, "", "scripts", "check", dir)
	require.Equal(t, runner.ExitOK, r.code, r.stdout+r.err)
	assert.Contains(t, r.stdout, dir+": ok")
	assert.Regexp(t, `note: ran \d+ golden case\(s\) on a software token`, r.err)
	assert.Contains(t, r.err, "note: tests/enroll/no_token: skipped:", "SoftHSM2-only cases are skipped with a note")
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	assert.Empty(t, entries, "check runs the procedures under a temporary TOKENRUN_HOME")

	// Only two cases from here on: one that shows the changed message, one that does not.
	tests := filepath.Join(dir, "tests")
	require.NoError(t, os.RemoveAll(tests))
	for _, c := range []string{"change_pin/ok", "change_pin/wrong_current"} {
		require.NoError(t, os.CopyFS(filepath.Join(tests, c), os.DirFS(filepath.Join(goldenTree, c))))
	}
	cat := filepath.Join(dir, "messages", "en.yaml")
	src, err := os.ReadFile(cat)
	require.NoError(t, err)
	const old = `change_pin_done: "The token password has been changed."`
	require.Contains(t, string(src), old)
	require.NoError(t, os.WriteFile(cat, []byte(strings.Replace(string(src), old, `change_pin_done: "Your new password is set."`, 1)), 0o644))

	r = tokenrun(t, "", "scripts", "check", dir)
	assert.Equal(t, runner.ExitScript, r.code, r.stdout+r.err)
	assert.Contains(t, r.stdout, "tests/change_pin/ok/expected.golden: golden mismatch on the software token")
	assert.Contains(t, r.stdout, "  - info: The token password has been changed.\n  + info: Your new password is set.")
	assert.NotContains(t, r.stdout, "wrong_current", "a case the change does not show still passes")
	assert.Contains(t, r.err, "1 problem(s) in "+dir)
}
