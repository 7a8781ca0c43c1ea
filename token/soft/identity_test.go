package soft

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// A token made to look like a client's (support's reproduction) shows the client's serial,
// manufacturer and model, and keeps them across reopening; bad values are refused before
// anything is written.
func TestClientIdentity(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		want    [3]string // serial ("" for any 16 hex digits), manufacturer, model
		wantErr string
	}{
		{name: "defaults", want: [3]string{"", Manufacturer, Model}},
		{name: "a KAZTOKEN", opts: Options{Serial: "KZ0123456789", Manufacturer: "KAZTOKEN LLP", Model: "KAZTOKEN mKey"},
			want: [3]string{"KZ0123456789", "KAZTOKEN LLP", "KAZTOKEN mKey"}},
		{name: "serial too long", opts: Options{Serial: "0123456789abcdef0"}, wantErr: "1 to 16 printable ASCII"},
		{name: "serial with a space", opts: Options{Serial: "12 34"}, wantErr: "1 to 16 printable ASCII"},
		{name: "model too long", opts: Options{Model: strings.Repeat("m", 33)}, wantErr: "model is 33 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Create(dir, tt.opts)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				exists, serr := store{dir: dir}.exists()
				require.NoError(t, serr)
				assert.False(t, exists, "a refused token is not written")
				return
			}
			require.NoError(t, err)
			// Reopened with other options: what it was created with stays.
			p := newProvider(t, Options{}, dir)
			infos, err := p.Tokens(context.Background())
			require.NoError(t, err)
			require.Len(t, infos, 1)
			i := infos[0]
			if tt.want[0] == "" {
				assert.Regexp(t, `^[0-9a-f]{16}$`, i.Serial)
			} else {
				assert.Equal(t, tt.want[0], i.Serial)
			}
			assert.Equal(t, tt.want[1], i.Manufacturer)
			assert.Equal(t, tt.want[2], i.Model)
			// Opened by that serial, and usable.
			tk, err := p.Open(context.Background(), i)
			require.NoError(t, err)
			defer tk.Close()
			require.NoError(t, tk.Login(context.Background(), token.User, userPIN))
		})
	}
}

// A factory PIN a client's module flagged "to be changed" is flagged on the reproduction
// until it is changed, role by role.
func TestPINToBeChanged(t *testing.T) {
	ctx := context.Background()
	_, p, tk := newToken(t, Options{SOPINToBeChanged: true})
	status := func() (user, so token.PINStatus) {
		infos, err := p.Tokens(ctx)
		require.NoError(t, err)
		return infos[0].UserPIN, infos[0].SOPIN
	}
	user, so := status()
	assert.False(t, user.ToBeChanged)
	assert.True(t, so.ToBeChanged)

	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	require.NoError(t, tk.SetPIN(ctx, userPIN, "Ab3dE5gh"))
	_, so = status()
	assert.True(t, so.ToBeChanged, "changing the user PIN leaves the SO's flag")

	require.NoError(t, tk.Logout(ctx))
	require.NoError(t, tk.Login(ctx, token.SO, soPIN))
	require.NoError(t, tk.SetPIN(ctx, soPIN, "Zz9yX8wv"))
	_, so = status()
	assert.False(t, so.ToBeChanged, "changed, the flag goes")
}

// A token that gives flags only, as most PKCS#11 modules do: no count in its info or its
// errors, and the count still enforced.
func TestFlagsOnly(t *testing.T) {
	ctx := context.Background()
	_, p, tk := newToken(t, Options{FlagsOnly: true, UserMaxTries: 3})
	user := func() token.PINStatus {
		infos, err := p.Tokens(ctx)
		require.NoError(t, err)
		return infos[0].UserPIN
	}
	assert.Equal(t, token.PINStatus{RetriesLeft: -1}, user())
	for _, want := range []token.PINStatus{
		{CountLow: true, RetriesLeft: -1},
		{CountLow: true, FinalTry: true, RetriesLeft: -1},
		{Locked: true, RetriesLeft: -1},
	} {
		err := tk.Login(ctx, token.User, "00000000")
		var te *token.Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, -1, te.RetriesLeft, "no count in the error")
		assert.Equal(t, want, user())
	}
	assert.ErrorIs(t, tk.Login(ctx, token.User, userPIN), token.ErrPINLocked, "locked after 3 tries all the same")
}
