package soft

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOpenDirs(t *testing.T) {
	ctx := context.Background()
	t.Run("missing directory is created", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		p := newProvider(t, Options{}, dir)
		infos, err := p.Tokens(ctx)
		require.NoError(t, err)
		require.Len(t, infos, 1)
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		fi, err = os.Stat(filepath.Join(dir, stateName))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	})
	t.Run("directory with other files is refused and left alone", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600))
		_, err := Open(Options{}, dir)
		require.ErrorContains(t, err, "notes.txt")
		require.ErrorIs(t, err, token.ErrInvalidInput)
		assert.Equal(t, []string{"notes.txt"}, dirNames(t, dir))
	})
	t.Run("leftovers of a crashed creation", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, tempPrefix+"123"), []byte(`{"form`), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, lockName), nil, 0o600))
		newProvider(t, Options{}, dir)
		assert.ElementsMatch(t, []string{stateName, lockName}, dirNames(t, dir))
	})
	t.Run("arguments", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Open(Options{})
		require.ErrorIs(t, err, token.ErrInvalidInput)
		_, err = Open(Options{}, dir, dir+"/.")
		require.ErrorContains(t, err, "given twice")
	})
	t.Run("several tokens, opened by serial", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		p := newProvider(t, Options{}, a, b)
		infos, err := p.Tokens(ctx)
		require.NoError(t, err)
		require.Len(t, infos, 2)
		assert.Equal(t, uint(0), infos[0].Slot)
		assert.Equal(t, uint(1), infos[1].Slot)
		assert.NotEqual(t, infos[0].Serial, infos[1].Serial)
		assert.Equal(t, "software token ("+a+", "+b+")", p.Description())
		tk, err := p.Open(ctx, token.Info{Serial: infos[1].Serial})
		require.NoError(t, err)
		defer tk.Close()
		assert.Equal(t, infos[1], info(t, tk))

		_, err = p.Open(ctx, token.Info{Serial: "0000000000000000"})
		requireCode(t, err, token.CKR_TOKEN_NOT_PRESENT, token.ErrTokenNotPresent)
		_, err = p.Open(ctx, token.Info{Label: "KAZTOKEN"})
		require.ErrorIs(t, err, token.ErrInvalidInput)

		// Exactly one: token.Wait refuses two.
		_, err = token.Wait(ctx, p, token.WaitOptions{})
		require.ErrorIs(t, err, token.ErrSeveralTokens)
	})
	t.Run("a copied directory is ambiguous", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		require.NoError(t, Create(a, Options{}))
		data, err := os.ReadFile(filepath.Join(a, stateName))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(b, stateName), data, 0o600))
		p := newProvider(t, Options{}, a, b)
		infos, err := p.Tokens(ctx)
		require.NoError(t, err)
		_, err = p.Open(ctx, infos[0])
		require.ErrorIs(t, err, token.ErrSeveralTokens)
	})
	t.Run("create", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Create(dir, Options{Label: "SUPPORT"}))
		require.ErrorIs(t, Create(dir, Options{}), token.ErrAlreadyExists)
		p := newProvider(t, Options{}, dir)
		assert.Equal(t, "SUPPORT", info(t, openFirst(t, p)).Label)
	})
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newProvider(t, Options{}, dir)
	tk := openFirst(t, p)
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	k, s := genKey(t, tk, token.KeyRequest{Type: token.EC, Label: "profile"})
	der := selfSigned(t, s, "client")
	_, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: k.ID, Label: "profile cert"})
	require.NoError(t, err)
	for range 3 {
		require.Error(t, tk.Login(ctx, token.User, "wrong-pin"))
	}
	for range 2 {
		require.Error(t, tk.Login(ctx, token.SO, "wrong-pin"))
	}
	before := info(t, tk)
	require.NoError(t, tk.Close())
	require.NoError(t, p.Close())

	p2 := newProvider(t, Options{}, dir)
	tk2 := openFirst(t, p2)
	after := info(t, tk2)
	assert.Equal(t, before, after)
	assert.Equal(t, token.PINStatus{CountLow: true, RetriesLeft: 7}, after.UserPIN)
	assert.Equal(t, token.PINStatus{CountLow: true, RetriesLeft: 8}, after.SOPIN)

	requireCode(t, tk2.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	require.NoError(t, tk2.Login(ctx, token.User, userPIN))
	keys, err := tk2.Keys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, k.ID, keys[0].ID)
	assert.Equal(t, "profile", keys[0].Label)
	assert.True(t, k.Public.(*ecdsa.PublicKey).Equal(keys[0].Public))
	certs, err := tk2.Certificates(ctx)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	assert.Equal(t, der, certs[0].DER)
	assert.Equal(t, "profile cert", certs[0].Label)
	assert.Equal(t, k.ID, certs[0].ID)

	s2, err := tk2.Signer(ctx, keys[0])
	require.NoError(t, err)
	digest := sha256.Sum256([]byte("after reopening"))
	sig, err := s2.Sign(nil, digest[:], nil)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(k.Public.(*ecdsa.PublicKey), digest[:], sig))

	require.NoError(t, tk2.Format(ctx, soPIN, "RENAMED"))
	require.NoError(t, p2.Close())
	p3 := newProvider(t, Options{}, dir)
	infos, err := p3.Tokens(ctx)
	require.NoError(t, err)
	assert.Equal(t, "RENAMED", infos[0].Label)
	assert.False(t, infos[0].UserPINInitialized)
}

