package scripts

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// luacheck finds the linter; under CI=true a missing one is a failure, never a skip.
func luacheck(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("luacheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("luacheck not found: apt-get install lua-check")
		}
		t.Skip("luacheck not found: apt-get install lua-check")
	}
	return bin
}

// TestLuacheck lints the shipped tree with the repository's .luacheckrc, which allows only
// what the sandbox offers: a stray global or a misspelt standard function fails here.
func TestLuacheck(t *testing.T) {
	bin := luacheck(t)
	out, err := exec.Command(bin, "--no-color", "--config", "../.luacheckrc", ".").CombinedOutput()
	require.NoError(t, err, "luacheck:\n%s", out)
}

// TestLuacheckCatchesStrayGlobals shows the configuration is strict enough to matter.
func TestLuacheckCatchesStrayGlobals(t *testing.T) {
	bin := luacheck(t)
	dir := t.TempDir()
	bad := "local x = os.getenv('HOME')\nfoo = 1\nreturn x\n"
	require.NoError(t, os.WriteFile(dir+"/bad.lua", []byte(bad), 0o644))
	out, err := exec.Command(bin, "--no-color", "--config", "../.luacheckrc", dir+"/bad.lua").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "accessing undefined variable 'os'")
	require.Contains(t, string(out), "setting non-standard global variable 'foo'")
}
