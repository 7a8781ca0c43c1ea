// Package floor is the host's safety floor under every procedure and every signing batch. It
// wraps a token.Provider so that, whatever a (bank-edited) script asks for:
//
//   - a run holds an exclusive lock on the token from the moment it opens it until it closes
//     it, so two runs never interleave on one token (two enrollments leaving two keys, two
//     logins racing for the last try). The lock is an OS file lock under Options.Dir, keyed
//     by the token's identity (see Identity), released by the kernel when a process dies. A
//     second run waits up to Options.LockWait, told who holds the token, then gets
//     token.ErrTokenBusy;
//   - every login (and every C_SetPIN and C_InitToken, which check a PIN too) is decided here
//     first. A tries ledger per token and role, kept under Options.Dir, counts the failed
//     tries tokenrun itself spent since the last success. Where the module reports an exact
//     count, the count decides. Where it reports only flags (most modules), the flags decide
//     and the ledger adds to them, assuming the token locks after AssumedTries wrong tries:
//     the stricter wins. Where it reports nothing at all (TPM-backed and some vendor modules)
//     the ledger is all there is. A try that may be the last one, or any try after a recorded
//     failure on a token that reports nothing, is spent only on a PIN a person typed
//     (Options.Person); otherwise the login is refused with token.ErrTryRefused and nothing
//     reaches the token. A locked PIN is never tried.
//
// The try is recorded before it is spent, so a run killed during the login never loses it;
// a login that fails for another reason than a wrong PIN gives it back.
package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/token"
)

// AssumedTries is how many wrong tries a token is assumed to allow when it does not say:
// three is the fewest common tokens allow (TPM-backed modules, openCryptoki, many cards).
const AssumedTries = 3

// DefaultLockWait is how long a run waits for a token another run holds: long enough for
// the other run's login or signature to finish, short enough that a stuck run is reported
// rather than waited on for good.
const DefaultLockWait = 60 * time.Second

// Options configure the floor for one process.
type Options struct {
	// Dir holds the ledger (Dir/tries) and the locks (Dir/locks); $TOKENRUN_HOME/floor.
	Dir string
	// Command names this run to a run that finds the token held: "tokenrun enroll".
	Command string
	// LockWait is how long Open waits for a token another run holds; 0 is DefaultLockWait,
	// below 0 does not wait.
	LockWait time.Duration
	// Waiting is told once per Open that has to wait, with what holds the token. May be nil.
	Waiting func(token.Info, Holder)
	// Person reports whether pin was typed in this run by a person at a terminal. Nil means
	// no PIN ever was: only files, pipes and drivers.
	Person func(pin string) bool
	// Poll is how often a held lock is tried again; 0 is 100 ms.
	Poll time.Duration
}

// Provider is a token.Provider whose tokens are guarded by the floor.
type Provider struct {
	token.Provider
	opts Options

	mu   sync.Mutex
	held map[string]*held // by identity key: this provider's own opens share the lock
}

type held struct {
	lock *lock
	refs int
}

// Wrap guards every token p opens.
func Wrap(p token.Provider, opts Options) *Provider {
	if opts.LockWait == 0 {
		opts.LockWait = DefaultLockWait
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	return &Provider{Provider: p, opts: opts, held: map[string]*held{}}
}

// Open takes the token's lock, then opens it.
func (p *Provider) Open(ctx context.Context, info token.Info) (token.Token, error) {
	id := Identify(p.Provider, info)
	if err := p.acquire(ctx, id, info); err != nil {
		return nil, err
	}
	t, err := p.Provider.Open(ctx, info)
	if err != nil {
		p.release(id)
		return nil, err
	}
	return &Token{Token: t, p: p, id: id, ledger: &ledger{path: filepath.Join(p.opts.Dir, "tries", id.Key+".json"), name: id.Name}}, nil
}

func (p *Provider) acquire(ctx context.Context, id ID, info token.Info) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.held[id.Key]; ok {
		h.refs++
		return nil
	}
	l, err := takeLock(ctx, filepath.Join(p.opts.Dir, "locks"), id, info, p.opts)
	if err != nil {
		return err
	}
	p.held[id.Key] = &held{lock: l, refs: 1}
	return nil
}

func (p *Provider) release(id ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.held[id.Key]
	if !ok {
		return
	}
	if h.refs--; h.refs == 0 {
		h.lock.release()
		delete(p.held, id.Key)
	}
}

// Token is a token under the floor. Methods not listed here pass through.
type Token struct {
	token.Token
	p      *Provider
	id     ID
	ledger *ledger

	mu     sync.Mutex // one PIN decision at a time; guards below
	role   token.Role // who is logged in, for SetPIN
	closed bool
}

// Info is the token's info with the PIN status as the floor judges it: the ledger's failures
// added to what the module reports, so scripts warn and ask a person when the floor would.
func (t *Token) Info(ctx context.Context) (token.Info, error) {
	info, err := t.Token.Info(ctx)
	if err != nil {
		return info, err
	}
	n, err := t.ledger.read()
	if err != nil {
		return info, err
	}
	info.UserPIN = judge(info.UserPIN, n.failures(token.User)).status
	info.SOPIN = judge(info.SOPIN, n.failures(token.SO)).status
	return info, nil
}