func TestAtomicWrite(t *testing.T) {
	ctx := context.Background()
	dir, _, tk := loggedIn(t)
	genKey(t, tk, token.KeyRequest{Type: token.Ed25519})
	require.Error(t, tk.Login(ctx, token.User, "wrong-pin"))
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	assert.ElementsMatch(t, []string{stateName, lockName}, dirNames(t, dir), "no temporary file left")

	// What a writer killed before its rename leaves is ignored, then cleared by the next write.
	stale := filepath.Join(dir, tempPrefix+"42")
	require.NoError(t, os.WriteFile(stale, []byte(`{"format":"tokenrun-soft`), 0o600))
	assert.Equal(t, 10, info(t, tk).UserPIN.RetriesLeft)
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	assert.ElementsMatch(t, []string{stateName, lockName}, dirNames(t, dir))
}

func TestCorruptState(t *testing.T) {
	ctx := context.Background()
	edit := func(f func(m map[string]any)) func([]byte) []byte {
		return func(good []byte) []byte {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				panic(err)
			}
			f(m)
			out, err := json.Marshal(m)
			if err != nil {
				panic(err)
			}
			return out
		}
	}
	cases := []struct {
		name string
		make func(good []byte) []byte
		want string
	}{
		{"garbage", func([]byte) []byte { return []byte("\x00\x01garbage") }, "is corrupt"},
		{"truncated", func(good []byte) []byte { return good[:len(good)/2] }, "is corrupt"},
		{"empty", func([]byte) []byte { return nil }, "is corrupt"},
		{"newer version", edit(func(m map[string]any) { m["version"] = 2 }), "has version 2, this tokenrun understands version 1"},
		{"other format", edit(func(m map[string]any) { m["format"] = "something" }), "is corrupt"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = true }), "is corrupt"},
		{"tries above the maximum", edit(func(m map[string]any) { m["user_pin"].(map[string]any)["tries_left"] = 11 }), "11 tries left of 10"},
		{"no SO PIN", edit(func(m map[string]any) { delete(m["so_pin"].(map[string]any), "secret") }), "no SO PIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, Create(dir, Options{}))
			path := filepath.Join(dir, stateName)
			good, err := os.ReadFile(path)
			require.NoError(t, err)
			bad := tc.make(good)
			require.NoError(t, os.WriteFile(path, bad, 0o600))

			_, err = Open(Options{}, dir)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, tc.want)

			// Also when it goes bad under an open provider: every operation reports it,
			// none writes over it.
			require.NoError(t, os.WriteFile(path, good, 0o600))
			p := newProvider(t, Options{}, dir)
			tk := openFirst(t, p)
			require.NoError(t, os.WriteFile(path, bad, 0o600))
			for _, err := range []error{
				tk.Login(ctx, token.User, userPIN),
				tk.Login(ctx, token.SO, "wrong-pin"),
				tk.Format(ctx, soPIN, ""),
				SetTries(dir, token.User, 10),
			} {
				require.ErrorContains(t, err, path)
			}
			_, err = p.Tokens(ctx)
			require.ErrorContains(t, err, path)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(bad, got), "the file must be left as it was")
			assert.ElementsMatch(t, []string{stateName, lockName}, dirNames(t, dir))
		})
	}
}

