package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/diagnose"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"

	"github.com/tokenrun/tokenrun/bundle"
)

// TestDiagnoseBundles: diagnose lists the installed bundles with where they are, who signed
// them, which is active and whether each verifies now; a broken bundle or store is reported
// in the diagnosis, which is still written and exits 0.
func TestDiagnoseBundles(t *testing.T) {
	t.Setenv("TOKENRUN_SYSTEM_TRUST", filepath.Join(t.TempDir(), "none"))
	work := t.TempDir()
	key := filepath.Join(work, "release")
	r := tokenrun(t, "", "scripts", "keygen", "--out", key, "--comment", "Test Bank 2025")
	require.Equal(t, runner.ExitOK, r.code, r.err)
	pubText, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	pub, err := bundle.ParsePublicKeys(pubText)
	require.NoError(t, err)
	require.Len(t, pub, 1)
	keyID := pub[0].ID()
	privText, err := os.ReadFile(key)
	require.NoError(t, err)
	// The key material, as it is written in the key files: never in a diagnosis.
	material := []string{strings.Fields(string(pubText))[1], strings.Fields(string(privText))[1]}

	packed := func(version string) string {
		out := filepath.Join(work, version+".bundle")
		r := tokenrun(t, "", "scripts", "pack", "--dir", bankTree(t, version), "--key", key, "--out", out)
		require.Equal(t, runner.ExitOK, r.code, r.err)
		return out
	}
	v12, v13 := packed("1.2.0"), packed("1.3.0")
	install := func(file string) func(t *testing.T, home string) {
		return func(t *testing.T, home string) {
			r := tokenrun(t, "", "scripts", "install", "--trust", key+".pub", file)
			require.Equal(t, runner.ExitOK, r.code, r.err)
		}
	}
	activeDir := func(t *testing.T, home string) string {
		id, err := os.ReadFile(filepath.Join(home, "scripts", "active"))
		require.NoError(t, err)
		return filepath.Join(home, "scripts", "versions", strings.TrimSpace(string(id)))
	}
	running := func(d diagnose.Report) diagnose.Scripts {
		var runs []diagnose.Scripts
		for _, s := range d.Scripts {
			if s.Runs {
				runs = append(runs, s)
			}
		}
		require.Len(t, runs, 1, "exactly one scripts set is the one runs load: %+v", d.Scripts)
		return runs[0]
	}

	tests := []struct {
		name  string
		setup []func(t *testing.T, home string)
		check func(t *testing.T, home string, d diagnose.Report)
		text  []string // in the --text report
	}{
		{
			name: "nothing installed",
			check: func(t *testing.T, home string, d diagnose.Report) {
				assert.Empty(t, d.Bundles)
				assert.Empty(t, d.BundlesError)
				assert.Equal(t, filepath.Join(home, "scripts"), d.BundleStore)
				assert.Equal(t, "embedded", running(d).Source)
				assert.Len(t, d.Scripts, 1)
				_, err := os.Stat(filepath.Join(home, "scripts"))
				assert.ErrorIs(t, err, os.ErrNotExist, "diagnose creates no store")
			},
			text: []string{"installed bundles in", "  none", "<- procedure runs load this"},
		},
		{
			name:  "installed and verified",
			setup: []func(*testing.T, string){install(v12)},
			check: func(t *testing.T, home string, d diagnose.Report) {
				assert.Empty(t, d.BundlesError)
				require.Len(t, d.Bundles, 1)
				b := d.Bundles[0]
				assert.Equal(t, "1.2.0", b.Version)
				assert.True(t, strings.HasPrefix(b.ID, "1.2.0-"), b.ID)
				assert.Equal(t, activeDir(t, home), b.Path)
				assert.Equal(t, v12, b.Source)
				assert.Equal(t, keyID, b.Signer)
				assert.Equal(t, "Test Bank 2025", b.SignerComment)
				assert.False(t, b.Installed.IsZero())
				assert.True(t, b.Active)
				assert.False(t, b.Previous)
				assert.True(t, b.Verified)
				assert.Empty(t, b.VerifyError)
				assert.Empty(t, b.RecordError)
				assert.Equal(t, []diagnose.Key{{ID: keyID, Comment: "Test Bank 2025"}}, d.TrustedKeys)
				// The installed bundle has the digest of the tree it was packed from: the
				// same scripts, the same digest, whatever the manifest says.
				tree, err := scripts.Load(os.DirFS(bankTree(t, "1.2.0")), "tree")
				require.NoError(t, err)
				assert.Equal(t, diagnose.Scripts{Source: "installed scripts " + b.ID, Version: "1.2.0", Digest: tree.Digest, Runs: true}, running(d))
			},
			text: []string{"1.2.0 (1.2.0-", "active", "signed by " + keyID, "verification: OK"},
		},
		{
			name:  "upgrade keeps the previous version",
			setup: []func(*testing.T, string){install(v12), install(v13)},
			check: func(t *testing.T, home string, d diagnose.Report) {
				require.Len(t, d.Bundles, 2)
				assert.Equal(t, "1.3.0", d.Bundles[0].Version)
				assert.True(t, d.Bundles[0].Active)
				assert.Equal(t, "1.2.0", d.Bundles[1].Version)
				assert.True(t, d.Bundles[1].Previous)
				for _, b := range d.Bundles {
					assert.True(t, b.Verified, b.VerifyError)
				}
				assert.Equal(t, "1.3.0", running(d).Version)
			},
			text: []string{"1.3.0 (1.3.0-", "1.2.0 (1.2.0-", "previous", "verification: OK"},
		},
		{
			name: "tampered after install",
			setup: []func(*testing.T, string){install(v12), func(t *testing.T, home string) {
				evil := "return { name = \"change_pin\", description = \"x\", version = \"6.6.6\", api = 1, run = function() end }"
				require.NoError(t, os.WriteFile(filepath.Join(activeDir(t, home), "change_pin.lua"), []byte(evil), 0o644))
			}},
			check: func(t *testing.T, home string, d diagnose.Report) {
				require.Len(t, d.Bundles, 1)
				b := d.Bundles[0]
				assert.Equal(t, "1.2.0", b.Version)
				assert.True(t, b.Active)
				assert.False(t, b.Verified)
				assert.Contains(t, b.VerifyError, "change_pin.lua was changed")
				assert.Equal(t, "embedded", running(d).Source, "a run refuses it and falls back")
			},
			text: []string{"1.2.0 (1.2.0-", "verification: FAILED", "change_pin.lua was changed"},
		},
		{
			name: "no trusted key left",
			setup: []func(*testing.T, string){install(v12), func(t *testing.T, home string) {
				require.NoError(t, os.Remove(filepath.Join(home, "scripts", "trusted-keys")))
			}},
			check: func(t *testing.T, home string, d diagnose.Report) {
				require.Len(t, d.Bundles, 1)
				assert.False(t, d.Bundles[0].Verified)
				assert.Contains(t, d.Bundles[0].VerifyError, "no trusted release key")
				assert.Equal(t, keyID, d.Bundles[0].Signer, "the install record still names the signer")
				assert.Empty(t, d.TrustedKeys)
			},
			text: []string{"verification: FAILED", "no trusted release key", "trusted keys: none"},
		},
		{
			name: "unreadable store",
			setup: []func(*testing.T, string){func(t *testing.T, home string) {
				require.NoError(t, os.MkdirAll(filepath.Join(home, "scripts"), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(home, "scripts", "active"), []byte("../../etc\n"), 0o644))
			}},
			check: func(t *testing.T, home string, d diagnose.Report) {
				assert.Contains(t, d.BundlesError, "not a version directory")
				assert.Empty(t, d.Bundles)
				assert.Equal(t, "embedded", running(d).Source)
			},
			text: []string{"cannot read the store", "not a version directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("TOKENRUN_HOME", home)
			for _, s := range tt.setup {
				s(t, home)
			}

			r := tokenrun(t, "", "diagnose", "--probe=false")
			require.Equal(t, runner.ExitOK, r.code, r.err)
			var d diagnose.Report
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
			tt.check(t, home, d)
			for _, m := range material {
				assert.NotContains(t, r.stdout, m, "no key material in the JSON")
			}

			out := filepath.Join(t.TempDir(), "diag.txt")
			r = tokenrun(t, "", "diagnose", "--probe=false", "--text", "--out", out)
			require.Equal(t, runner.ExitOK, r.code, r.err)
			text, err := os.ReadFile(out)
			require.NoError(t, err, "diagnose always writes its file")
			for _, want := range tt.text {
				assert.Contains(t, string(text), want)
			}
			for _, m := range material {
				assert.NotContains(t, string(text), m, "no key material in the text")
			}
		})
	}
}
