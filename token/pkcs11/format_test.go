//go:build cgo

package pkcs11

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

func TestFormatKeepsTokenUsable(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := openFixture(t, b.setup(t))
			before, err := f.tok.Info(ctx)
			require.NoError(t, err)
			f.login(t)
			key, err := f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "old"})
			require.NoError(t, err)
			storeSelfSigned(t, f.tok, key)

			require.ErrorIs(t, f.tok.Format(ctx, f.tt.SOPIN, strings.Repeat("x", 33)), token.ErrInvalidInput, "labels are 32 bytes at most")
			require.NoError(t, f.tok.Format(ctx, f.tt.SOPIN, "NEW LABEL"))

			after, err := f.tok.Info(ctx)
			require.NoError(t, err)
			assert.Equal(t, "NEW LABEL", after.Label)
			assert.Equal(t, before.Serial, after.Serial, "re-initialising keeps the serial")
			assert.Equal(t, before.Slot, after.Slot, "and, while the module stays initialised, the slot")
			assert.False(t, after.UserPINInitialized, "format wipes the user PIN")
			require.ErrorIs(t, f.tok.Login(ctx, token.User, f.tt.UserPIN), token.ErrPINNotInitialized)

			// The same Token goes on working: new sessions, SO, user, keys.
			require.NoError(t, f.tok.Login(ctx, token.SO, f.tt.SOPIN))
			require.NoError(t, f.tok.InitPIN(ctx, "11223344"))
			require.NoError(t, f.tok.Login(ctx, token.User, "11223344"))
			keys, err := f.tok.Keys(ctx)
			require.NoError(t, err)
			assert.Empty(t, keys, "format wipes keys")
			certs, err := f.tok.Certificates(ctx)
			require.NoError(t, err)
			assert.Empty(t, certs, "format wipes certificates")
			_, err = f.tok.GenerateKey(ctx, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "new"})
			require.NoError(t, err)

			infos, err := f.p.Tokens(ctx)
			require.NoError(t, err)
			assert.Equal(t, "NEW LABEL", byLabel(t, infos, "NEW LABEL").Label)
		})
	}
}

// TestFormatSpareToken formats SoftHSM2's factory-fresh token, which has no serial and
// accepts no session until it is initialised.
func TestFormatSpareToken(t *testing.T) {
	ctx := context.Background()
	p11test.SoftHSM(t)
	p, err := Open(p11test.SoftHSMModule)
	require.NoError(t, err)
	defer p.Close()
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	tok, err := p.OpenToken(ctx, infos[0])
	require.NoError(t, err)
	defer tok.Close()

	require.Error(t, tok.Login(ctx, token.User, shUserPIN), "nothing to log in to yet")
	require.NoError(t, tok.Format(ctx, shSOPIN, "fresh"))
	info, err := tok.Info(ctx)
	require.NoError(t, err)
	assert.True(t, info.Initialized)
	assert.NotEmpty(t, info.Serial)
	require.NoError(t, tok.Login(ctx, token.SO, shSOPIN))
	require.NoError(t, tok.InitPIN(ctx, shUserPIN))
	require.NoError(t, tok.Login(ctx, token.User, shUserPIN))
	_, err = tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Curve: "P-256"})
	require.NoError(t, err)

	infos, err = p.Tokens(ctx)
	require.NoError(t, err)
	assert.Len(t, infos, 2, "SoftHSM2 offers a new spare token")
}

// TestFormatThroughAnotherToken: C_CloseAllSessions closes every session of this process on
// the token, including another Token value's; that one recovers with new sessions.
func TestFormatThroughAnotherToken(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	f.login(t)
	_, err := f.tok.Keys(ctx) // leaves an idle session in the pool
	require.NoError(t, err)

	info, err := f.tok.Info(ctx)
	require.NoError(t, err)
	other, err := f.p.OpenToken(ctx, info)
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.Format(ctx, shSOPIN, "by other"))

	require.NoError(t, f.tok.Login(ctx, token.SO, shSOPIN), "stale pooled sessions are replaced")
	require.NoError(t, f.tok.InitPIN(ctx, shUserPIN))
	info, err = f.tok.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, "by other", info.Label)
}

func TestFormatWrongSOPIN(t *testing.T) {
	ctx := context.Background()
	f := softhsmFixture(t)
	err := f.tok.Format(ctx, badPIN, "nope")
	require.ErrorIs(t, err, token.ErrPINIncorrect)
	te := tokenErr(t, err)
	assert.Equal(t, "format", te.Op)
	info, err := f.tok.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, shLabel, info.Label)
	assert.True(t, info.SOPIN.CountLow)
}
