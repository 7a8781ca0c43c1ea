//go:build cgo

package pkcs11

import (
	"context"
	"fmt"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenrun/tokenrun/token"
)

// Provider is one PKCS#11 module, the source of the tokens in its slots.
type Provider struct {
	mod *module

	mu     sync.Mutex
	closed bool
}

var _ token.Provider = (*Provider)(nil)

// Open loads and initialises the module at path (or shares the context another Provider in
// this process already holds for the same file).
func Open(path string) (*Provider, error) {
	m, err := acquire(path)
	if err != nil {
		return nil, err
	}
	return &Provider{mod: m}, nil
}

// Description is the module path, as given to Open.
func (p *Provider) Description() string { return p.mod.path }

func (p *Provider) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Tokens lists every slot with a token present, initialised or not.
func (p *Provider) Tokens(ctx context.Context) ([]token.Info, error) {
	const op = "list tokens"
	if p.isClosed() {
		return nil, closedErr(op)
	}
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(op, err)
	}
	return listTokens(p.mod.ctx, op)
}

func listTokens(ctx *p11.Ctx, op string) ([]token.Info, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	infos := make([]token.Info, 0, len(slots))
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			// The token went away between the two calls: it is no longer present.
			if isCode(err, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_SLOT_ID_INVALID, p11.CKR_DEVICE_REMOVED) {
				continue
			}
			return nil, wrapErr(op, err)
		}
		infos = append(infos, convertInfo(s, ti))
	}
	return infos, nil
}

// Open opens the token described by info, found again by serial; the label only tells apart
// tokens that share a serial. An uninitialised token may have no serial (SoftHSM2's spare
// slot): it is found by its slot id, which stays the same while the module is initialised.
func (p *Provider) Open(ctx context.Context, info token.Info) (token.Token, error) {
	return p.OpenToken(ctx, info)
}

// OpenToken is Open returning the concrete type.
func (p *Provider) OpenToken(ctx context.Context, info token.Info) (*Token, error) {
	const op = "open token"
	if p.isClosed() {
		return nil, closedErr(op)
	}
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(op, err)
	}
	infos, err := listTokens(p.mod.ctx, op)
	if err != nil {
		return nil, err
	}
	found, err := findToken(infos, info)
	if err != nil {
		return nil, &token.Error{Op: op, Err: err, RetriesLeft: -1}
	}
	// The token holds its own reference so that closing the Provider first does not
	// finalise the module under it.
	m, err := acquire(p.mod.path)
	if err != nil {
		return nil, err
	}
	return newToken(m, found), nil
}

// findToken picks the one token in infos that want describes.
func findToken(infos []token.Info, want token.Info) (token.Info, error) {
	var match []token.Info
	for _, i := range infos {
		if want.Serial == "" {
			if i.Serial == "" && i.Slot == want.Slot {
				match = append(match, i)
			}
		} else if i.Serial == want.Serial {
			match = append(match, i)
		}
	}
	if len(match) > 1 && want.Label != "" {
		var byLabel []token.Info
		for _, i := range match {
			if i.Label == want.Label {
				byLabel = append(byLabel, i)
			}
		}
		match = byLabel
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return token.Info{}, fmt.Errorf("token %s is not present: %w", want.Name(), token.ErrTokenNotPresent)
	default:
		return token.Info{}, &token.SeveralTokensError{Tokens: match}
	}
}

// Close releases the module; the last Provider or Token on it finalises it.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return closedErr("close")
	}
	p.closed = true
	p.mu.Unlock()
	return p.mod.release()
}

// convertInfo turns CK_TOKEN_INFO into token.Info.
func convertInfo(slot uint, ti p11.TokenInfo) token.Info {
	f := ti.Flags
	has := func(flag uint) bool { return f&flag != 0 }
	return token.Info{
		Slot:               slot,
		Label:              trimPadding(ti.Label),
		Serial:             trimPadding(ti.SerialNumber),
		Manufacturer:       trimPadding(ti.ManufacturerID),
		Model:              trimPadding(ti.Model),
		Initialized:        has(p11.CKF_TOKEN_INITIALIZED),
		LoginRequired:      has(p11.CKF_LOGIN_REQUIRED),
		UserPINInitialized: has(p11.CKF_USER_PIN_INITIALIZED),
		ProtectedAuthPath:  has(p11.CKF_PROTECTED_AUTHENTICATION_PATH),
		MinPINLen:          pinLen(ti.MinPinLen),
		MaxPINLen:          pinLen(ti.MaxPinLen),
		UserPIN: pinStatus(has(p11.CKF_USER_PIN_COUNT_LOW), has(p11.CKF_USER_PIN_FINAL_TRY),
			has(p11.CKF_USER_PIN_LOCKED), has(p11.CKF_USER_PIN_TO_BE_CHANGED)),
		SOPIN: pinStatus(has(p11.CKF_SO_PIN_COUNT_LOW), has(p11.CKF_SO_PIN_FINAL_TRY),
			has(p11.CKF_SO_PIN_LOCKED), has(p11.CKF_SO_PIN_TO_BE_CHANGED)),
	}
}

// pinStatus builds a PINStatus from the flags. PKCS#11 only says "final try" and "locked";
// any other count is unknown (-1).
//
// COUNT_LOW means a wrong PIN was entered since the last successful login (PKCS#11 v2.40
// §5.7.2), which FINAL_TRY and LOCKED imply too; openCryptoki 3.8.1 clears COUNT_LOW when it
// sets FINAL_TRY, so it is derived here to mean the same on every module.
func pinStatus(low, final, locked, change bool) token.PINStatus {
	low = low || final || locked
	retries := -1
	switch {
	case locked:
		retries = 0
	case final:
		retries = 1
	}
	return token.PINStatus{CountLow: low, FinalTry: final, Locked: locked, ToBeChanged: change, RetriesLeft: retries}
}

// pinLen maps CK_UNAVAILABLE_INFORMATION (and other absurd values) to 0, "unknown".
func pinLen(v uint) int {
	if v > 1<<16 {
		return 0
	}
	return int(v)
}

// Fixed-width CK_UTF8CHAR fields are padded with spaces, and by some modules with NULs.
func trimPadding(s string) string { return strings.TrimRight(s, " \x00") }
