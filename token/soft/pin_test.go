package soft

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

func TestBlankToken(t *testing.T) {
	dir, p, tk := newToken(t, Options{})
	ctx := context.Background()
	i := info(t, tk)
	assert.Equal(t, "KAZTOKEN", i.Label)
	assert.Regexp(t, `^[0-9a-f]{16}$`, i.Serial)
	assert.Equal(t, "tokenrun", i.Manufacturer)
	assert.Equal(t, "software token", i.Model)
	assert.True(t, i.Initialized)
	assert.True(t, i.UserPINInitialized)
	assert.True(t, i.LoginRequired)
	assert.False(t, i.ProtectedAuthPath)
	assert.Equal(t, 4, i.MinPINLen)
	assert.Equal(t, 32, i.MaxPINLen)
	assert.Equal(t, token.PINStatus{RetriesLeft: 10}, i.UserPIN)
	assert.Equal(t, token.PINStatus{RetriesLeft: 10}, i.SOPIN)
	assert.Equal(t, "software token ("+dir+")", p.Description())

	certs, err := tk.Certificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs)
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	keys, err := tk.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)

	// The serial is the token's: the same after reopening.
	require.NoError(t, p.Close())
	again := newProvider(t, Options{Label: "OTHER"}, dir)
	infos, err := again.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, i.Serial, infos[0].Serial)
	assert.Equal(t, "KAZTOKEN", infos[0].Label, "options describe new tokens only")
}

func TestOptions(t *testing.T) {
	bad := []struct {
		name string
		opts Options
		want string
	}{
		{"negative tries", Options{UserMaxTries: -1}, "UserMaxTries"},
		{"negative SO tries", Options{SOMaxTries: -3}, "SOMaxTries"},
		{"max below min", Options{MinPINLen: 8, MaxPINLen: 6}, "MaxPINLen 6 is below MinPINLen 8"},
		{"user PIN too short", Options{DefaultUserPIN: "123"}, "DefaultUserPIN has 3 characters"},
		{"SO PIN too long", Options{MaxPINLen: 8, DefaultSOPIN: "123456789"}, "DefaultSOPIN has 9 characters"},
		{"label too long", Options{Label: "0123456789012345678901234567890123"}, "at most 32"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.opts, t.TempDir())
			require.ErrorContains(t, err, tc.want)
		})
	}

	t.Run("custom", func(t *testing.T) {
		opts := Options{Label: "CLIENT", DefaultUserPIN: "user-pin", DefaultSOPIN: "so-pin-1",
			UserMaxTries: 3, SOMaxTries: 5, MinPINLen: 6, MaxPINLen: 16}
		_, _, tk := newToken(t, opts)
		i := info(t, tk)
		assert.Equal(t, "CLIENT", i.Label)
		assert.Equal(t, 6, i.MinPINLen)
		assert.Equal(t, 16, i.MaxPINLen)
		assert.Equal(t, 3, i.UserPIN.RetriesLeft)
		assert.Equal(t, 5, i.SOPIN.RetriesLeft)
		ctx := context.Background()
		require.NoError(t, tk.Login(ctx, token.User, "user-pin"))
		require.NoError(t, tk.Login(ctx, token.SO, "so-pin-1"))
		requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
	})
}

