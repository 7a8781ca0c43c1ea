package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
)

// tree exports the shipped scripts with the given set version.
func tree(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, os.CopyFS(dir, scripts.FS))
	m, err := os.ReadFile(filepath.Join(dir, "manifest.yaml"))
	require.NoError(t, err)
	m = bytes.Replace(m, []byte("version: 1.0.0"), []byte("version: "+version), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.yaml"), m, 0o644))
	return dir
}

func key(t *testing.T) PrivateKey {
	t.Helper()
	k, err := GenerateKey("test bank 2025")
	require.NoError(t, err)
	return k
}

func pack(t *testing.T, dir string, k PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := Pack(dir, k, &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func readVerify(archive []byte, keys Keyring) (*Bundle, error) {
	files, err := Read(bytes.NewReader(archive))
	if err != nil {
		return nil, err
	}
	return Verify(files, keys, "test.bundle")
}

func TestKeyFormats(t *testing.T) {
	k := key(t)
	pk, err := ParsePrivateKey([]byte(k.String()))
	require.NoError(t, err)
	assert.Equal(t, k.Key, pk.Key)
	assert.Equal(t, "test bank 2025", pk.Comment)
	pubs, err := ParsePublicKeys([]byte("# bank keys\n\n" + k.Public().String()))
	require.NoError(t, err)
	require.Len(t, pubs, 1)
	assert.Equal(t, k.Public().ID(), pubs[0].ID())

	_, err = ParsePublicKeys([]byte(k.String()))
	assert.ErrorContains(t, err, "is a tokenrun-ed25519-private key where a tokenrun-ed25519-public key is needed")
	_, err = ParsePrivateKey([]byte(k.Public().String()))
	assert.ErrorContains(t, err, "public key where a tokenrun-ed25519-private")
	_, err = ParsePublicKeys([]byte("tokenrun-ed25519-public AAAA x\n"))
	assert.ErrorContains(t, err, "damaged")
	_, err = ParsePublicKeys([]byte("ssh-ed25519 AAAA x\n"))
	assert.ErrorContains(t, err, "not a tokenrun-ed25519-public key")
}

func TestPackVerify(t *testing.T) {
	k := key(t)
	b, err := readVerify(pack(t, tree(t, "1.2.0"), k), Keyring{k.Public()})
	require.NoError(t, err)
	assert.Equal(t, "1.2.0", b.Manifest.Version)
	assert.Equal(t, k.Public().ID(), b.Signer.ID())
	assert.Equal(t, []string{"default"}, b.Manifest.Regions)
	assert.Equal(t, scripts.ProcedureVersion{Version: "1.0.0", API: 1}, b.Manifest.ProcedureVersions["change_pin"])
	assert.Contains(t, b.Manifest.Files, "lib/tokens.lua")
	assert.NotContains(t, b.Manifest.Files, "manifest.yaml")
	assert.Contains(t, b.Set.Procedures, "enroll")
	assert.Regexp(t, `^1\.2\.0-[0-9a-f]{12}$`, b.ID())
}

// tamper edits a verified bundle's files and re-verifies them.
func TestVerifyRefusesTampering(t *testing.T) {
	k := key(t)
	archive := pack(t, tree(t, "1.0.0"), k)
	otherTree := tree(t, "1.0.1")
	require.NoError(t, os.WriteFile(filepath.Join(otherTree, "change_pin.lua"), []byte("return { name = \"change_pin\", description = \"x\",\n  version = \"1.0.1\",\n  api = 1,\n  run = function() end }\n"), 0o644))
	other := pack(t, otherTree, k)
	otherFiles, err := Read(bytes.NewReader(other))
	require.NoError(t, err)
	stranger := key(t)

	tests := []struct {
		name   string
		edit   func(Files)
		keys   Keyring
		is     error
		reason string
	}{
		{"changed byte in a script", func(f Files) { f["change_pin.lua"][10] ^= 1 }, nil, ErrContent, "change_pin.lua was changed"},
		{"missing file", func(f Files) { delete(f, "lib/msg.lua") }, nil, ErrContent, "lib/msg.lua is missing"},
		{"extra file", func(f Files) { f["lib/evil.lua"] = []byte("os.exit()") }, nil, ErrContent, "lib/evil.lua is extra"},
		{"edited manifest", func(f Files) { f["manifest.yaml"] = append(f["manifest.yaml"], '\n') }, nil, ErrSignature, "not signed by any of the 1 trusted keys"},
		{"manifest of another signed bundle", func(f Files) {
			f["manifest.yaml"], f["manifest.sig"] = otherFiles["manifest.yaml"], otherFiles["manifest.sig"]
		}, nil, ErrContent, "change_pin.lua was changed"},
		{"missing signature", func(f Files) { delete(f, "manifest.sig") }, nil, ErrSignature, "manifest.sig is missing"},
		{"truncated signature", func(f Files) { f["manifest.sig"] = f["manifest.sig"][:10] }, nil, ErrSignature, "manifest.sig is 10 bytes"},
		{"unknown key", func(Files) {}, Keyring{stranger.Public()}, ErrSignature, "not signed by any of the 1 trusted keys (" + stranger.Public().ID() + ")"},
		{"no key at all", func(Files) {}, Keyring{}, ErrNoTrust, "no trusted release key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Read(bytes.NewReader(archive))
			require.NoError(t, err)
			tt.edit(files)
			keys := tt.keys
			if keys == nil {
				keys = Keyring{k.Public()}
			}
			_, err = Verify(files, keys, "test.bundle")
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.is)
			assert.Contains(t, err.Error(), tt.reason)
		})
	}
}

