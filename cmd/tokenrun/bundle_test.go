package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runner"
)

// bankTree exports the shipped tree with change_pin replaced by a probe saying its version.
func bankTree(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bank")
	require.Equal(t, runner.ExitOK, tokenrun(t, "", "scripts", "export", dir).code)
	probe := "local ui = require(\"ui\")\nreturn { name = \"change_pin\", description = \"probe\",\n  version = \"" + version + "\",\n  api = 1,\n" +
		"  run = function() ui.say(\"probe " + version + " ran\") end }\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "change_pin.lua"), []byte(probe), 0o644))
	m, err := os.ReadFile(filepath.Join(dir, "manifest.yaml"))
	require.NoError(t, err)
	m = []byte(strings.Replace(string(m), "version: 1.0.0", "version: "+version, 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.yaml"), m, 0o644))
	return dir
}

// TestBundleLifecycle: keygen, pack an exported tree, verify, install, list, run a procedure
// from it, install a newer one, refuse a downgrade, roll back; then tamper with the installed
// copy and see the next run refuse it loudly and fall back.
func TestBundleLifecycle(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	t.Setenv("TOKENRUN_SYSTEM_TRUST", filepath.Join(t.TempDir(), "none"))
	work := t.TempDir()
	key := filepath.Join(work, "release")
	soft := filepath.Join(work, "tok")

	r := tokenrun(t, "", "scripts", "keygen", "--out", key, "--comment", "Test Bank 2025")
	require.Equal(t, runner.ExitOK, r.code, r.err)
	fi, err := os.Stat(key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, runner.ExitUsage, tokenrun(t, "", "scripts", "keygen", "--out", key).code, "never over an existing key")

	packed := func(version string) string {
		out := filepath.Join(work, version+".bundle")
		r := tokenrun(t, "", "scripts", "pack", "--dir", bankTree(t, version), "--key", key, "--out", out)
		require.Equal(t, runner.ExitOK, r.code, r.err)
		return out
	}
	v1, v2, v0 := packed("1.0.0"), packed("1.1.0"), packed("0.9.0")

	r = tokenrun(t, "", "scripts", "verify", "--trust", key+".pub", v1)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "scripts 1.0.0")
	assert.Contains(t, r.stdout, "OK")

	// Unknown key and no key: refused before anything is installed.
	other := filepath.Join(work, "other")
	require.Equal(t, runner.ExitOK, tokenrun(t, "", "scripts", "keygen", "--out", other).code)
	r = tokenrun(t, "", "scripts", "install", "--trust", other+".pub", v1)
	assert.Equal(t, runner.ExitVerify, r.code)
	assert.Contains(t, r.err, "not signed by any of the 1 trusted keys")
	r = tokenrun(t, "", "scripts", "install", v1)
	assert.Equal(t, runner.ExitUsage, r.code)
	assert.Contains(t, r.err, "no trusted release key")
	r = tokenrun(t, "", "scripts", "install", "--trust", key, v1)
	assert.Equal(t, runner.ExitUsage, r.code)
	assert.Contains(t, r.err, "private key where a tokenrun-ed25519-public key is needed")
	_, err = os.Stat(filepath.Join(home, "scripts", "active"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	run := func() result { return tokenrun(t, "", "change-pin", "--soft", soft) }
	assert.NotContains(t, run().stdout+run().err, "probe", "nothing installed: the embedded set")

	r = tokenrun(t, "", "scripts", "install", "--trust", key+".pub", v1)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	r = run()
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout+r.err, "probe 1.0.0 ran")
	assert.NotContains(t, r.err, "warning", "a verified bundle runs without warnings")

	r = tokenrun(t, "", "scripts", "install", "--trust", key+".pub", v2)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	r = tokenrun(t, "", "scripts", "list")
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "active: scripts 1.1.0")
	assert.Contains(t, r.stdout, "from "+v2)
	assert.Contains(t, r.stdout, "previous: 1.0.0-")
	assert.Regexp(t, `change_pin\s+1\.1\.0`, r.stdout)
	assert.Regexp(t, `enroll\s+1\.0\.0`, r.stdout)
	assert.Contains(t, run().stdout+run().err, "probe 1.1.0 ran")

	r = tokenrun(t, "", "scripts", "install", "--trust", key+".pub", v0)
	assert.Equal(t, runner.ExitUsage, r.code)
	assert.Contains(t, r.err, "is 0.9.0, the installed one is 1.1.0: give --allow-downgrade")
	assert.Contains(t, run().stdout+run().err, "probe 1.1.0 ran", "a refused downgrade leaves the active version")

	r = tokenrun(t, "", "scripts", "rollback")
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, run().stdout+run().err, "probe 1.0.0 ran")
	require.Equal(t, runner.ExitOK, tokenrun(t, "", "scripts", "rollback").code) // back to 1.1.0

	// Tamper with the active copy on disk: the next run refuses it, says why, and runs
	// the previous version; with that one broken too, the embedded set.
	active, err := os.ReadFile(filepath.Join(home, "scripts", "active"))
	require.NoError(t, err)
	dir := filepath.Join(home, "scripts", "versions", strings.TrimSpace(string(active)))
	evil := "return { name = \"change_pin\", description = \"x\", version = \"6.6.6\", api = 1, run = function() require(\"ui\").say(\"EVIL\") end }"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "change_pin.lua"), []byte(evil), 0o644))
	r = run()
	require.Equal(t, runner.ExitOK, r.code, r.err)
	out := r.stdout + r.err
	assert.NotContains(t, out, "EVIL")
	assert.Contains(t, out, "probe 1.0.0 ran")
	assert.Contains(t, r.err, "warning: refusing the installed scripts 1.1.0-")
	assert.Contains(t, r.err, "change_pin.lua was changed")

	prevID, err := os.ReadFile(filepath.Join(home, "scripts", "previous"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, "scripts", "versions", strings.TrimSpace(string(prevID)), "extra.lua"), nil, 0o644))
	r = run()
	out = r.stdout + r.err
	assert.NotContains(t, out, "EVIL")
	assert.NotContains(t, out, "probe")
	assert.Contains(t, r.err, "extra.lua is extra")
	assert.Contains(t, r.err, "running the embedded scripts instead")
}

