//go:build cgo

package pkcs11

import (
	"context"
	"fmt"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenrun/tokenrun/token"
)

// Token is one token in a slot of a PKCS#11 module. It is safe for concurrent use.
type Token struct {
	mod *module
	ctx *p11.Ctx

	// state is held for reading by every operation and for writing by Format and Close,
	// which close the sessions.
	state  sync.RWMutex
	closed bool

	// where the token is; Format and relocate change it.
	whereMu sync.Mutex
	slot    uint
	serial  string
	label   string

	idle  chan p11.SessionHandle // open sessions not in use
	quota chan struct{}          // one element per open session

	// loginMu keeps one Login's log-out-then-log-in from interleaving with another's.
	loginMu sync.Mutex

	mechMu sync.Mutex
	mechs  map[uint]bool // nil until read
}

var _ token.Token = (*Token)(nil)

func newToken(m *module, info token.Info) *Token {
	return &Token{
		mod:    m,
		ctx:    m.ctx,
		slot:   info.Slot,
		serial: info.Serial,
		label:  info.Label,
		idle:   make(chan p11.SessionHandle, poolSize),
		quota:  make(chan struct{}, poolSize),
	}
}

// where is the token's current slot and serial.
func (t *Token) where() (uint, string) {
	t.whereMu.Lock()
	defer t.whereMu.Unlock()
	return t.slot, t.serial
}

// name is how messages name the token.
func (t *Token) name() string {
	t.whereMu.Lock()
	defer t.whereMu.Unlock()
	return token.Info{Label: t.label, Serial: t.serial}.Name()
}

// relocate finds the token's slot again by serial.
func (t *Token) relocate() (uint, error) {
	slot, serial := t.where()
	if serial == "" {
		// Without a serial (an uninitialised SoftHSM2 token) only the slot id names it.
		return slot, nil
	}
	infos, err := listTokens(t.ctx, "find token")
	if err != nil {
		return 0, err
	}
	t.whereMu.Lock()
	label := t.label
	t.whereMu.Unlock()
	info, err := findToken(infos, token.Info{Serial: serial, Label: label})
	if err != nil {
		return 0, err
	}
	t.whereMu.Lock()
	t.slot, t.label = info.Slot, info.Label
	t.whereMu.Unlock()
	return info.Slot, nil
}

// Info reads the token's current information and PIN flags.
func (t *Token) Info(ctx context.Context) (token.Info, error) {
	const op = "token info"
	if err := ctx.Err(); err != nil {
		return token.Info{}, wrapErr(op, err)
	}
	t.state.RLock()
	defer t.state.RUnlock()
	if t.closed {
		return token.Info{}, closedErr(op)
	}
	info, err := t.info()
	return info, wrapErr(op, err)
}

func (t *Token) info() (token.Info, error) {
	slot, _ := t.where()
	ti, err := t.ctx.GetTokenInfo(slot)
	if isCode(err, p11.CKR_SLOT_ID_INVALID, p11.CKR_TOKEN_NOT_PRESENT) {
		var rerr error
		if slot, rerr = t.relocate(); rerr != nil {
			return token.Info{}, err
		}
		ti, err = t.ctx.GetTokenInfo(slot)
	}
	if err != nil {
		return token.Info{}, err
	}
	info := convertInfo(slot, ti)
	t.whereMu.Lock()
	t.label = info.Label
	t.whereMu.Unlock()
	return info, nil
}

// pinError maps a failed PIN operation, adding the tries left on role's PIN that the token's
// flags reveal. It never includes the PIN.
func (t *Token) pinError(op string, role token.Role, err error) error {
	if !isCode(err, p11.CKR_PIN_INCORRECT, p11.CKR_PIN_LOCKED) {
		return wrapErr(op, err)
	}
	if isCode(err, p11.CKR_PIN_LOCKED) {
		e := codeError(op, p11.CKR_PIN_LOCKED)
		e.RetriesLeft = 0
		return e
	}
	e := codeError(op, p11.CKR_PIN_INCORRECT)
	if info, ierr := t.info(); ierr == nil {
		if role == token.SO {
			e.RetriesLeft = info.SOPIN.RetriesLeft
		} else {
			e.RetriesLeft = info.UserPIN.RetriesLeft
		}
	}
	return e
}

func userType(role token.Role) uint {
	if role == token.SO {
		return p11.CKU_SO
	}
	return p11.CKU_USER
}

// Login logs role in with pin. The PIN is always checked: when someone is already logged in
// (the module would answer CKR_USER_ALREADY_LOGGED_IN without looking at the PIN) it logs out
// and logs in again, so a wrong PIN never passes and ends the earlier login.
func (t *Token) Login(ctx context.Context, role token.Role, pin string) error {
	op := "login as " + role.String()
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	return t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		err := t.ctx.Login(sh, userType(role), pin)
		if isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN, p11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN) {
			if lerr := t.ctx.Logout(sh); lerr != nil && !isCode(lerr, p11.CKR_USER_NOT_LOGGED_IN) {
				return lerr
			}
			err = t.ctx.Login(sh, userType(role), pin)
		}
		if err != nil {
			return t.pinError(op, role, err)
		}
		return nil
	})
}