// rawArchive writes entries as given, for archives Pack would never make.
type entry struct {
	hdr  tar.Header
	data string
}

func rawArchive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		h.Mode = 0o644
		require.NoError(t, tw.WriteHeader(&h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.data))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

func TestReadRefusesUnsafeArchives(t *testing.T) {
	old := maxEntrySize
	maxEntrySize = 1024
	t.Cleanup(func() { maxEntrySize = old })
	reg := func(name, data string) entry { return entry{hdr: tar.Header{Name: name}, data: data} }
	tests := []struct {
		name    string
		archive []byte
		reason  string
	}{
		{"dot-dot path", rawArchive(t, reg("manifest.yaml", "x"), reg("../evil.lua", "x")), `"../evil.lua" leaves the tree`},
		{"dot-dot inside", rawArchive(t, reg("lib/../../evil.lua", "x")), "leaves the tree"},
		{"absolute path", rawArchive(t, reg("/etc/tokenrun/trusted-keys", "x")), `absolute path "/etc/tokenrun/trusted-keys"`},
		{"backslash", rawArchive(t, reg(`lib\..\..\x`, "x")), "backslash"},
		{"symlink", rawArchive(t, entry{hdr: tar.Header{Name: "lib/x.lua", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}), `"lib/x.lua" is a link (to "/etc/passwd")`},
		{"hardlink", rawArchive(t, reg("a.lua", "x"), entry{hdr: tar.Header{Name: "b.lua", Typeflag: tar.TypeLink, Linkname: "a.lua"}}), `"b.lua" is a link`},
		{"device", rawArchive(t, entry{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeChar}}), "only regular files"},
		{"duplicate entry", rawArchive(t, reg("a.lua", "x"), reg("a.lua", "y")), `"a.lua" appears twice`},
		{"oversized entry", rawArchive(t, reg("big.lua", strings.Repeat("-", 2000))), `"big.lua" is 2000 bytes; a bundle file may have at most 1024`},
		{"file and directory", rawArchive(t, reg("lib", "x"), reg("lib/a.lua", "y")), `"lib" is both a file and a directory`},
		{"not gzip", []byte("PK\x03\x04 a zip"), "not a gzip-compressed tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.archive))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrArchive)
			assert.Contains(t, err.Error(), tt.reason)
		})
	}
}

// signed makes a bundle from files with a manifest Pack would refuse to write.
func signed(t *testing.T, k PrivateKey, manifest string, files Files) Files {
	t.Helper()
	files["manifest.yaml"] = []byte(manifest)
	files["manifest.sig"] = ed25519.Sign(k.Key, files["manifest.yaml"])
	return files
}

