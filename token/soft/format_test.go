package soft

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// countWrites counts the state writes to dir while the test runs.
func countWrites(t *testing.T, dir string) *int {
	n := new(int)
	afterStateWrite = func(d string) {
		if d == dir {
			*n++
		}
	}
	t.Cleanup(func() { afterStateWrite = nil })
	return n
}

func TestFormatWithUserPIN(t *testing.T) {
	ctx := context.Background()
	const newUser = "24681357"
	// setup is a token with a profile on it, nobody logged in.
	setup := func(t *testing.T, opts Options) (string, token.Token) {
		dir, _, tk := newToken(t, opts)
		require.NoError(t, tk.Login(ctx, token.User, userPIN))
		_, s := genKey(t, tk, token.KeyRequest{Type: token.EC, Label: "profile"})
		_, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: selfSigned(t, s, "client"), ID: []byte{1}})
		require.NoError(t, err)
		return dir, tk
	}
	cases := []struct {
		name     string
		soPIN    string
		label    string
		userPIN  string
		code     token.ReturnCode // CKR_OK: the format goes through
		cond     error
		soTries  int // SO tries left afterwards
		newLabel string
	}{
		{"formats and sets the user PIN", soPIN, "NEW", newUser, token.CKR_OK, nil, 10, "NEW"},
		{"empty label keeps the label", soPIN, "", newUser, token.CKR_OK, nil, 10, "KAZTOKEN"},
		{"the same user PIN as before", soPIN, "NEW", userPIN, token.CKR_OK, nil, 10, "NEW"},
		{"wrong SO PIN costs an SO try and changes nothing", "00000000", "NEW", newUser, token.CKR_PIN_INCORRECT, token.ErrPINIncorrect, 9, ""},
		{"user PIN too short costs nothing", soPIN, "NEW", "123", token.CKR_PIN_LEN_RANGE, token.ErrPINInvalid, 10, ""},
		{"user PIN too long costs nothing", soPIN, "NEW", "123456789012345678901234567890123", token.CKR_PIN_LEN_RANGE, token.ErrPINInvalid, 10, ""},
		{"label too long costs nothing", soPIN, "a label that is much too long for a token", newUser, token.CKR_ARGUMENTS_BAD, token.ErrInvalidInput, 10, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, tk := setup(t, Options{})
			// One user try down, to see that only a format resets it.
			requireCode(t, tk.Login(ctx, token.User, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			writes := countWrites(t, dir)
			err := token.FormatWithUserPIN(ctx, tk, tc.soPIN, tc.label, tc.userPIN)
			after := info(t, tk)
			assert.Equal(t, tc.soTries, after.SOPIN.RetriesLeft)
			if tc.code != token.CKR_OK {
				requireCode(t, err, tc.code, tc.cond)
				assert.NotContains(t, err.Error(), tc.soPIN)
				assert.NotContains(t, err.Error(), tc.userPIN)
				assert.Equal(t, "KAZTOKEN", after.Label)
				assert.Equal(t, 9, after.UserPIN.RetriesLeft, "the user's count is untouched")
				require.NoError(t, tk.Login(ctx, token.User, userPIN), "the old user PIN still works")
				keys, err := tk.Keys(ctx)
				require.NoError(t, err)
				assert.Len(t, keys, 1, "the profile is still there")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 2, *writes, "the SO PIN's try, then the whole new token in one write")
			assert.Equal(t, tc.newLabel, after.Label)
			assert.True(t, after.UserPINInitialized)
			assert.Equal(t, token.PINStatus{RetriesLeft: 10}, after.UserPIN, "the user's tries are reset")
			certs, err := tk.Certificates(ctx)
			require.NoError(t, err)
			assert.Empty(t, certs)
			requireCode(t, tk.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
			if tc.userPIN != userPIN {
				requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			}
			require.NoError(t, tk.Login(ctx, token.User, tc.userPIN))
			keys, err := tk.Keys(ctx)
			require.NoError(t, err)
			assert.Empty(t, keys)
			// New keys work under the new master key, for the user and through the SO's copy.
			k, _ := genKey(t, tk, token.KeyRequest{Type: token.Ed25519})
			require.NoError(t, tk.Login(ctx, token.SO, soPIN), "the SO PIN stays")
			require.NoError(t, tk.InitPIN(ctx, "13572468"))
			require.NoError(t, tk.Login(ctx, token.User, "13572468"))
			assert.NotNil(t, findKey(t, tk, k.ID))
		})
	}

	t.Run("a locked SO PIN cannot format", func(t *testing.T) {
		dir, tk := setup(t, Options{})
		require.NoError(t, SetTries(dir, token.SO, 0))
		requireCode(t, token.FormatWithUserPIN(ctx, tk, soPIN, "NEW", newUser), token.CKR_PIN_LOCKED, token.ErrPINLocked)
		assert.Equal(t, "KAZTOKEN", info(t, tk).Label)
	})

	t.Run("a formatted token in another process's view", func(t *testing.T) {
		dir, tk := setup(t, Options{})
		other := openFirst(t, newProvider(t, Options{}, dir))
		require.NoError(t, other.Login(ctx, token.User, userPIN))
		require.NoError(t, token.FormatWithUserPIN(ctx, tk, soPIN, "NEW", newUser))
		keys, err := other.Keys(ctx)
		require.NoError(t, err)
		assert.Empty(t, keys, "a login from before the format is dropped")
		requireCode(t, other.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
}

// findKey finds a key by id among those the login shows.
func findKey(t *testing.T, tk token.Token, id []byte) *token.Key {
	t.Helper()
	keys, err := tk.Keys(context.Background())
	require.NoError(t, err)
	for _, k := range keys {
		if string(k.ID) == string(id) {
			return k
		}
	}
	return nil
}

// TestStateWrites: an operation that checks a PIN writes the lost try, then its result in
// one write; what changes a PIN never takes a third.
func TestStateWrites(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		prep func(t *testing.T, tk token.Token)
		op   func(tk token.Token) error
		want int
	}{
		{"login", nil, func(tk token.Token) error { return tk.Login(ctx, token.User, userPIN) }, 2},
		{"wrong login", nil, func(tk token.Token) error { _ = tk.Login(ctx, token.User, "00000000"); return nil }, 1},
		{"set PIN", func(t *testing.T, tk token.Token) { require.NoError(t, tk.Login(ctx, token.User, userPIN)) },
			func(tk token.Token) error { return tk.SetPIN(ctx, userPIN, "13572468") }, 2},
		{"set PIN, wrong old PIN", func(t *testing.T, tk token.Token) { require.NoError(t, tk.Login(ctx, token.User, userPIN)) },
			func(tk token.Token) error { _ = tk.SetPIN(ctx, "00000000", "13572468"); return nil }, 1},
		{"init PIN", func(t *testing.T, tk token.Token) { require.NoError(t, tk.Login(ctx, token.SO, soPIN)) },
			func(tk token.Token) error { return tk.InitPIN(ctx, "13572468") }, 1},
		{"format", nil, func(tk token.Token) error { return tk.Format(ctx, soPIN, "NEW") }, 2},
		{"format with user PIN", nil, func(tk token.Token) error { return token.FormatWithUserPIN(ctx, tk, soPIN, "NEW", "13572468") }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, tk := newToken(t, Options{})
			if tc.prep != nil {
				tc.prep(t, tk)
			}
			n := countWrites(t, dir)
			require.NoError(t, tc.op(tk))
			assert.Equal(t, tc.want, *n)
		})
	}
}
