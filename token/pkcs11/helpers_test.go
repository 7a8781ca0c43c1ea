//go:build cgo

package pkcs11

import (
	"context"
	"testing"

	p11 "github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// PINs for SoftHSM2 tokens: the blank KAZTOKEN defaults, 8 digits so that they also fit
// openCryptoki's 4-8 limit in shared test code.
const (
	shSOPIN   = "87654321"
	shUserPIN = "12345678"
	shLabel   = "tokenrun test"
)

// fixture is an open provider and token prepared by p11test; both close when the test ends,
// which finalises the module for the next test.
type fixture struct {
	p   *Provider
	tok *Token
	tt  p11test.Token
}

// backend prepares a fresh token in one module.
type backend struct {
	name  string
	setup func(t testing.TB) p11test.Token
}

var backends = []backend{
	{"softhsm2", func(t testing.TB) p11test.Token {
		p11test.SoftHSM(t)
		return p11test.SoftHSMToken(t, shLabel, shSOPIN, shUserPIN)
	}},
	{"opencryptoki", p11test.OpenCryptoki},
}

func softhsmFixture(t testing.TB) fixture { return openFixture(t, backends[0].setup(t)) }

func ockFixture(t testing.TB) fixture { return openFixture(t, backends[1].setup(t)) }

func openFixture(t testing.TB, tt p11test.Token) fixture {
	t.Helper()
	ctx := context.Background()
	p, err := Open(tt.Module)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	var info token.Info
	for _, i := range infos {
		if i.Serial == tt.Serial {
			info = i
		}
	}
	require.Equal(t, tt.Label, info.Label, "token %s present", tt.Serial)
	tok, err := p.OpenToken(ctx, info)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tok.Close() })
	return fixture{p: p, tok: tok, tt: tt}
}

func (f fixture) login(t testing.TB) {
	t.Helper()
	require.NoError(t, f.tok.Login(context.Background(), token.User, f.tt.UserPIN))
}

// raw runs fn on a session of its own, to look at the token without this package's help.
// Login state is per token, so it sees what the Token's login shows.
func (f fixture) raw(t testing.TB, fn func(ctx *p11.Ctx, sh p11.SessionHandle)) {
	t.Helper()
	slot, _ := f.tok.where()
	sh, err := f.tok.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	require.NoError(t, err)
	defer f.tok.ctx.CloseSession(sh)
	fn(f.tok.ctx, sh)
}
