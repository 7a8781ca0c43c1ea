package soft

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/tokenrun/tokenrun/token"
)

// session is the login a process holds on a token. master is the token master key, held
// while someone is logged in so that private keys can be opened without the PIN, as a
// PKCS#11 module holds its keys after C_Login.
type session struct {
	role   token.Role
	epoch  string
	master []byte // nil: nobody is logged in
	// keys are private keys already opened in this login, by the hash of their sealed form,
	// so that a signature does not parse the key again (half the cost of an ECDSA
	// signature). They go with the login.
	keys map[[sha256.Size]byte]crypto.Signer
}

func (s *session) loggedIn() bool { return s.master != nil }

func (s *session) user() bool { return s.master != nil && s.role == token.User }

func (s *session) logout() {
	wipe(s.master)
	*s = session{}
}

// tok is one open handle on a token. It implements token.Token.
type tok struct {
	p      *Provider
	s      *slot
	closed bool // guarded by s.mu
}

var _ token.Token = (*tok)(nil)

// txn is one operation's view of the state: read under the lock, written back with save.
type txn struct {
	st    *state
	store store
	sess  *session
}

func (tx *txn) save() error { return tx.store.write(tx.st) }

// do runs fn on the current state with the token's lock held (exclusive when fn may write).
// The state is read afresh every time: another process may have changed it. A login made
// before a format, here or elsewhere, is dropped.
func (t *tok) do(ctx context.Context, op string, exclusive bool, fn func(tx *txn) error) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.closed || t.p.closed.Load() {
		return closedErr(op)
	}
	if err := ctx.Err(); err != nil {
		return wrapErr(op, err)
	}
	unlock, err := t.s.store.lock(ctx, exclusive)
	if err == nil {
		defer unlock()
	}
	var st *state
	if err == nil {
		st, err = t.s.store.read()
	}
	if err != nil {
		if errors.Is(err, token.ErrTokenNotPresent) {
			// Unplugging a token ends its login.
			t.s.sess.logout()
		}
		return wrapErr(op, err)
	}
	if t.s.sess.loggedIn() && t.s.sess.epoch != st.Epoch {
		t.s.sess.logout()
	}
	return wrapErr(op, fn(&txn{st: st, store: t.s.store, sess: &t.s.sess}))
}

// Info reports the token as C_GetTokenInfo would, with exact retry counts.
func (t *tok) Info(ctx context.Context) (token.Info, error) {
	var info token.Info
	err := t.do(ctx, "token info", false, func(tx *txn) error {
		info = t.s.info(tx.st)
		return nil
	})
	return info, err
}

// Login verifies pin for role. Unlike C_Login it always verifies: logging in again re-checks
// the PIN, and logging in as the other role first logs the current one out. Either way a
// failed login leaves nobody logged in, as the pkcs11 backend's logout-then-login does.
func (t *tok) Login(ctx context.Context, role token.Role, pin string) error {
	const op = "login"
	if role != token.User && role != token.SO {
		return token.NewError(op, token.CKR_USER_TYPE_INVALID)
	}
	return t.do(ctx, op, true, func(tx *txn) error {
		tx.sess.logout()
		if tx.st.pin(role).Secret == nil {
			return token.NewError(op, token.CKR_USER_PIN_NOT_INITIALIZED)
		}
		master, err := tx.verifyPIN(op, role, pin, true)
		if err != nil {
			return err
		}
		if err := tx.save(); err != nil { // the count, reset
			wipe(master)
			return err
		}
		*tx.sess = session{role: role, epoch: tx.st.Epoch, master: master}
		return nil
	})
}