// TestLockCycle runs a PIN from full to locked, checking the flags and counts at every step.
func TestLockCycle(t *testing.T) {
	for _, role := range []token.Role{token.User, token.SO} {
		t.Run(role.String(), func(t *testing.T) {
			ctx := context.Background()
			_, _, tk := newToken(t, Options{})
			right := map[token.Role]string{token.User: userPIN, token.SO: soPIN}[role]
			status := func() token.PINStatus {
				if role == token.SO {
					return info(t, tk).SOPIN
				}
				return info(t, tk).UserPIN
			}
			for wrong := 1; wrong <= 10; wrong++ {
				err := tk.Login(ctx, role, "00000000")
				te := requireCode(t, err, token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
				left := 10 - wrong
				assert.Equal(t, left, te.RetriesLeft, "after %d wrong", wrong)
				assert.Equal(t, token.PINStatus{
					CountLow:    left > 0,
					FinalTry:    left == 1,
					Locked:      left == 0,
					RetriesLeft: left,
				}, status(), "after %d wrong", wrong)
			}
			// Locked: the right PIN is refused too, and costs nothing.
			te := requireCode(t, tk.Login(ctx, role, right), token.CKR_PIN_LOCKED, token.ErrPINLocked)
			assert.Equal(t, 0, te.RetriesLeft)
			assert.True(t, status().Locked)

			if role == token.SO {
				// A locked SO cannot format either; nothing on a soft token unlocks it
				// but support's SetTries, as openCryptoki needs its files deleted.
				requireCode(t, tk.Format(ctx, soPIN, ""), token.CKR_PIN_LOCKED, token.ErrPINLocked)
				return
			}
			// Procedure 3: the SO unblocks the user PIN with a new one.
			require.NoError(t, tk.Login(ctx, token.SO, soPIN))
			require.NoError(t, tk.InitPIN(ctx, "new-user-pin"))
			assert.Equal(t, token.PINStatus{RetriesLeft: 10}, status())
			requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			require.NoError(t, tk.Login(ctx, token.User, "new-user-pin"))
		})
	}
}

func TestRightPINResetsCount(t *testing.T) {
	ctx := context.Background()
	_, _, tk := newToken(t, Options{})
	for range 3 {
		requireCode(t, tk.Login(ctx, token.User, "wrong-pin"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
	}
	assert.Equal(t, token.PINStatus{CountLow: true, RetriesLeft: 7}, info(t, tk).UserPIN)
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	assert.Equal(t, token.PINStatus{RetriesLeft: 10}, info(t, tk).UserPIN)
	// The user's tries are the user's: the SO's count is untouched throughout.
	assert.Equal(t, token.PINStatus{RetriesLeft: 10}, info(t, tk).SOPIN)
}

// TestTryWrittenBeforeCompare looks at the disk at the moment the PIN is compared: the try
// must already be gone, even for the right PIN, so that a crash cannot give it back.
func TestTryWrittenBeforeCompare(t *testing.T) {
	for _, pin := range []string{userPIN, "wrong-pin"} {
		t.Run(pin, func(t *testing.T) {
			dir, _, tk := newToken(t, Options{})
			var seen []int
			testHookTryWritten = func(d string) {
				if d != dir {
					return
				}
				data, err := os.ReadFile(filepath.Join(dir, stateName))
				require.NoError(t, err)
				var st state
				require.NoError(t, json.Unmarshal(data, &st))
				seen = append(seen, st.UserPIN.TriesLeft)
			}
			t.Cleanup(func() { testHookTryWritten = nil })
			_ = tk.Login(context.Background(), token.User, pin)
			assert.Equal(t, []int{9}, seen)
		})
	}
}

func TestLoginSemantics(t *testing.T) {
	ctx := context.Background()
	t.Run("relogin verifies again and a failure logs out", func(t *testing.T) {
		_, _, tk := loggedIn(t)
		require.NoError(t, tk.Login(ctx, token.User, userPIN))
		requireCode(t, tk.Login(ctx, token.User, "wrong-pin"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
		_, err := tk.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
	t.Run("the other role logs the first out", func(t *testing.T) {
		_, _, tk := loggedIn(t)
		require.NoError(t, tk.Login(ctx, token.SO, soPIN))
		keys, err := tk.Keys(ctx)
		require.NoError(t, err)
		assert.Empty(t, keys)
		_, err = tk.GenerateKey(ctx, token.KeyRequest{Type: token.EC})
		requireCode(t, err, token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
		require.NoError(t, tk.Login(ctx, token.User, userPIN))
		requireCode(t, tk.InitPIN(ctx, "another-pin"), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
	t.Run("logout", func(t *testing.T) {
		_, _, tk := newToken(t, Options{})
		requireCode(t, tk.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
		require.NoError(t, tk.Login(ctx, token.User, userPIN))
		require.NoError(t, tk.Logout(ctx))
		requireCode(t, tk.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
	t.Run("bad role", func(t *testing.T) {
		_, _, tk := newToken(t, Options{})
		requireCode(t, tk.Login(ctx, token.Role(7), userPIN), token.CKR_USER_TYPE_INVALID, nil)
	})
	t.Run("handles share the login, the last close ends it", func(t *testing.T) {
		_, p, tk := loggedIn(t)
		second := openFirst(t, p)
		_, err := second.GenerateKey(ctx, token.KeyRequest{Type: token.Ed25519})
		require.NoError(t, err, "the login made through the first handle")
		require.NoError(t, tk.Close())
		require.NoError(t, second.Logout(ctx), "still logged in through the second handle")
		require.NoError(t, second.Login(ctx, token.User, userPIN))
		require.NoError(t, second.Close())
		third := openFirst(t, p)
		requireCode(t, third.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
}

func TestSetPIN(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		login    bool
		old, new string
		code     token.ReturnCode
		cond     error
		left     int // user tries left afterwards
	}{
		{"not logged in", false, userPIN, "abcdefgh", token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn, 10},
		{"new too short", true, userPIN, "abc", token.CKR_PIN_LEN_RANGE, token.ErrPINInvalid, 10},
		{"new too long", true, userPIN, "012345678901234567890123456789012", token.CKR_PIN_LEN_RANGE, token.ErrPINInvalid, 10},
		{"new equals old", true, userPIN, userPIN, token.CKR_PIN_INVALID, token.ErrPINInvalid, 10},
		{"wrong old", true, "wrong-pin", "abcdefgh", token.CKR_PIN_INCORRECT, token.ErrPINIncorrect, 9},
		{"ok", true, userPIN, "abcdefgh", token.CKR_OK, nil, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, tk := newToken(t, Options{})
			if tc.login {
				require.NoError(t, tk.Login(ctx, token.User, userPIN))
			}
			err := tk.SetPIN(ctx, tc.old, tc.new)
			if tc.code == token.CKR_OK {
				require.NoError(t, err)
			} else {
				te := requireCode(t, err, tc.code, tc.cond)
				if tc.code == token.CKR_PIN_INCORRECT {
					assert.Equal(t, tc.left, te.RetriesLeft)
				}
				assert.NotContains(t, err.Error(), tc.old)
				assert.NotContains(t, err.Error(), tc.new)
			}
			assert.Equal(t, tc.left, info(t, tk).UserPIN.RetriesLeft)
			if tc.code == token.CKR_OK {
				requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
				require.NoError(t, tk.Login(ctx, token.User, tc.new))
			}
		})
	}

	t.Run("keys survive a PIN change", func(t *testing.T) {
		_, _, tk := loggedIn(t)
		k, _ := genKey(t, tk, token.KeyRequest{Type: token.EC})
		require.NoError(t, tk.SetPIN(ctx, userPIN, "changed-pin"))
		require.NoError(t, tk.Login(ctx, token.User, "changed-pin"))
		s, err := tk.Signer(ctx, k)
		require.NoError(t, err)
		_, err = s.Sign(nil, make([]byte, 32), nil)
		require.NoError(t, err)
	})
	t.Run("SO", func(t *testing.T) {
		_, _, tk := newToken(t, Options{})
		require.NoError(t, tk.Login(ctx, token.SO, soPIN))
		require.NoError(t, tk.SetPIN(ctx, soPIN, "new-so-pin"))
		requireCode(t, tk.Login(ctx, token.SO, soPIN), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
		assert.Equal(t, 9, info(t, tk).SOPIN.RetriesLeft)
		assert.Equal(t, 10, info(t, tk).UserPIN.RetriesLeft)
		require.NoError(t, tk.Login(ctx, token.SO, "new-so-pin"))
		require.NoError(t, tk.InitPIN(ctx, "user-again"))
		require.NoError(t, tk.Login(ctx, token.User, "user-again"))
	})
	t.Run("locked while logged in", func(t *testing.T) {
		dir, _, tk := loggedIn(t)
		require.NoError(t, SetTries(dir, token.User, 0))
		requireCode(t, tk.SetPIN(ctx, userPIN, "abcdefgh"), token.CKR_PIN_LOCKED, token.ErrPINLocked)
	})
}

func TestInitPIN(t *testing.T) {
	ctx := context.Background()
	t.Run("needs the SO", func(t *testing.T) {
		_, _, tk := newToken(t, Options{})
		requireCode(t, tk.InitPIN(ctx, "abcdefgh"), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
		require.NoError(t, tk.Login(ctx, token.User, userPIN))
		requireCode(t, tk.InitPIN(ctx, "abcdefgh"), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	})
	t.Run("length", func(t *testing.T) {
		_, _, tk := newToken(t, Options{})
		require.NoError(t, tk.Login(ctx, token.SO, soPIN))
		requireCode(t, tk.InitPIN(ctx, "abc"), token.CKR_PIN_LEN_RANGE, token.ErrPINInvalid)
	})
	t.Run("the user's keys open with the new PIN", func(t *testing.T) {
		// The SO never knew the user PIN: the master key's SO copy is what carries the keys over.
		_, _, tk := loggedIn(t)
		k, _ := genKey(t, tk, token.KeyRequest{Type: token.Ed25519})
		require.NoError(t, tk.Login(ctx, token.SO, soPIN))
		require.NoError(t, tk.InitPIN(ctx, "fresh-pin"))
		require.NoError(t, tk.Login(ctx, token.User, "fresh-pin"))
		s, err := tk.Signer(ctx, k)
		require.NoError(t, err)
		_, err = s.Sign(nil, []byte("payment order"), nil)
		require.NoError(t, err)
	})
}

func TestFormat(t *testing.T) {
	ctx := context.Background()
	_, _, tk := loggedIn(t)
	before := info(t, tk)
	_, s := genKey(t, tk, token.KeyRequest{Type: token.EC, Label: "profile"})
	_, err := tk.StoreCertificate(ctx, token.CertificateRequest{DER: selfSigned(t, s, "client"), ID: []byte{1}})
	require.NoError(t, err)

	t.Run("argument checks cost no try", func(t *testing.T) {
		err := tk.Format(ctx, soPIN, "a label that is much too long for a token")
		requireCode(t, err, token.CKR_ARGUMENTS_BAD, token.ErrInvalidInput)
		assert.Equal(t, 10, info(t, tk).SOPIN.RetriesLeft)
	})
	t.Run("wrong SO PIN costs a try and wipes nothing", func(t *testing.T) {
		te := requireCode(t, tk.Format(ctx, "wrong-so", "NEW"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
		assert.Equal(t, 9, te.RetriesLeft)
		assert.Equal(t, 9, info(t, tk).SOPIN.RetriesLeft)
		certs, err := tk.Certificates(ctx)
		require.NoError(t, err)
		assert.Len(t, certs, 1)
	})

	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	require.NoError(t, tk.Format(ctx, soPIN, "NEW"))
	after := info(t, tk)
	assert.Equal(t, before.Serial, after.Serial)
	assert.Equal(t, "NEW", after.Label)
	assert.False(t, after.UserPINInitialized)
	assert.Equal(t, 10, after.SOPIN.RetriesLeft, "the right SO PIN resets the count")
	certs, err := tk.Certificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs)
	requireCode(t, tk.Logout(ctx), token.CKR_USER_NOT_LOGGED_IN, token.ErrNotLoggedIn)
	requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_USER_PIN_NOT_INITIALIZED, token.ErrPINNotInitialized)

	require.NoError(t, tk.Login(ctx, token.SO, soPIN), "the SO PIN stays")
	require.NoError(t, tk.InitPIN(ctx, userPIN))
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	keys, err := tk.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)
	assert.True(t, info(t, tk).UserPINInitialized)

	require.NoError(t, tk.Format(ctx, soPIN, ""))
	assert.Equal(t, "NEW", info(t, tk).Label, "an empty label keeps the label")
}

func TestSetTries(t *testing.T) {
	ctx := context.Background()
	dir, _, tk := newToken(t, Options{})
	cases := []struct {
		role token.Role
		left int
		want token.PINStatus
	}{
		{token.User, 3, token.PINStatus{CountLow: true, RetriesLeft: 3}},
		{token.User, 1, token.PINStatus{CountLow: true, FinalTry: true, RetriesLeft: 1}},
		{token.User, 0, token.PINStatus{Locked: true}},
		{token.User, 10, token.PINStatus{RetriesLeft: 10}},
		{token.SO, 1, token.PINStatus{CountLow: true, FinalTry: true, RetriesLeft: 1}},
		{token.SO, 0, token.PINStatus{Locked: true}},
	}
	for _, tc := range cases {
		require.NoError(t, SetTries(dir, tc.role, tc.left))
		got := info(t, tk).UserPIN
		if tc.role == token.SO {
			got = info(t, tk).SOPIN
		}
		assert.Equal(t, tc.want, got, "%s %d", tc.role, tc.left)
	}
	requireCode(t, tk.Login(ctx, token.SO, soPIN), token.CKR_PIN_LOCKED, token.ErrPINLocked)

	require.ErrorIs(t, SetTries(dir, token.User, 11), token.ErrInvalidInput)
	require.ErrorIs(t, SetTries(dir, token.User, -1), token.ErrInvalidInput)
	require.ErrorIs(t, SetTries(dir, token.Role(5), 1), token.ErrInvalidInput)
	empty := t.TempDir()
	require.ErrorIs(t, SetTries(empty, token.User, 1), token.ErrTokenNotPresent)
}

func TestNoPINInErrors(t *testing.T) {
	ctx := context.Background()
	const secret = "Zq9-secret-PIN"
	_, _, tk := newToken(t, Options{})
	errs := []error{
		tk.Login(ctx, token.User, secret),
		tk.Login(ctx, token.SO, secret),
		tk.Format(ctx, secret, ""),
		tk.SetPIN(ctx, secret, secret+"x"),
		tk.InitPIN(ctx, secret),
	}
	for _, err := range errs {
		require.Error(t, err)
		assert.NotContains(t, err.Error(), secret)
	}
}