func TestVersionsRefused(t *testing.T) {
	k := key(t)
	proc := []byte(`return { name = "a", version = "2.0.0", api = 1, description = "a", run = function() end }`)
	sum := func(b []byte) string { return sha256hex(b) }
	base := "version: 2.0.0\napi: 1\nprocedures: {a: a.lua}\nfiles: {a.lua: " + sum(proc) + "}\n"

	_, err := Verify(signed(t, k, base+"procedure_versions: {a: {version: 2.0.0, api: 99}}\n", Files{"a.lua": proc}), Keyring{k.Public()}, "b")
	assert.ErrorContains(t, err, "procedure a 2.0.0 needs script API 99; this tokenrun has API 1")

	old := runtime.Version
	runtime.Version = "1.4.0"
	t.Cleanup(func() { runtime.Version = old })
	_, err = Verify(signed(t, k, base+"runtime: 1.5.0\n", Files{"a.lua": proc}), Keyring{k.Public()}, "b")
	assert.ErrorContains(t, err, "needs tokenrun 1.5.0 or newer; this tokenrun is 1.4.0")
	_, err = Verify(signed(t, k, base+"procedure_versions: {a: {version: 2.0.0, api: 1, runtime: 9.0.0}}\n", Files{"a.lua": proc}), Keyring{k.Public()}, "b")
	assert.ErrorContains(t, err, "procedure a 2.0.0: needs tokenrun 9.0.0 or newer; this tokenrun is 1.4.0")
	_, err = Verify(signed(t, k, base+"runtime: 1.4.0\n", Files{"a.lua": proc}), Keyring{k.Public()}, "b")
	assert.NoError(t, err)
}

func TestSystemTrust(t *testing.T) {
	k := key(t)
	path := filepath.Join(t.TempDir(), "trusted-keys")
	t.Setenv(systemTrustEnv, path)
	var warn bytes.Buffer
	assert.Empty(t, SystemKeys(&warn), "no file: no keys")
	assert.Empty(t, warn.String())

	require.NoError(t, os.WriteFile(path, []byte(k.Public().String()), 0o644))
	if os.Getuid() == 0 {
		keys := SystemKeys(&warn)
		require.Len(t, keys, 1)
		assert.Equal(t, k.Public().ID(), keys[0].ID())
	}
	require.NoError(t, os.Chmod(path, 0o664))
	assert.Empty(t, SystemKeys(&warn))
	assert.Contains(t, warn.String(), "system trust file ignored")
	assert.Contains(t, warn.String(), "writable by group or others")
	if os.Getuid() == 0 {
		require.NoError(t, os.Chmod(path, 0o644))
		require.NoError(t, os.Chown(path, 1000, 0))
		warn.Reset()
		assert.Empty(t, SystemKeys(&warn))
		assert.Contains(t, warn.String(), "owned by uid 1000, not root")
	}
}

