package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScriptsCheck(t *testing.T) {
	if _, err := exec.LookPath("luacheck"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("luacheck not found: apt-get install lua-check")
	}
	r := tokenrun(t, "", "scripts", "check")
	assert.Equal(t, exitOK, r.code, r.stdout+r.err)
	assert.Contains(t, r.stdout, "the shipped scripts: ok")

	dir := filepath.Join(t.TempDir(), "tree")
	r = tokenrun(t, "", "scripts", "export", dir)
	require.Equal(t, exitOK, r.code, r.err)
	lib := filepath.Join(dir, "lib", "tokens.lua")
	src, err := os.ReadFile(lib)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(lib, []byte(strings.Replace(string(src), "token.wait {", "token.wiat {", 1)), 0o644))
	r = tokenrun(t, "", "scripts", "check", dir)
	assert.Equal(t, exitScript, r.code, r.stdout+r.err)
	assert.Regexp(t, `lib/tokens.lua:\d+: luacheck: accessing undefined field 'wiat' of global 'token'`, r.stdout)
}

func TestScriptsTypesAndDocs(t *testing.T) {
	dir := t.TempDir()
	r := tokenrun(t, "", "scripts", "types", "--out", dir)
	require.Equal(t, exitOK, r.code, r.err)
	for _, m := range []string{"token", "ui", "ca", "sign", "journal", "policy"} {
		b, err := os.ReadFile(filepath.Join(dir, m+".lua"))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(b), "---@meta "+m+"\n"))
	}
	r = tokenrun(t, "", "scripts", "docs", "--out", dir)
	require.Equal(t, exitOK, r.code, r.err)
	got, err := os.ReadFile(filepath.Join(dir, "lua-reference.md"))
	require.NoError(t, err)
	want, err := os.ReadFile("../../docs/lua-reference.md")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}
