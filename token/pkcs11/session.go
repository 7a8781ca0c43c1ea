//go:build cgo

package pkcs11

import (
	"context"
	"runtime"
	"time"

	p11 "github.com/miekg/pkcs11"
)

// poolSize bounds the sessions one Token opens. One session per concurrent caller is what
// makes signing scale (a session runs one operation at a time); small tokens that allow
// fewer sessions answer CKR_SESSION_COUNT and callers then wait for a free one.
var poolSize = min(16, max(4, 2*runtime.GOMAXPROCS(0)))

// withSession runs fn on a session of the token's pool, crypto11-style, so that no caller
// juggles handles.
//
// Sessions are never closed while the Token is open (only Format and Close close them):
// PKCS#11 logs the application out of a token when its last session there closes, so the
// pool is also what keeps the login state for the token's lifetime.
//
// Every operation holds t.state for reading; Format and Close hold it for writing, so no
// operation runs while sessions are closed underneath it. fn must not call withSession again
// (a waiting Format would deadlock it): helpers take the session as a parameter instead.
func (t *Token) withSession(ctx context.Context, op string, fn func(sh p11.SessionHandle) error) error {
	if err := ctx.Err(); err != nil {
		return wrapErr(op, err)
	}
	t.state.RLock()
	defer t.state.RUnlock()
	if t.closed {
		return closedErr(op)
	}
	for attempt := 0; ; attempt++ {
		sh, pooled, err := t.getSession(ctx)
		if err != nil {
			return wrapErr(op, err)
		}
		err = fn(sh)
		t.putSession(sh, err)
		if pooled && attempt < poolSize && isCode(err, p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED) {
			// A pooled session died behind our back (another Token formatted this token, which
			// closes all of this process's sessions there). Such a session fails on its first
			// call, before fn changed anything, so trying again is safe.
			continue
		}
		return wrapErr(op, err)
	}
}

// getSession takes an idle session, or opens one; pooled says it was idle (and so may have
// been closed behind our back).
func (t *Token) getSession(ctx context.Context) (sh p11.SessionHandle, pooled bool, err error) {
	select {
	case sh := <-t.idle:
		return sh, true, nil
	default:
	}
	for {
		select {
		case sh := <-t.idle:
			return sh, true, nil
		case t.quota <- struct{}{}:
			sh, err := t.openSession()
			if err == nil {
				return sh, false, nil
			}
			<-t.quota
			if !isCode(err, p11.CKR_SESSION_COUNT) || len(t.quota) == 0 {
				return 0, false, err
			}
			// The token allows no more sessions: wait for one of ours. The timer retries
			// in case the sessions in use die instead of coming back.
			select {
			case sh := <-t.idle:
				return sh, true, nil
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return 0, false, ctx.Err()
			}
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

// putSession returns a session to the pool, or forgets it when err says it is dead.
func (t *Token) putSession(sh p11.SessionHandle, err error) {
	switch {
	case isCode(err, p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED):
		// Closed behind our back (another Token on the same token formatted it). The handle
		// is not closed again: its number may already belong to a new session.
		<-t.quota
	case isCode(err, p11.CKR_DEVICE_REMOVED, p11.CKR_TOKEN_NOT_PRESENT):
		_ = t.ctx.CloseSession(sh)
		<-t.quota
	default:
		t.idle <- sh // never blocks: at most cap(quota) sessions exist
	}
}

// openSession opens a read-write session (SO login fails while read-only sessions exist),
// falling back to read-only on write-protected tokens. A slot that vanished is looked for
// again by serial: a reader may have renumbered it.
func (t *Token) openSession() (p11.SessionHandle, error) {
	slot, _ := t.where()
	sh, err := t.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if isCode(err, p11.CKR_SLOT_ID_INVALID, p11.CKR_TOKEN_NOT_PRESENT) {
		var rerr error
		if slot, rerr = t.relocate(); rerr != nil {
			return 0, err
		}
		sh, err = t.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	}
	if isCode(err, p11.CKR_TOKEN_WRITE_PROTECTED) {
		sh, err = t.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
	}
	return sh, err
}

// dropSessions empties the pool, closing each session unless C_CloseAllSessions already has.
// The caller holds t.state for writing, so every session is idle.
func (t *Token) dropSessions(closeEach bool) {
	for len(t.quota) > 0 {
		sh := <-t.idle
		if closeEach {
			_ = t.ctx.CloseSession(sh)
		}
		<-t.quota
	}
}