func TestStore(t *testing.T) {
	k := key(t)
	keys := Keyring{k.Public()}
	store := OpenStore(t.TempDir())
	none, err := store.Versions()
	require.NoError(t, err)
	assert.Empty(t, none, "nothing installed, no store: no versions")
	install := func(version string, downgrade bool) (Meta, error) {
		b, err := readVerify(pack(t, tree(t, version), k), keys)
		require.NoError(t, err)
		return store.Install(b, InstallOptions{Source: version + ".bundle", AllowDowngrade: downgrade, UserKeys: keys})
	}
	m1, err := install("1.0.0", false)
	require.NoError(t, err)
	m2, err := install("1.1.0", false)
	require.NoError(t, err)
	active, _ := store.Active()
	previous, _ := store.Previous()
	assert.Equal(t, m2.ID, active)
	assert.Equal(t, m1.ID, previous)
	user, err := store.UserKeys()
	require.NoError(t, err)
	assert.Len(t, user, 1, "the --trust key is remembered once")

	_, err = install("1.0.5", false)
	assert.ErrorIs(t, err, ErrDowngrade)
	assert.ErrorContains(t, err, "1.0.5.bundle is 1.0.5, the installed one is 1.1.0: give --allow-downgrade")
	active, _ = store.Active()
	assert.Equal(t, m2.ID, active, "a refused install leaves the active version")

	var warn bytes.Buffer
	b, err := store.LoadActive(keys, &warn)
	require.NoError(t, err)
	assert.Equal(t, "1.1.0", b.Manifest.Version)
	assert.Empty(t, warn.String())

	from, to, err := store.Rollback()
	require.NoError(t, err)
	assert.Equal(t, m2.ID, from)
	assert.Equal(t, m1.ID, to)
	b, err = store.LoadActive(keys, &warn)
	require.NoError(t, err)
	assert.Equal(t, "1.0.0", b.Manifest.Version)
	_, _, err = store.Rollback() // and back
	require.NoError(t, err)

	m3, err := install("1.0.5", true)
	require.NoError(t, err)
	entries, _ := os.ReadDir(filepath.Join(store.Dir, "versions"))
	assert.Len(t, entries, 4, "active and previous kept, each with its record; older pruned")
	require.NoError(t, os.Mkdir(filepath.Join(store.Dir, "versions", ".tmp-1.2.0-x"), 0o700))
	ids, err := store.Versions()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{m2.ID, m3.ID}, ids, "the kept versions; an interrupted install is not one")
	_, err = os.Stat(filepath.Join(store.Dir, "versions", m1.ID))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestInstalledTamperingFallsBack(t *testing.T) {
	k := key(t)
	keys := Keyring{k.Public()}
	setup := func(t *testing.T) (*Store, string, string) {
		store := OpenStore(t.TempDir())
		for _, v := range []string{"1.0.0", "1.1.0"} {
			b, err := readVerify(pack(t, tree(t, v), k), keys)
			require.NoError(t, err)
			_, err = store.Install(b, InstallOptions{Source: v})
			require.NoError(t, err)
		}
		active, _ := store.Active()
		previous, _ := store.Previous()
		return store, filepath.Join(store.Dir, "versions", active), filepath.Join(store.Dir, "versions", previous)
	}
	tests := []struct {
		name   string
		edit   func(t *testing.T, dir, prevDir string)
		keys   Keyring
		reason string
	}{
		{"edited script", func(t *testing.T, dir, _ string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "change_pin.lua"), []byte("os.execute('rm -rf /')"), 0o644))
		}, nil, "change_pin.lua was changed"},
		{"missing file", func(t *testing.T, dir, _ string) { require.NoError(t, os.Remove(filepath.Join(dir, "lib", "msg.lua"))) }, nil, "lib/msg.lua is missing"},
		{"extra file", func(t *testing.T, dir, _ string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "lib", "extra.lua"), nil, 0o644))
		}, nil, "lib/extra.lua is extra"},
		{"symlink", func(t *testing.T, dir, _ string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "tour.lua")))
			require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "tour.lua")))
		}, nil, "tour.lua is not a regular file"},
		{"manifest of the other version swapped in", func(t *testing.T, dir, prev string) {
			for _, f := range []string{"manifest.yaml", "manifest.sig"} {
				b, err := os.ReadFile(filepath.Join(prev, f))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
			}
		}, nil, "the manifest was replaced"},
		{"key no longer trusted", func(*testing.T, string, string) {}, Keyring{key(t).Public()}, "not signed by any of the 1 trusted keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, dir, prev := setup(t)
			tt.edit(t, dir, prev)
			keys := keys
			if tt.keys != nil {
				keys = tt.keys
			}
			var warn bytes.Buffer
			b, err := store.LoadActive(keys, &warn)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Contains(t, warn.String(), "refusing the installed scripts 1.1.0-")
			if tt.keys == nil {
				require.NotNil(t, b, warn.String())
				assert.Equal(t, "1.0.0", b.Manifest.Version)
				assert.Contains(t, warn.String(), "running the previous installed scripts 1.0.0-")
			} else {
				assert.Nil(t, b)
				assert.Contains(t, warn.String(), "refusing the previous scripts 1.0.0-")
			}
		})
	}
}

// The downgrade check rests on scripts.CompareVersions.
func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.0.0", "1.0.1", -1}, {"1.10.0", "1.9.0", 1}, {"2.0.0", "10.0.0", -1},
		{"1.0.0-rc.1", "1.0.0", -1}, {"1.0.0-rc.2", "1.0.0-rc.10", -1}, {"1.0.0-alpha", "1.0.0-1", 1},
		{"1.0.0+build.5", "1.0.0", 0}, {"dev", "0.0.1", -1},
	} {
		got := scripts.CompareVersions(tt.a, tt.b)
		assert.Equal(t, tt.want, max(-1, min(1, got)), "%s vs %s", tt.a, tt.b)
	}
}