// Login logs in once the floor allows the try.
func (t *Token) Login(ctx context.Context, role token.Role, pin string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.try(ctx, "login", role, pin, func() error { return t.Token.Login(ctx, role, pin) })
	if err == nil {
		t.role = role
	}
	return err
}

// Logout passes through; the role is forgotten.
func (t *Token) Logout(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.role = token.User
	return t.Token.Logout(ctx)
}

// SetPIN checks the old PIN like a login of whoever is logged in: modules count a wrong one.
func (t *Token) SetPIN(ctx context.Context, oldPIN, newPIN string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.try(ctx, "set PIN", t.role, oldPIN, func() error { return t.Token.SetPIN(ctx, oldPIN, newPIN) })
}

// InitPIN sets a new user PIN (the SO is logged in): the user's ledger starts again.
func (t *Token) InitPIN(ctx context.Context, newPIN string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.Token.InitPIN(ctx, newPIN); err != nil {
		return err
	}
	return t.ledger.set(token.User, 0)
}

// Format checks the SO PIN like an SO login (C_InitToken counts a wrong one), and the user's
// ledger starts again with the user PIN the format removes.
func (t *Token) Format(ctx context.Context, soPIN, label string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.try(ctx, "format", token.SO, soPIN, func() error { return t.Token.Format(ctx, soPIN, label) }); err != nil {
		return err
	}
	t.role = token.User
	return t.ledger.set(token.User, 0)
}

// FormatWithUserPIN is Format that also sets the user PIN, in one step where the token can
// (token.UserPINFormatter), so a kill never leaves it without one.
func (t *Token) FormatWithUserPIN(ctx context.Context, soPIN, label, userPIN string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.try(ctx, "format", token.SO, soPIN, func() error {
		return token.FormatWithUserPIN(ctx, t.Token, soPIN, label, userPIN)
	}); err != nil {
		return err
	}
	t.role = token.User
	return t.ledger.set(token.User, 0)
}

// Close closes the token and, with this provider's last open of it, releases the lock.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.Token.Close()
	}
	t.closed = true
	err := t.Token.Close()
	t.p.release(t.id)
	return err
}

// try runs do, which spends one try of role's PIN, if the floor allows it.
func (t *Token) try(ctx context.Context, op string, role token.Role, pin string, do func() error) error {
	info, err := t.Token.Info(ctx)
	if err != nil {
		return err
	}
	raw := info.UserPIN
	if role == token.SO {
		raw = info.SOPIN
	}
	n, err := t.ledger.read()
	if err != nil {
		return err
	}
	failures := n.failures(role)
	v := judge(raw, failures)
	if v.status.Locked {
		return &token.Error{Op: op, Err: token.ErrPINLocked, RetriesLeft: 0}
	}
	if v.needsPerson && !t.typedByPerson(pin) {
		return &token.Error{Op: op, Err: fmt.Errorf("%w: %s, and this PIN was not typed by a person at a terminal; "+
			"type it at a terminal, or unblock the token with the administrator password", token.ErrTryRefused, v.why(role)), RetriesLeft: -1}
	}
	// Count the try before it is spent: a run killed during the call must not lose it.
	if err := t.ledger.set(role, failures+1); err != nil {
		return err
	}
	err = do()
	switch {
	case err == nil:
		return t.ledger.set(role, 0)
	case errors.Is(err, token.ErrPINIncorrect), errors.Is(err, token.ErrPINLocked):
		return err
	}
	// Any other failure spent no try (the token was pulled, the PIN had the wrong length).
	if lerr := t.ledger.set(role, failures); lerr != nil {
		return errors.Join(err, lerr)
	}
	return err
}

func (t *Token) typedByPerson(pin string) bool {
	return t.p.opts.Person != nil && t.p.opts.Person(pin)
}

// verdict is the floor's judgement of one PIN's tries.
type verdict struct {
	status      token.PINStatus // what scripts are shown
	silent      bool            // the module reports nothing, and tokenrun saw a failure
	needsPerson bool            // the next try may be the last, or cannot be known not to be
}

// judge merges what the module reports with the failures the ledger counted.
func judge(raw token.PINStatus, failures int) verdict {
	v := verdict{status: raw}
	if raw.RetriesLeft >= 0 {
		// An exact count already holds every failure, ours and anyone else's.
		v.status.Locked = raw.Locked || raw.RetriesLeft == 0
		v.status.FinalTry = raw.FinalTry || raw.RetriesLeft == 1
		v.needsPerson = v.status.FinalTry
		return v
	}
	v.silent = failures > 0 && !raw.CountLow && !raw.FinalTry && !raw.Locked
	if failures > 0 {
		v.status.CountLow = true
	}
	if failures >= AssumedTries-1 {
		v.status.FinalTry = true
	}
	v.needsPerson = v.status.FinalTry || v.silent
	return v
}

func (v verdict) why(role token.Role) string {
	who := "the user PIN"
	if role == token.SO {
		who = "the administrator PIN"
	}
	if v.silent && !v.status.FinalTry {
		return fmt.Sprintf("this token does not report how many tries %s has left, and a try has already failed", who)
	}
	return fmt.Sprintf("the next wrong try may block %s", who)
}

// ensureDir makes dir for the floor's files, private to the user.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("safety floor: %w", err)
	}
	return nil
}

// The floor keeps the one-step format of the token below (the software token's single write).
var _ token.UserPINFormatter = (*Token)(nil)
