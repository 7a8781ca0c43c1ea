//go:build cgo

package pkcs11

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.so")
	require.NoError(t, os.WriteFile(text, []byte("this is not a library\n"), 0o644))

	// A real shared library with no C_GetFunctionList, and a copy of it claiming to be
	// built for arm64 (e_machine is the 16-bit field at offset 18 of the ELF header).
	const libz = "/usr/lib/x86_64-linux-gnu/libz.so.1"
	zbytes, zerr := os.ReadFile(libz)
	foreign := filepath.Join(dir, "libforeign.so")
	if zerr == nil {
		b := append([]byte(nil), zbytes...)
		binary.LittleEndian.PutUint16(b[18:], 183) // EM_AARCH64
		require.NoError(t, os.WriteFile(foreign, b, 0o644))
	}

	tests := []struct {
		name string
		path string
		want []string
		skip bool
	}{
		{"empty path", "", []string{"no module path given"}, false},
		{"missing file", "/nonexistent/libvendor-pkcs11.so", []string{"/nonexistent/libvendor-pkcs11.so", "no such file", "check the path"}, false},
		{"directory", dir, []string{"directory"}, false},
		{"not a library", text, []string{"not a shared library", "not an ELF file"}, false},
		{"not a PKCS#11 module", libz, []string{"no C_GetFunctionList", "not a PKCS#11 module"}, zerr != nil},
		{"wrong architecture", foreign, []string{"built for EM_AARCH64", "runs on amd64"}, zerr != nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skipf("%s not present", libz)
			}
			p, err := Open(tt.path)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, ErrLoad)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	t.Run("softhsm2 without its configuration", func(t *testing.T) {
		p11test.SoftHSM(t)
		t.Setenv("SOFTHSM2_CONF", filepath.Join(dir, "missing.conf"))
		_, err := Open(p11test.SoftHSMModule)
		require.ErrorIs(t, err, ErrLoad)
		assert.Contains(t, err.Error(), "CKR_GENERAL_ERROR")
		assert.Contains(t, err.Error(), "missing.conf", "the hint names the configuration file")
		// The failed C_Initialize left nothing behind: the right configuration works.
		p11test.SoftHSM(t)
		p, err := Open(p11test.SoftHSMModule)
		require.NoError(t, err)
		require.NoError(t, p.Close())
	})
}

// TestModuleRefcount checks the one-context-per-module rule: two Providers (even through a
// symlink and its target) share a context, a Token keeps the module initialised after its
// Provider closes, and the last Close finalises so that a new SOFTHSM2_CONF is read.
func TestModuleRefcount(t *testing.T) {
	ctx := context.Background()
	p11test.SoftHSM(t)
	alpha := p11test.SoftHSMToken(t, "alpha", shSOPIN, shUserPIN)

	target, err := filepath.EvalSymlinks(p11test.SoftHSMModule)
	require.NoError(t, err)
	p1, err := Open(p11test.SoftHSMModule)
	require.NoError(t, err)
	p2, err := Open(target)
	require.NoError(t, err, "a second path to the same file must not initialise it twice")
	assert.Equal(t, 2, activeRefs(target))

	require.NoError(t, p1.Close())
	require.ErrorIs(t, p1.Close(), token.ErrClosed)
	_, err = p1.Tokens(ctx)
	require.ErrorIs(t, err, token.ErrClosed)

	infos, err := p2.Tokens(ctx)
	require.NoError(t, err)
	info := byLabel(t, infos, "alpha")
	assert.Equal(t, alpha.Serial, info.Serial)
	tok, err := p2.Open(ctx, info)
	require.NoError(t, err)
	require.NoError(t, p2.Close())
	assert.Equal(t, 1, activeRefs(target), "the open token holds the module")
	require.NoError(t, tok.Login(ctx, token.User, shUserPIN), "the token works after its provider closed")
	require.NoError(t, tok.Close())
	assert.Equal(t, 0, activeRefs(target), "the last close finalises")

	// A new store: the next C_Initialize reads the new SOFTHSM2_CONF.
	p11test.SoftHSM(t)
	p11test.SoftHSMToken(t, "beta", shSOPIN, shUserPIN)
	p3, err := Open(p11test.SoftHSMModule)
	require.NoError(t, err)
	defer p3.Close()
	infos, err = p3.Tokens(ctx)
	require.NoError(t, err)
	byLabel(t, infos, "beta")
	for _, i := range infos {
		assert.NotEqual(t, "alpha", i.Label, "the old store is not visible")
	}
}

func activeRefs(key string) int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m, ok := registry.active[key]; ok {
		return m.refs
	}
	return 0
}

func byLabel(t testing.TB, infos []token.Info, label string) token.Info {
	t.Helper()
	for _, i := range infos {
		if i.Label == label {
			return i
		}
	}
	t.Fatalf("no token labelled %q in %+v", label, infos)
	return token.Info{}
}

