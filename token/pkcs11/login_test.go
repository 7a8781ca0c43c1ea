//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

const badPIN = "99990000"

func tokenErr(t testing.TB, err error) *token.Error {
	t.Helper()
	var te *token.Error
	require.True(t, errors.As(err, &te), "%T %v is a *token.Error", err, err)
	assert.NotContains(t, err.Error(), badPIN, "no PIN in errors")
	return te
}

func TestLoginSoftHSMNeverLocks(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	for try := 1; try <= 5; try++ {
		err := f.tok.Login(ctx, token.User, badPIN)
		require.ErrorIs(t, err, token.ErrPINIncorrect, "try %d", try)
		te := tokenErr(t, err)
		assert.Equal(t, token.CKR_PIN_INCORRECT, te.Code)
		assert.Equal(t, -1, te.RetriesLeft, "SoftHSM2 gives no count")
		info, err := f.tok.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, token.PINStatus{CountLow: true, RetriesLeft: -1}, info.UserPIN, "try %d", try)
	}
	require.NoError(t, f.tok.Login(ctx, token.User, shUserPIN), "SoftHSM2 never locks: the right PIN still works")
	info, err := f.tok.Info(ctx)
	require.NoError(t, err)
	assert.False(t, info.UserPIN.CountLow)

	err = f.tok.Login(ctx, token.SO, badPIN)
	require.ErrorIs(t, err, token.ErrPINIncorrect)
	assert.Equal(t, -1, tokenErr(t, err).RetriesLeft)
}

// TestLoginChecksPINWhenLoggedIn: a module answers CKR_USER_ALREADY_LOGGED_IN without looking
// at the PIN; Login must not take that as success.
func TestLoginChecksPINWhenLoggedIn(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			f.login(t)
			key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "k"})
			require.NoError(t, err)

			require.ErrorIs(t, f.tok.Login(ctx, token.User, badPIN), token.ErrPINIncorrect)
			keys, err := f.tok.Keys(ctx)
			require.NoError(t, err)
			assert.Empty(t, keys, "a wrong PIN ends the earlier login")

			f.login(t)
			require.NoError(t, f.tok.Login(ctx, token.User, f.tt.UserPIN), "logging in twice with the right PIN works")
			require.NoError(t, f.tok.Login(ctx, token.SO, f.tt.SOPIN), "the SO replaces a logged-in user")
			require.NoError(t, f.tok.Login(ctx, token.User, f.tt.UserPIN), "and the user the SO")
			keys, err = f.tok.Keys(ctx)
			require.NoError(t, err)
			require.Len(t, keys, 1)
			assert.Equal(t, key.ID, keys[0].ID)

			require.NoError(t, f.tok.Logout(ctx))
			require.NoError(t, f.tok.Logout(ctx), "logging out twice is fine")
		})
	}
}

// TestLockoutOpenCryptoki walks openCryptoki's real lockout: COUNT_LOW, FINAL_TRY, LOCKED,
// then the SO unblocks the user.
func TestLockoutOpenCryptoki(t *testing.T) {
	ctx := context.Background()
	f := ockFixture(t)
	steps := []struct {
		want    token.PINStatus
		retries int
	}{
		{token.PINStatus{CountLow: true, RetriesLeft: -1}, -1},
		{token.PINStatus{CountLow: true, FinalTry: true, RetriesLeft: 1}, 1},
		{token.PINStatus{CountLow: true, Locked: true, RetriesLeft: 0}, 0},
	}
	for i, s := range steps {
		err := f.tok.Login(ctx, token.User, badPIN)
		require.ErrorIs(t, err, token.ErrPINIncorrect, "try %d", i+1)
		assert.Equal(t, s.retries, tokenErr(t, err).RetriesLeft, "try %d", i+1)
		info, err := f.tok.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, s.want, info.UserPIN, "try %d", i+1)
	}
	err := f.tok.Login(ctx, token.User, f.tt.UserPIN)
	require.ErrorIs(t, err, token.ErrPINLocked, "the right PIN is refused once locked")
	te := tokenErr(t, err)
	assert.Equal(t, token.CKR_PIN_LOCKED, te.Code)
	assert.Equal(t, 0, te.RetriesLeft)

	require.ErrorIs(t, f.tok.InitPIN(ctx, "24681357"), token.ErrNotLoggedIn, "only the SO unblocks")
	require.NoError(t, f.tok.Login(ctx, token.SO, f.tt.SOPIN))
	require.NoError(t, f.tok.InitPIN(ctx, "24681357"))
	require.NoError(t, f.tok.Logout(ctx))
	info, err := f.tok.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, token.PINStatus{RetriesLeft: -1}, info.UserPIN)
	require.NoError(t, f.tok.Login(ctx, token.User, "24681357"))
}

func TestSetPIN(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			f.login(t)
			err := f.tok.SetPIN(ctx, badPIN, "13572468")
			require.ErrorIs(t, err, token.ErrPINIncorrect)
			tokenErr(t, err)
			require.ErrorIs(t, f.tok.SetPIN(ctx, f.tt.UserPIN, "1"), token.ErrPINInvalid, "too short")
			require.NoError(t, f.tok.SetPIN(ctx, f.tt.UserPIN, "13572468"))
			require.NoError(t, f.tok.Logout(ctx))
			require.ErrorIs(t, f.tok.Login(ctx, token.User, f.tt.UserPIN), token.ErrPINIncorrect)
			require.NoError(t, f.tok.Login(ctx, token.User, "13572468"))
		})
	}
	t.Run("opencryptoki refuses the same PIN", func(t *testing.T) {
		f := ockFixture(t)
		f.login(t)
		require.ErrorIs(t, f.tok.SetPIN(context.Background(), f.tt.UserPIN, f.tt.UserPIN), token.ErrPINInvalid)
	})
	t.Run("softhsm2 SO changes the SO PIN", func(t *testing.T) {
		ctx := context.Background()
		f := softhsmFixture(t)
		require.NoError(t, f.tok.Login(ctx, token.SO, shSOPIN))
		require.NoError(t, f.tok.SetPIN(ctx, shSOPIN, "11223344"))
		require.NoError(t, f.tok.Logout(ctx))
		require.ErrorIs(t, f.tok.Login(ctx, token.SO, shSOPIN), token.ErrPINIncorrect)
		require.NoError(t, f.tok.Login(ctx, token.SO, "11223344"))
		require.NoError(t, f.tok.Login(ctx, token.User, shUserPIN), "the user PIN is unchanged")
	})
}