// TestListShowsTheVerifyingSigner: the signer scripts list names is the key that verifies the
// bundle now, not what the unsigned install record says.
func TestListShowsTheVerifyingSigner(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	t.Setenv("TOKENRUN_SYSTEM_TRUST", filepath.Join(t.TempDir(), "none"))
	work := t.TempDir()
	key := filepath.Join(work, "release")
	require.Equal(t, runner.ExitOK, tokenrun(t, "", "scripts", "keygen", "--out", key, "--comment", "Real Bank").code)
	out := filepath.Join(work, "b.bundle")
	r := tokenrun(t, "", "scripts", "pack", "--dir", bankTree(t, "1.0.0"), "--key", key, "--out", out)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	r = tokenrun(t, "", "scripts", "install", "--trust", key+".pub", out)
	require.Equal(t, runner.ExitOK, r.code, r.err)

	records, err := filepath.Glob(filepath.Join(home, "scripts", "versions", "*.json"))
	require.NoError(t, err)
	require.Len(t, records, 1)
	raw, err := os.ReadFile(records[0])
	require.NoError(t, err)
	var meta map[string]any
	require.NoError(t, json.Unmarshal(raw, &meta))
	realID := meta["signer"].(string)
	meta["signer"], meta["signer_comment"] = "FORGED", "Evil Corp \x1b[2J"
	meta["source"] = "/tmp/x\x1b]0;title\x07"
	raw, err = json.Marshal(meta)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(records[0], raw, 0o644))

	r = tokenrun(t, "", "scripts", "list")
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "signed by "+realID+" Real Bank")
	assert.NotContains(t, r.stdout, "FORGED")
	assert.NotContains(t, r.stdout, "\x1b")
	assert.Contains(t, r.stdout, `installed from /tmp/x\x1b]0;title\x07`)
}