// secretsOf opens a key's private material through package internals, for the disk scan
// only: no package API returns it.
func secretsOf(t *testing.T, tk token.Token, id []byte) [][]byte {
	t.Helper()
	tt := tk.(*tok)
	var out [][]byte
	err := tt.do(context.Background(), "test", false, func(tx *txn) error {
		rec := tx.findKey(id)
		require.NotNil(t, rec)
		der, err := unseal(tx.sess.master, rec.Private, keyAAD(rec.ID, rec.Public))
		require.NoError(t, err)
		out = append(out, der, slices.Clone(tx.sess.master))
		priv, err := x509.ParsePKCS8PrivateKey(der)
		require.NoError(t, err)
		switch k := priv.(type) {
		case *rsa.PrivateKey:
			out = append(out, k.D.Bytes(), k.Primes[0].Bytes(), k.Primes[1].Bytes())
		case *ecdsa.PrivateKey:
			b, err := k.Bytes()
			require.NoError(t, err)
			out = append(out, b)
		case ed25519.PrivateKey:
			out = append(out, k.Seed())
		default:
			t.Fatalf("unexpected key %T", priv)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// jsonStrings collects every string in a JSON document, keys included.
func jsonStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case map[string]any:
		for k, e := range x {
			*out = append(*out, k)
			jsonStrings(e, out)
		}
	case []any:
		for _, e := range x {
			jsonStrings(e, out)
		}
	}
}

func TestNoSecretsOnDisk(t *testing.T) {
	ctx := context.Background()
	const (
		firstUser = "First-User-PIN-4711"
		newUser   = "Second-User-PIN-0815"
		initUser  = "Third-User-PIN-2024"
		firstSO   = "First-SO-PIN-1234"
		newSO     = "Second-SO-PIN-5678"
	)
	pins := []string{firstUser, newUser, initUser, firstSO, newSO}
	dir, _, tk := newToken(t, Options{DefaultUserPIN: firstUser, DefaultSOPIN: firstSO})
	require.NoError(t, tk.Login(ctx, token.User, firstUser))
	var secrets [][]byte
	for _, req := range []token.KeyRequest{{Type: token.RSA, Bits: 2048}, {Type: token.EC, Curve: "P-384"}, {Type: token.Ed25519}} {
		k, _ := genKey(t, tk, req)
		secrets = append(secrets, secretsOf(t, tk, k.ID)...)
	}
	require.NoError(t, tk.SetPIN(ctx, firstUser, newUser))
	require.NoError(t, tk.Login(ctx, token.SO, firstSO))
	require.NoError(t, tk.SetPIN(ctx, firstSO, newSO))
	require.NoError(t, tk.InitPIN(ctx, initUser))
	require.NoError(t, tk.Login(ctx, token.User, initUser))
	require.Error(t, tk.Login(ctx, token.User, newUser))

	files := dirNames(t, dir)
	require.NotEmpty(t, files)
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		for _, pin := range pins {
			assert.NotContains(t, string(data), pin, "%s holds a PIN", name)
		}
		for i, s := range secrets {
			assert.False(t, bytes.Contains(data, s), "%s holds secret %d in the clear", name, i)
		}
		if name != stateName {
			continue
		}
		// Binary fields are base64 in JSON: look inside each of them too.
		var doc any
		require.NoError(t, json.Unmarshal(data, &doc))
		var strs []string
		jsonStrings(doc, &strs)
		decoded := 0
		for _, s := range strs {
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				continue
			}
			decoded++
			for _, pin := range pins {
				assert.False(t, bytes.Contains(raw, []byte(pin)), "a base64 field holds a PIN")
			}
			for i, sec := range secrets {
				assert.False(t, bytes.Contains(raw, sec), "a base64 field holds secret %d", i)
			}
		}
		assert.Greater(t, decoded, 10, "the scan must have looked into the binary fields")
	}
}