// verifyPIN checks pin against role's PIN and returns the master key. The lost try is
// written to disk before the PIN is compared, so that killing the process mid-check never
// yields a free guess. After a match the count is reset in tx.st only: the caller's save
// writes it together with whatever the operation changes, so every operation that checks a
// PIN is two state writes, the try and then the result, and a kill between them leaves the
// token as it was, one try down.
//
// Damage is not a wrong PIN: a secret whose shape is off (an absurd iteration count among
// them) is refused before a try is taken or any work done, and a right PIN whose master key
// does not open gets its try back; both report token.ErrTokenDamaged. Without needMaster
// (format, which makes a new master key) a right PIN whose master key does not open is
// accepted, with a nil master key: formatting is the way out of that damage.
func (tx *txn) verifyPIN(op string, role token.Role, pin string, needMaster bool) ([]byte, error) {
	rec := tx.st.pin(role)
	rep := tx.st.reporting()
	if rec.TriesLeft <= 0 {
		return nil, lockedErr(op, rep)
	}
	if err := rec.Secret.checkShape(); err != nil {
		return nil, tx.store.damaged(op, role, err)
	}
	before := rec.TriesLeft
	rec.TriesLeft--
	if err := tx.save(); err != nil {
		return nil, err
	}
	if testHookTryWritten != nil {
		testHookTryWritten(tx.store.dir)
	}
	master, ok, err := rec.Secret.unlock(pin, masterAAD(tx.st, role))
	if _, lost := errors.AsType[masterDamage](err); lost && !needMaster {
		rec.TriesLeft = rec.MaxTries
		return nil, nil
	}
	if err != nil {
		rec.TriesLeft = before
		if serr := tx.save(); serr != nil {
			return nil, errors.Join(tx.store.damaged(op, role, err), serr)
		}
		return nil, tx.store.damaged(op, role, err)
	}
	if !ok {
		// The try that uses up the last one still says "incorrect", as openCryptoki does;
		// the next one says "locked".
		e := token.NewError(op, token.CKR_PIN_INCORRECT)
		e.RetriesLeft = rep.retriesLeft(rec.TriesLeft)
		return nil, e
	}
	rec.TriesLeft = rec.MaxTries
	return master, nil
}

// lockedErr is CKR_PIN_LOCKED; it says no tries are left unless the token reports nothing.
func lockedErr(op string, rep reporting) error {
	e := token.NewError(op, token.CKR_PIN_LOCKED)
	if rep != reportNothing {
		e.RetriesLeft = 0
	}
	return e
}

// testHookTryWritten lets a test look at the disk between the lost try and the comparison.
var testHookTryWritten func(dir string)

