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

// editState rewrites the state file in dir through f, which edits the parsed state.
func editState(t testing.TB, dir string, f func(st *state)) {
	t.Helper()
	path := filepath.Join(dir, stateName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var st state
	require.NoError(t, json.Unmarshal(data, &st))
	f(&st)
	data, err = json.Marshal(&st)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// triesOnDisk reads the tries left of both PINs straight from the state file.
func triesOnDisk(t testing.TB, dir string) (user, so int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, stateName))
	require.NoError(t, err)
	var st state
	require.NoError(t, json.Unmarshal(data, &st))
	return st.UserPIN.TriesLeft, st.SOPIN.TriesLeft
}

// A right PIN on a token whose stored secret is damaged is reported as damage, naming the
// directory, and costs no try however often it is given; a wrong PIN still costs one where
// the damage lets it be told from a right one.
func TestDamagedToken(t *testing.T) {
	ctx := context.Background()
	flip := func(b []byte) { b[len(b)/2] ^= 0x01 }
	user := func(st *state) *pinSecret { return st.UserPIN.Secret }
	so := func(st *state) *pinSecret { return st.SOPIN.Secret }
	cases := []struct {
		name   string
		role   token.Role
		secret func(st *state) *pinSecret
		damage func(sec *pinSecret)
		want   string
		// wrongCounts: a wrong PIN still costs a try (false: the damage is refused before
		// any PIN is looked at).
		wrongCounts bool
	}{
		{"user master key flipped", token.User, user, func(s *pinSecret) { flip(s.MasterKey.Data) }, "the user PIN is right but the master key sealed under it does not open", true},
		{"user master key nonce flipped", token.User, user, func(s *pinSecret) { flip(s.MasterKey.Nonce) }, "does not open", true},
		{"SO master key flipped", token.SO, so, func(s *pinSecret) { flip(s.MasterKey.Data) }, "does not open", true},
		{"user verifier flipped", token.User, user, func(s *pinSecret) { flip(s.Verifier) }, "PIN opens the master key but does not match its verifier", true},
		{"SO verifier flipped", token.SO, so, func(s *pinSecret) { flip(s.Verifier) }, "PIN opens the master key but does not match its verifier", true},
		{"absurd iteration count", token.User, user, func(s *pinSecret) { s.Iterations = 1 << 31 }, "claims 2147483648 PBKDF2 iterations", false},
		{"SO absurd iteration count", token.SO, so, func(s *pinSecret) { s.Iterations = 1 << 31 }, "accepts at most 9600000", false},
		{"verifier cut short", token.User, user, func(s *pinSecret) { s.Verifier = s.Verifier[:16] }, "PIN verifier is 16 bytes, want 32", false},
		{"sealed master key cut short", token.User, user, func(s *pinSecret) { s.MasterKey.Data = s.MasterKey.Data[:20] }, "PIN sealed master key is 12+20 bytes", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, tk := newToken(t, Options{})
			editState(t, dir, func(st *state) { tc.damage(tc.secret(st)) })
			right := userPIN
			if tc.role == token.SO {
				right = soPIN
			}
			tries := func() int {
				u, s := triesOnDisk(t, dir)
				if tc.role == token.SO {
					return s
				}
				return u
			}
			for range 3 {
				err := tk.Login(ctx, tc.role, right)
				te := requireCode(t, err, token.CKR_DEVICE_ERROR, token.ErrTokenDamaged)
				assert.Equal(t, -1, te.RetriesLeft)
				assert.Contains(t, err.Error(), "the software token in "+dir+" is damaged: ")
				assert.Contains(t, err.Error(), tc.want)
				assert.Contains(t, err.Error(), "no try was counted")
				assert.NotContains(t, err.Error(), right)
				assert.Equal(t, 10, tries(), "the right PIN costs nothing on a damaged token")
			}
			err := tk.Login(ctx, tc.role, "00000000")
			if tc.wrongCounts {
				requireCode(t, err, token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
				assert.Equal(t, 9, tries(), "a wrong PIN still counts")
			} else {
				requireCode(t, err, token.CKR_DEVICE_ERROR, token.ErrTokenDamaged)
				assert.Equal(t, 10, tries())
			}
			// The other role is untouched: with the user's copy damaged the SO can still
			// unblock, which re-seals the master key under a new user PIN.
			if tc.role == token.User && tc.name == "user master key flipped" {
				require.NoError(t, tk.Login(ctx, token.SO, soPIN))
				require.NoError(t, tk.InitPIN(ctx, "24681357"))
				require.NoError(t, tk.Login(ctx, token.User, "24681357"))
			}
		})
	}

	t.Run("set PIN refuses a damaged secret the same way", func(t *testing.T) {
		dir, _, tk := loggedIn(t)
		editState(t, dir, func(st *state) { st.UserPIN.Secret.Iterations = 1 << 31 })
		requireCode(t, tk.SetPIN(ctx, userPIN, "13572468"), token.CKR_DEVICE_ERROR, token.ErrTokenDamaged)
		u, _ := triesOnDisk(t, dir)
		assert.Equal(t, 10, u)
	})

	t.Run("format refuses an SO secret it cannot check, costing nothing", func(t *testing.T) {
		dir, _, tk := newToken(t, Options{})
		editState(t, dir, func(st *state) { st.SOPIN.Secret.Iterations = 1 << 31 })
		requireCode(t, tk.Format(ctx, soPIN, "X"), token.CKR_DEVICE_ERROR, token.ErrTokenDamaged)
		u, s := triesOnDisk(t, dir)
		assert.Equal(t, []int{10, 10}, []int{u, s})
		assert.Equal(t, "KAZTOKEN", info(t, tk).Label, "nothing was formatted")
	})

	t.Run("format is the way out when only the master key is lost", func(t *testing.T) {
		for _, which := range []string{"so", "both"} {
			t.Run(which, func(t *testing.T) {
				dir, _, tk := newToken(t, Options{})
				editState(t, dir, func(st *state) {
					flip(st.SOPIN.Secret.MasterKey.Data)
					if which == "both" {
						flip(st.UserPIN.Secret.MasterKey.Data)
					}
				})
				err := tk.Login(ctx, token.SO, soPIN)
				requireCode(t, err, token.CKR_DEVICE_ERROR, token.ErrTokenDamaged)
				assert.Contains(t, err.Error(), "format the token (its keys are lost)")
				requireCode(t, tk.Format(ctx, "00000000", "X"), token.CKR_PIN_INCORRECT, token.ErrPINIncorrect)
				require.NoError(t, tk.(token.UserPINFormatter).FormatWithUserPIN(ctx, soPIN, "FRESH", "24681357"))
				require.NoError(t, tk.Login(ctx, token.SO, soPIN))
				require.NoError(t, tk.Login(ctx, token.User, "24681357"))
				u, s := triesOnDisk(t, dir)
				assert.Equal(t, []int{10, 10}, []int{u, s})
			})
		}
	})

	t.Run("a corrupt state file is damage too", func(t *testing.T) {
		dir, _, tk := newToken(t, Options{})
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateName), []byte("{garbage"), 0o600))
		err := tk.Login(ctx, token.User, userPIN)
		require.ErrorIs(t, err, token.ErrTokenDamaged)
		assert.Contains(t, err.Error(), "is corrupt")
	})
}