// Logout logs out whoever is logged in; logging out when nobody is is not an error.
func (t *Token) Logout(ctx context.Context) error {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	return t.withSession(ctx, "logout", func(sh p11.SessionHandle) error {
		if err := t.ctx.Logout(sh); err != nil && !isCode(err, p11.CKR_USER_NOT_LOGGED_IN) {
			return err
		}
		return nil
	})
}

// soLoggedIn reports whether the security officer is logged in, from the session state.
func (t *Token) soLoggedIn(sh p11.SessionHandle) (bool, error) {
	si, err := t.ctx.GetSessionInfo(sh)
	if err != nil {
		return false, err
	}
	return si.State == p11.CKS_RW_SO_FUNCTIONS, nil
}

// SetPIN changes the PIN of whoever is logged in (the user's when nobody is: C_SetPIN in a
// public session changes the user PIN on tokens that allow it).
func (t *Token) SetPIN(ctx context.Context, oldPIN, newPIN string) error {
	const op = "set PIN"
	return t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		so, err := t.soLoggedIn(sh)
		if err != nil {
			return err
		}
		role := token.User
		if so {
			role = token.SO
		}
		if err := t.ctx.SetPIN(sh, oldPIN, newPIN); err != nil {
			return t.pinError(op, role, err)
		}
		return nil
	})
}

// InitPIN sets the user PIN; the security officer must be logged in.
func (t *Token) InitPIN(ctx context.Context, newPIN string) error {
	const op = "init PIN"
	return t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		so, err := t.soLoggedIn(sh)
		if err != nil {
			return err
		}
		if !so {
			return newErr(op, token.ErrNotLoggedIn, "the security officer must be logged in to set the user PIN")
		}
		return t.ctx.InitPIN(sh, newPIN)
	})
}

// Format initialises the token (C_InitToken): every object and the user PIN are wiped. It
// first closes every session this process has on the token, as C_InitToken requires, which
// also ends other Token values' sessions on the same token. The Token stays usable: it
// finds the token again by serial (kept by re-initialisation on SoftHSM2 and openCryptoki;
// given for the first time when SoftHSM2's spare token is initialised) and opens new
// sessions as needed.
func (t *Token) Format(ctx context.Context, soPIN, label string) error {
	const op = "format"
	if len(label) > 32 {
		return newErr(op, token.ErrInvalidInput, "label %q is %d bytes long; PKCS#11 allows 32", label, len(label))
	}
	if err := ctx.Err(); err != nil {
		return wrapErr(op, err)
	}
	t.state.Lock()
	defer t.state.Unlock()
	if t.closed {
		return closedErr(op)
	}
	slot, serial := t.where()
	if err := t.ctx.CloseAllSessions(slot); err != nil && !isCode(err, p11.CKR_TOKEN_NOT_RECOGNIZED) {
		return wrapErr(op, err)
	}
	t.dropSessions(false) // C_CloseAllSessions closed them
	if err := t.ctx.InitToken(slot, soPIN, label); err != nil {
		return t.pinError(op, token.SO, err)
	}
	t.mechMu.Lock()
	t.mechs = nil
	t.mechMu.Unlock()

	infos, err := listTokens(t.ctx, op)
	if err != nil {
		return err
	}
	var found token.Info
	if serial != "" {
		found, err = findToken(infos, token.Info{Serial: serial, Label: label})
	} else {
		// SoftHSM2's spare token had no serial until now: its slot id, which holds while the
		// module stays initialised, names it.
		err = fmt.Errorf("slot %d is gone: %w", slot, token.ErrTokenNotPresent)
		for _, i := range infos {
			if i.Slot == slot {
				found, err = i, nil
			}
		}
	}
	if err != nil {
		return &token.Error{Op: op, Err: fmt.Errorf("token initialised but not found again: %w", err), RetriesLeft: -1}
	}
	t.whereMu.Lock()
	t.slot, t.serial, t.label = found.Slot, found.Serial, found.Label
	t.whereMu.Unlock()
	return nil
}

// Close closes the token's sessions (which logs out) and releases the module.
func (t *Token) Close() error {
	t.state.Lock()
	defer t.state.Unlock()
	if t.closed {
		return closedErr("close")
	}
	t.closed = true
	t.dropSessions(true)
	return t.mod.release()
}

// mechanism reports whether the token offers mech; known is false when the module would not
// say (then the operation is simply tried).
func (t *Token) mechanism(mech uint) (ok, known bool) {
	t.mechMu.Lock()
	defer t.mechMu.Unlock()
	if t.mechs == nil {
		slot, _ := t.where()
		list, err := t.ctx.GetMechanismList(slot)
		if err != nil || len(list) == 0 {
			return false, false
		}
		t.mechs = make(map[uint]bool, len(list))
		for _, m := range list {
			t.mechs[m.Mechanism] = true
		}
	}
	return t.mechs[mech], true
}

// unsupported is the error for a mechanism, key size or curve the token lacks, naming it
// and the module.
func (t *Token) unsupported(op string, mech uint, what string, code token.ReturnCode) error {
	return &token.Error{
		Op:          op,
		Code:        code,
		Err:         fmt.Errorf("%s (%s) is not offered by token %s of module %s: %w", mechName(mech), what, t.name(), t.mod.path, token.ErrUnsupported),
		RetriesLeft: -1,
	}
}