func TestTokensInfo(t *testing.T) {
	ctx := context.Background()
	t.Run("softhsm2", func(t *testing.T) {
		f := softhsmFixture(t)
		infos, err := f.p.Tokens(ctx)
		require.NoError(t, err)
		require.Len(t, infos, 2, "the token and SoftHSM2's spare uninitialised one")
		var spare token.Info
		for _, i := range infos {
			if !i.Initialized {
				spare = i
			}
		}
		assert.Equal(t, token.Info{
			Slot: spare.Slot, Manufacturer: "SoftHSM project", Model: "SoftHSM v2", LoginRequired: true,
			MinPINLen: 4, MaxPINLen: 255,
			UserPIN: token.PINStatus{RetriesLeft: -1},
			// An uninitialised SoftHSM2 token reports its SO PIN locked and to be changed.
			SOPIN: token.PINStatus{CountLow: true, Locked: true, ToBeChanged: true, RetriesLeft: 0},
		}, spare, "the spare token has no label and no serial")

		info, err := f.tok.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, token.Info{
			Slot: info.Slot, Label: shLabel, Serial: f.tt.Serial, Manufacturer: "SoftHSM project", Model: "SoftHSM v2",
			Initialized: true, LoginRequired: true, UserPINInitialized: true, MinPINLen: 4, MaxPINLen: 255,
			UserPIN: token.PINStatus{RetriesLeft: -1}, SOPIN: token.PINStatus{RetriesLeft: -1},
		}, info)
		assert.Len(t, info.Serial, 16)
	})
	t.Run("opencryptoki", func(t *testing.T) {
		f := ockFixture(t)
		info, err := f.tok.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, p11test.OpenCryptokiLabel, info.Label)
		assert.Equal(t, "IBM SoftTok", info.Model)
		assert.Equal(t, "IBM Corp.", info.Manufacturer)
		assert.Equal(t, uint(3), info.Slot)
		assert.Equal(t, 4, info.MinPINLen)
		assert.Equal(t, 8, info.MaxPINLen)
		assert.True(t, info.Initialized)
		assert.True(t, info.UserPINInitialized)
		assert.True(t, info.SOPIN.ToBeChanged, "the factory SO PIN is flagged to be changed")
		assert.False(t, info.UserPIN.ToBeChanged)
	})
}

// TestOpenFindsTokenBySerial: SoftHSM2 gives a token initialised in-process a new slot id at
// the next C_Initialize; an Info from before still opens it.
func TestOpenFindsTokenBySerial(t *testing.T) {
	ctx := context.Background()
	p11test.SoftHSM(t)
	p, err := Open(p11test.SoftHSMModule)
	require.NoError(t, err)
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	spare := infos[0]
	require.False(t, spare.Initialized)
	require.Empty(t, spare.Serial)

	tok, err := p.Open(ctx, spare)
	require.NoError(t, err, "an uninitialised token opens by slot id")
	require.NoError(t, tok.Format(ctx, shSOPIN, "renumbered"))
	before, err := tok.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, spare.Slot, before.Slot, "the slot id holds while the module stays initialised")
	require.NotEmpty(t, before.Serial)
	require.NoError(t, tok.Close())
	require.NoError(t, p.Close())

	p, err = Open(p11test.SoftHSMModule)
	require.NoError(t, err)
	defer p.Close()
	infos, err = p.Tokens(ctx)
	require.NoError(t, err)
	after := byLabel(t, infos, "renumbered")
	assert.NotEqual(t, before.Slot, after.Slot, "SoftHSM2 renumbers the slot")
	assert.Equal(t, before.Serial, after.Serial)

	tok, err = p.Open(ctx, before) // the stale slot id is ignored
	require.NoError(t, err)
	defer tok.Close()
	got, err := tok.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, after.Slot, got.Slot)

	_, err = p.Open(ctx, token.Info{Serial: "no-such-serial", Label: "x"})
	require.ErrorIs(t, err, token.ErrTokenNotPresent)
	assert.Contains(t, err.Error(), "no-such-serial")
}

func TestCodeError(t *testing.T) {
	tests := []struct {
		code    uint
		is      error
		message string
	}{
		{0xA0, token.ErrPINIncorrect, "login: PIN incorrect (CKR_PIN_INCORRECT)"},
		{0xA4, token.ErrPINLocked, "login: PIN locked (CKR_PIN_LOCKED)"},
		{0x140, token.ErrUnsupported, "login: CKR_CURVE_NOT_SUPPORTED: not supported by this token (CKR_0x140)"},
		{0x60, token.ErrNotFound, "login: CKR_KEY_HANDLE_INVALID: not found (CKR_0x60)"},
		{0x6, nil, "login: module returned CKR_FUNCTION_FAILED (CKR_0x6)"},
		{0x8000FFFF, nil, "login: module returned CKR_0x8000FFFF (CKR_0x8000FFFF)"},
	}
	for _, tt := range tests {
		err := codeError("login", tt.code)
		assert.Equal(t, tt.message, err.Error())
		assert.Equal(t, token.ReturnCode(tt.code), err.Code)
		assert.Equal(t, -1, err.RetriesLeft)
		if tt.is != nil {
			assert.ErrorIs(t, err, tt.is)
		}
		assert.True(t, isCode(err, tt.code))
	}
	assert.False(t, isCode(errors.New("x"), 0))
}
