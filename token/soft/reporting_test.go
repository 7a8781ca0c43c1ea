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

// A token that reports nothing of its PIN tries, as TPM-backed modules do: no flag and no
// count in its info or its errors, whatever the counter says, and the counter still enforced.
func TestNoPINInfo(t *testing.T) {
	ctx := context.Background()
	nothing := token.PINStatus{RetriesLeft: -1}
	for _, tc := range []struct {
		name string
		opts Options
		role token.Role
		pin  string
	}{
		{"user", Options{NoPINInfo: true, UserMaxTries: 3, SOMaxTries: 3}, token.User, userPIN},
		{"so", Options{NoPINInfo: true, UserMaxTries: 3, SOMaxTries: 3}, token.SO, soPIN},
		{"user, flags-only too: nothing wins", Options{NoPINInfo: true, FlagsOnly: true, UserMaxTries: 3}, token.User, userPIN},
		{"user, 5 tries", Options{NoPINInfo: true, UserMaxTries: 5}, token.User, userPIN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p, tk := newToken(t, tc.opts)
			max := tc.opts.UserMaxTries
			if tc.role == token.SO {
				max = tc.opts.SOMaxTries
			}
			status := func() (token.PINStatus, token.PINStatus) {
				infos, err := p.Tokens(ctx)
				require.NoError(t, err)
				i := info(t, tk)
				assert.Equal(t, infos[0], i, "Tokens and Info agree")
				return i.UserPIN, i.SOPIN
			}
			u, s := status()
			assert.Equal(t, nothing, u)
			assert.Equal(t, nothing, s)
			for try := 1; try <= max; try++ {
				te := requireCode(t, tk.Login(ctx, tc.role, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
				assert.Equal(t, -1, te.RetriesLeft, "try %d: no count in the error", try)
				u, s := status()
				assert.Equal(t, nothing, u, "try %d", try)
				assert.Equal(t, nothing, s, "try %d", try)
			}
			te := requireCode(t, tk.Login(ctx, tc.role, tc.pin), token.CKR_PIN_LOCKED, token.ErrPINLocked)
			assert.Equal(t, -1, te.RetriesLeft, "locked, and still no count")
			u, s = status()
			assert.Equal(t, nothing, u, "not even locked is shown")
			assert.Equal(t, nothing, s)
			if tc.role == token.User {
				require.NoError(t, tk.Login(ctx, token.SO, soPIN))
				require.NoError(t, tk.SetPIN(ctx, soPIN, "Zz9yX8wv"), "the SO is untouched")
				requireCode(t, tk.SetPIN(ctx, "Zz9yX8wv", "Zz9yX8wv"), token.CKR_PIN_INVALID, token.ErrPINInvalid)
				require.NoError(t, tk.InitPIN(ctx, "24681357"), "unblock clears the lock")
				require.NoError(t, tk.Login(ctx, token.User, "24681357"))
			}
		})
	}

	t.Run("fewer wrong tries than the maximum, then the right PIN, resets the count", func(t *testing.T) {
		_, _, tk := newToken(t, Options{NoPINInfo: true, UserMaxTries: 3})
		for range 3 {
			for range 2 {
				requireCode(t, tk.Login(ctx, token.User, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			}
			require.NoError(t, tk.Login(ctx, token.User, userPIN))
		}
	})

	t.Run("kept in the state: a token opened later with default options still reports nothing", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Create(dir, Options{NoPINInfo: true, UserMaxTries: 3, SOMaxTries: 3}))
		var raw map[string]any
		data, err := os.ReadFile(filepath.Join(dir, stateName))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &raw))
		assert.Equal(t, true, raw["no_pin_info"])

		p := newProvider(t, Options{}, dir) // what tokenrun --soft DIR passes
		tk := openFirst(t, p)
		for range 3 {
			te := requireCode(t, tk.Login(ctx, token.User, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			assert.Equal(t, -1, te.RetriesLeft)
		}
		assert.Equal(t, nothing, info(t, tk).UserPIN)
		requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_PIN_LOCKED, token.ErrPINLocked)
	})

	t.Run("a format keeps it", func(t *testing.T) {
		_, _, tk := newToken(t, Options{NoPINInfo: true})
		require.NoError(t, tk.(token.UserPINFormatter).FormatWithUserPIN(ctx, soPIN, "NEW", userPIN))
		requireCode(t, tk.Login(ctx, token.User, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
		assert.Equal(t, nothing, info(t, tk).UserPIN)
	})
}

// The default token and a flags-only one are unchanged by the reporting switch.
func TestReporting(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		opts       Options
		afterOne   token.PINStatus
		errRetries int
		locked     token.PINStatus
		lockedErr  int
	}{
		{"count", Options{UserMaxTries: 2}, token.PINStatus{CountLow: true, FinalTry: true, RetriesLeft: 1}, 1, token.PINStatus{Locked: true}, 0},
		{"flags only", Options{FlagsOnly: true, UserMaxTries: 2}, token.PINStatus{CountLow: true, FinalTry: true, RetriesLeft: -1}, -1, token.PINStatus{Locked: true, RetriesLeft: -1}, 0},
		{"nothing", Options{NoPINInfo: true, UserMaxTries: 2}, token.PINStatus{RetriesLeft: -1}, -1, token.PINStatus{RetriesLeft: -1}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, tk := newToken(t, tc.opts)
			te := requireCode(t, tk.Login(ctx, token.User, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			assert.Equal(t, tc.errRetries, te.RetriesLeft)
			assert.Equal(t, tc.afterOne, info(t, tk).UserPIN)
			requireCode(t, tk.Login(ctx, token.User, "00000000"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
			assert.Equal(t, tc.locked, info(t, tk).UserPIN)
			te = requireCode(t, tk.Login(ctx, token.User, userPIN), token.CKR_PIN_LOCKED, token.ErrPINLocked)
			assert.Equal(t, tc.lockedErr, te.RetriesLeft)
		})
	}
}
