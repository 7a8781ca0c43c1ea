package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScriptsExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bank")
	r := tokenrun(t, "", "scripts", "export", dir)
	require.Equal(t, exitOK, r.code, r.err)
	for _, f := range []string{"manifest.yaml", "tour.lua", "regions/default.yaml", "messages/kk.yaml"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
	// Never over an existing tree.
	r = tokenrun(t, "", "scripts", "export", dir)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.err, "not empty")
}

// TestProcedureConfiguration runs a probe procedure from an exported, edited tree: the
// region, --set and --lang reach the script, and mistakes are usage errors naming the key.
func TestProcedureConfiguration(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bank")
	require.Equal(t, exitOK, tokenrun(t, "", "scripts", "export", dir).code)
	probe := `local ui = require("ui")
return { name = "change_pin", version = "9.9.9", api = 1, description = "probe",
  run = function(ctx)
    ui.say(("url=%s lang=%s wait=%d roots=%s"):format(ctx.config.ca.url, ctx.config.language,
      ctx.config.token.wait, tostring(ctx.config.ca.roots ~= "")))
    ui.say(require("policy").text("password_mismatch"))
  end }`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "probe.lua"), []byte(probe), 0o644))
	manifest := "version: 9.9.9\napi: 1\nprocedures:\n  change_pin: probe.lua\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(manifest), 0o644))
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	// The region's language, not the English the other tests read (TestMain).
	t.Setenv("TOKENRUN_LANG", "")
	os.Unsetenv("TOKENRUN_LANG")
	soft := filepath.Join(t.TempDir(), "tok")
	roots := filepath.Join(t.TempDir(), "roots.pem")
	caDir := filepath.Join(t.TempDir(), "ca")
	require.Equal(t, exitOK, tokenrun(t, "", "ca", "init", caDir).code)
	b, err := os.ReadFile(filepath.Join(caDir, "ca.pem"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(roots, b, 0o644))

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "defaults", args: nil, code: exitOK, want: []string{"url=https://127.0.0.1:8443 lang=ru wait=60 roots=false", "unsigned scripts from " + dir}},
		{name: "set and lang", args: []string{"--set", "ca.url=https://ca.example.kz", "--set", "ca.roots=" + roots, "--lang", "en"}, code: exitOK,
			want: []string{"url=https://ca.example.kz lang=en wait=60 roots=true"}},
		{name: "unknown key named", args: []string{"--set", "ca.ulr=x"}, code: exitUsage, want: []string{"ca.ulr", "url"}},
		{name: "wrong type named", args: []string{"--set", "token.wait=soon"}, code: exitUsage, want: []string{"token.wait", "duration"}},
		{name: "unknown region lists the known", args: []string{"--region", "atlantis"}, code: exitUsage, want: []string{"atlantis", "default"}},
		{name: "bad language", args: []string{"--lang", "de"}, code: exitUsage, want: []string{"de"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"change-pin", "--scripts", dir, "--soft", soft}, tt.args...)
			r := tokenrun(t, "", args...)
			assert.Equal(t, tt.code, r.code, r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.err, w)
			}
		})
	}
}