// TestConcurrentProviders has two providers, as two processes would, on one directory.
func TestConcurrentProviders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{UserMaxTries: 50}
	p1 := newProvider(t, opts, dir)
	p2 := newProvider(t, opts, dir)
	tokens := []token.Token{openFirst(t, p1), openFirst(t, p2)}

	t.Run("no lost try", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, tk := range tokens {
			wg.Go(func() {
				for range 10 {
					assert.ErrorIs(t, tk.Login(ctx, token.User, "wrong-pin"), token.ErrPINIncorrect)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, 30, info(t, tokens[0]).UserPIN.RetriesLeft)
		assert.Equal(t, 30, info(t, tokens[1]).UserPIN.RetriesLeft)
	})

	t.Run("no lost object", func(t *testing.T) {
		for _, tk := range tokens {
			require.NoError(t, tk.Login(ctx, token.User, userPIN))
		}
		var wg sync.WaitGroup
		for i, tk := range tokens {
			wg.Go(func() {
				for j := range 5 {
					_, err := tk.GenerateKey(ctx, token.KeyRequest{Type: token.Ed25519, ID: []byte{byte(i), byte(j)}})
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		for _, tk := range tokens {
			keys, err := tk.Keys(ctx)
			require.NoError(t, err)
			assert.Len(t, keys, 10)
		}
		assert.ElementsMatch(t, []string{stateName, lockName}, dirNames(t, dir))
	})

	t.Run("a format elsewhere ends the login here", func(t *testing.T) {
		k, err := tokens[0].GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		require.NoError(t, err)
		s, err := tokens[0].Signer(ctx, k)
		require.NoError(t, err)
		require.NoError(t, tokens[1].Format(ctx, soPIN, ""))
		_, err = s.Sign(nil, make([]byte, 32), nil)
		requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
		keys, err := tokens[0].Keys(ctx)
		require.NoError(t, err)
		assert.Empty(t, keys)
	})
}

const helperEnv = "TOKENRUN_SOFT_TEST_HELPER"

// helperProcess is a child process of TestProcesses: "keys:N:DIR" adds a key with id N,
// "wrong:DIR" makes five wrong logins.
func helperProcess(arg string) int {
	ctx := context.Background()
	mode, dir, _ := strings.Cut(arg, ":")
	var id string
	if mode == "keys" {
		id, dir, _ = strings.Cut(dir, ":")
	}
	p, err := Open(Options{UserMaxTries: 50}, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.Close()
	infos, err := p.Tokens(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tk, err := p.Open(ctx, infos[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch mode {
	case "keys":
		if err := tk.Login(ctx, token.User, userPIN); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := tk.GenerateKey(ctx, token.KeyRequest{Type: token.EC, ID: []byte(id)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "wrong":
		for range 5 {
			if err := tk.Login(ctx, token.User, "wrong-pin"); err == nil {
				return 1
			}
		}
	}
	return 0
}

// TestProcesses shares one token between real processes: the flock is what keeps them
// apart.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	require.NoError(t, Create(dir, Options{UserMaxTries: 50}))
	run := func(args ...string) {
		var wg sync.WaitGroup
		for _, a := range args {
			wg.Go(func() {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), helperEnv+"="+a)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "%s", out)
			})
		}
		wg.Wait()
	}
	run("keys:a:"+dir, "keys:b:"+dir, "keys:c:"+dir)
	run("wrong:"+dir, "wrong:"+dir, "wrong:"+dir)

	p := newProvider(t, Options{}, dir)
	tk := openFirst(t, p)
	assert.Equal(t, 35, info(t, tk).UserPIN.RetriesLeft)
	require.NoError(t, tk.Login(context.Background(), token.User, userPIN))
	keys, err := tk.Keys(context.Background())
	require.NoError(t, err)
	var ids []string
	for _, k := range keys {
		ids = append(ids, string(k.ID))
	}
	assert.ElementsMatch(t, []string{"a", "b", "c"}, ids)
}

// TestUnplug removes a token's directory and puts it back, as support unplugs and plugs in
// a token to replay a client's session.
func TestUnplug(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	p := newProvider(t, Options{}, a, b)
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 2)
	tk, err := p.Open(ctx, infos[0])
	require.NoError(t, err)
	defer tk.Close()
	require.NoError(t, tk.Login(ctx, token.User, userPIN))

	out := a + ".unplugged"
	require.NoError(t, os.Rename(a, out))
	now, err := p.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, now, 1)
	assert.Equal(t, infos[1].Serial, now[0].Serial)
	_, err = tk.Info(ctx)
	te := requireCode(t, err, token.CKR_TOKEN_NOT_PRESENT, token.ErrTokenNotPresent)
	assert.Equal(t, "token info", te.Op)
	_, err = p.Open(ctx, infos[0])
	require.ErrorIs(t, err, token.ErrTokenNotPresent)
	_, err = os.Stat(a)
	require.ErrorIs(t, err, os.ErrNotExist, "an unplugged token is not recreated")

	require.NoError(t, os.Rename(out, a))
	now, err = p.Tokens(ctx)
	require.NoError(t, err)
	assert.Len(t, now, 2)
	assert.Equal(t, infos[0], info(t, tk))
	requireCode(t, tk.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
}