// Logout ends the login. Like C_Logout it fails with CKR_USER_NOT_LOGGED_IN when nobody is
// logged in.
func (t *tok) Logout(ctx context.Context) error {
	const op = "logout"
	return t.do(ctx, op, false, func(tx *txn) error {
		if !tx.sess.loggedIn() {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		tx.sess.logout()
		return nil
	})
}

// SetPIN changes the PIN of whoever is logged in. The checks run in openCryptoki's order:
// a locked PIN, the new PIN's length, then the old PIN (a wrong one costs a try); a new PIN
// equal to the old one is CKR_PIN_INVALID and costs nothing. The login stays as it was.
// The change is one state write (new secret and reset count together) after the try's: a
// kill at any point leaves the old PIN or the new one.
func (t *tok) SetPIN(ctx context.Context, oldPIN, newPIN string) error {
	const op = "set PIN"
	return t.do(ctx, op, true, func(tx *txn) error {
		if !tx.sess.loggedIn() {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		role := tx.sess.role
		rec := tx.st.pin(role)
		if rec.TriesLeft <= 0 {
			return lockedErr(op, tx.st.reporting())
		}
		if err := tx.checkPINLen(op, newPIN); err != nil {
			return err
		}
		if newPIN == oldPIN {
			return token.NewError(op, token.CKR_PIN_INVALID)
		}
		master, err := tx.verifyPIN(op, role, oldPIN, true)
		if err != nil {
			return err
		}
		defer wipe(master)
		sec, err := newPINSecret(newPIN, master, masterAAD(tx.st, role))
		if err != nil {
			return err
		}
		rec.Secret, rec.ToBeChanged = sec, false
		return tx.save()
	})
}

// InitPIN sets the user PIN with the SO logged in, and clears a lock on it (C_InitPIN).
func (t *tok) InitPIN(ctx context.Context, newPIN string) error {
	const op = "init PIN"
	return t.do(ctx, op, true, func(tx *txn) error {
		if !tx.sess.loggedIn() || tx.sess.role != token.SO {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		if err := tx.checkPINLen(op, newPIN); err != nil {
			return err
		}
		// The SO's copy of the master key is what lets the new user PIN open the same keys.
		sec, err := newPINSecret(newPIN, tx.sess.master, masterAAD(tx.st, token.User))
		if err != nil {
			return err
		}
		tx.st.UserPIN.Secret = sec
		tx.st.UserPIN.TriesLeft = tx.st.UserPIN.MaxTries
		return tx.save()
	})
}

func (tx *txn) checkPINLen(op, pin string) error {
	if n := len(pin); n < tx.st.MinPINLen || n > tx.st.MaxPINLen {
		return &token.Error{Op: op, Code: token.CKR_PIN_LEN_RANGE, RetriesLeft: -1,
			Err: fmt.Errorf("the new PIN has %d characters, this token takes %d to %d: %w", n, tx.st.MinPINLen, tx.st.MaxPINLen, token.ErrPINInvalid)}
	}
	return nil
}

// Format is C_InitToken: it logs everyone out, checks the SO PIN (a wrong one costs a try),
// then wipes every object and the user PIN (a user login then gets
// CKR_USER_PIN_NOT_INITIALIZED until the SO sets one) and makes a new master key. The SO
// PIN and the serial stay; label "" keeps the current label.
func (t *tok) Format(ctx context.Context, soPIN, label string) error {
	return t.format(ctx, soPIN, label, nil)
}

// FormatWithUserPIN is Format that also sets the new user PIN, as one state write after the
// SO PIN's try: a kill at any point leaves the old token (old objects, old PINs) or the new
// one with its user PIN, never a token without a user PIN. The new PIN's length is checked
// before the SO PIN, so a refused one costs nothing. It implements token.UserPINFormatter.
func (t *tok) FormatWithUserPIN(ctx context.Context, soPIN, label, userPIN string) error {
	return t.format(ctx, soPIN, label, &userPIN)
}

var _ token.UserPINFormatter = (*tok)(nil)

func (t *tok) format(ctx context.Context, soPIN, label string, userPIN *string) error {
	const op = "format"
	if len(label) > maxLabelLen {
		return &token.Error{Op: op, Code: token.CKR_ARGUMENTS_BAD, RetriesLeft: -1,
			Err: fmt.Errorf("label is %d bytes, a token label holds at most %d: %w", len(label), maxLabelLen, token.ErrInvalidInput)}
	}
	return t.do(ctx, op, true, func(tx *txn) error {
		tx.sess.logout()
		if userPIN != nil {
			if err := tx.checkPINLen(op, *userPIN); err != nil {
				return err
			}
		}
		old, err := tx.verifyPIN(op, token.SO, soPIN, false)
		if err != nil {
			return err
		}
		wipe(old)
		st := tx.st
		st.Epoch = newEpoch()
		if label != "" {
			st.Label = label
		}
		st.Keys, st.Certs = nil, nil
		st.UserPIN = pinRecord{MaxTries: st.UserPIN.MaxTries, TriesLeft: st.UserPIN.MaxTries}
		master := randomBytes(masterKeyLen)
		defer wipe(master)
		if st.SOPIN.Secret, err = newPINSecret(soPIN, master, masterAAD(st, token.SO)); err != nil {
			return err
		}
		if userPIN != nil {
			if st.UserPIN.Secret, err = newPINSecret(*userPIN, master, masterAAD(st, token.User)); err != nil {
				return err
			}
		}
		return tx.save()
	})
}

// Keys lists the key pairs. They are private objects: with no user logged in the list is
// empty, as C_FindObjects shows it.
func (t *tok) Keys(ctx context.Context) ([]*token.Key, error) {
	var keys []*token.Key
	err := t.do(ctx, "list keys", false, func(tx *txn) error {
		if !tx.sess.user() {
			return nil
		}
		for i := range tx.st.Keys {
			k, err := tx.keyFor(&tx.st.Keys[i])
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}

func (tx *txn) keyFor(rec *keyRecord) (*token.Key, error) {
	pub, err := x509.ParsePKIXPublicKey(rec.Public)
	if err != nil {
		return nil, tx.store.corrupt(fmt.Errorf("public key %x: %w", rec.ID, err))
	}
	return &token.Key{
		Object: token.Object{Class: token.PrivateKey, ID: slices.Clone(rec.ID), Label: rec.Label},
		Type:   rec.Type,
		Bits:   rec.Bits,
		Curve:  rec.Curve,
		Public: pub,
	}, nil
}

// Certificates lists the certificates. They are public objects: no login needed.
func (t *tok) Certificates(ctx context.Context) ([]*token.Cert, error) {
	var certs []*token.Cert
	err := t.do(ctx, "list certificates", false, func(tx *txn) error {
		for _, rec := range tx.st.Certs {
			c, err := x509.ParseCertificate(rec.DER)
			if err != nil {
				return tx.store.corrupt(fmt.Errorf("certificate %x: %w", rec.ID, err))
			}
			certs = append(certs, &token.Cert{
				Object: token.Object{Class: token.Certificate, ID: slices.Clone(rec.ID), Label: rec.Label},
				DER:    slices.Clone(rec.DER),
				X509:   c,
			})
		}
		return nil
	})
	return certs, err
}

// StoreCertificate stores a certificate after checking that it parses. It needs the user
// logged in, like every change to this token. Storing the same certificate under the same id
// twice is token.ErrAlreadyExists, so that a rerun of an enrollment cannot pile up copies.
func (t *tok) StoreCertificate(ctx context.Context, req token.CertificateRequest) (*token.Cert, error) {
	const op = "store certificate"
	c, err := x509.ParseCertificate(req.DER)
	if err != nil {
		return nil, &token.Error{Op: op, RetriesLeft: -1, Err: fmt.Errorf("not a DER X.509 certificate: %w: %w", err, token.ErrInvalidInput)}
	}
	var out *token.Cert
	err = t.do(ctx, op, true, func(tx *txn) error {
		if !tx.sess.user() {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		for _, rec := range tx.st.Certs {
			if bytes.Equal(rec.ID, req.ID) && bytes.Equal(rec.DER, req.DER) {
				return fmt.Errorf("this certificate is already stored with id %x: %w", req.ID, token.ErrAlreadyExists)
			}
		}
		rec := certRecord{ID: slices.Clone(req.ID), Label: req.Label, DER: slices.Clone(req.DER)}
		tx.st.Certs = append(tx.st.Certs, rec)
		if err := tx.save(); err != nil {
			return err
		}
		out = &token.Cert{
			Object: token.Object{Class: token.Certificate, ID: slices.Clone(rec.ID), Label: rec.Label},
			DER:    slices.Clone(rec.DER),
			X509:   c,
		}
		return nil
	})
	return out, err
}

// Delete removes every object of obj.Class with obj.ID (and obj.Label when set). It needs
// the user logged in, for certificates too (a PKCS#11 module would let a public session
// delete one): a client's issued certificate must not go by accident.
//
// A key pair is one object here: deleting its PrivateKey removes the pair. Deleting a
// PublicKey alone is token.ErrUnsupported when a matching pair exists (a PKCS#11 token
// would keep the private half; this one cannot), and token.ErrNotFound otherwise.
func (t *tok) Delete(ctx context.Context, obj token.Object) error {
	const op = "delete"
	switch obj.Class {
	case token.PrivateKey, token.PublicKey, token.Certificate:
	default:
		return &token.Error{Op: op, Code: token.CKR_ARGUMENTS_BAD, RetriesLeft: -1,
			Err: fmt.Errorf("object class %q: want %s, %s or %s: %w", obj.Class, token.PrivateKey, token.PublicKey, token.Certificate, token.ErrInvalidInput)}
	}
	match := func(id []byte, label string) bool {
		return bytes.Equal(id, obj.ID) && (obj.Label == "" || obj.Label == label)
	}
	return t.do(ctx, op, true, func(tx *txn) error {
		if !tx.sess.user() {
			return token.NewError(op, token.CKR_USER_NOT_LOGGED_IN)
		}
		st := tx.st
		n := 0
		switch obj.Class {
		case token.PrivateKey:
			before := len(st.Keys)
			st.Keys = slices.DeleteFunc(st.Keys, func(k keyRecord) bool { return match(k.ID, k.Label) })
			n = before - len(st.Keys)
		case token.PublicKey:
			if slices.ContainsFunc(st.Keys, func(k keyRecord) bool { return match(k.ID, k.Label) }) {
				return fmt.Errorf("the software token keeps a key pair as one object: delete its %s to remove the pair: %w", token.PrivateKey, token.ErrUnsupported)
			}
		case token.Certificate:
			before := len(st.Certs)
			st.Certs = slices.DeleteFunc(st.Certs, func(c certRecord) bool { return match(c.ID, c.Label) })
			n = before - len(st.Certs)
		}
		if n == 0 {
			return fmt.Errorf("no %s with id %x%s: %w", obj.Class, obj.ID, labelNote(obj.Label), token.ErrNotFound)
		}
		return tx.save()
	})
}

func labelNote(label string) string {
	if label == "" {
		return ""
	}
	return fmt.Sprintf(" and label %q", label)
}

// Close ends this handle. When it is the provider's last open handle on the token, the
// login ends too, as closing the last PKCS#11 session does.
func (t *tok) Close() error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.s.open--
	if t.s.open <= 0 {
		t.s.sess.logout()
	}
	return nil
}

func newEpoch() string { return fmt.Sprintf("%x", randomBytes(16)) }

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

func closedErr(op string) error {
	return &token.Error{Op: op, Err: token.ErrClosed, RetriesLeft: -1}
}

// wrapErr makes every failure a *token.Error naming the operation, keeping one that
// already is.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*token.Error](err); ok {
		if te.Op != op {
			// Keep the code and the condition, name the operation the caller asked for.
			c := *te
			c.Op = op
			return &c
		}
		return te
	}
	return &token.Error{Op: op, Err: err, RetriesLeft: -1}
}
