// Package soft is the embedded software token: a PKCS#11-style token kept in one directory,
// pure Go. It lets tokenrun run with nothing installed and lets support reproduce a client's
// KAZTOKEN: the same roles, default PINs, retry counters and flags, and the same PKCS#11
// return codes as the token/pkcs11 backend over SoftHSM2 or openCryptoki.
//
// Each directory is one token. Its state is one JSON file, replaced atomically under a lock
// file, and read again at every operation, so several processes can share a token. PINs are
// stored as PBKDF2 verifiers only; private keys are sealed with AES-GCM under a random master
// key, which is itself sealed under the user PIN and, separately, under the SO PIN (as
// SoftHSM2 does), so the SO can set a new user PIN without the old one. Keys never leave
// the token: there is a crypto.Signer and nothing that returns private key material.
//
// Removing a token's directory (or its state file) unplugs it: Tokens leaves it out, open
// handles get token.ErrTokenNotPresent and lose their login; putting it back plugs it in.
//
// Where this token differs from what a PKCS#11 module would do, the method says so.
package soft

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tokenrun/tokenrun/token"
)

// What a new token calls itself.
const (
	Manufacturer = "tokenrun"
	Model        = "software token"
)

// maxLabelLen is CK_TOKEN_INFO.label's size: 32 bytes.
const maxLabelLen = 32

// Options describe a new token. A token that already exists keeps what it was created with
// (label, PINs, tries, PIN lengths live on the token, as on a card); the options are then
// only checked. Zero values mean the defaults.
type Options struct {
	Label          string // default "KAZTOKEN"
	DefaultUserPIN string // default "12345678"
	DefaultSOPIN   string // default "87654321"
	UserMaxTries   int    // default 10
	SOMaxTries     int    // default 10
	MinPINLen      int    // default 4
	MaxPINLen      int    // default 32

	// Serial, Manufacturer and Model make a new token show what a client's token showed, for
	// support reproducing a run (tokenrun replay --soft). Empty: a random 16-hex-digit
	// serial, Manufacturer and Model. A serial is at most 16 printable ASCII characters, the
	// size of CK_TOKEN_INFO.serialNumber; the others at most 32 bytes.
	Serial       string
	Manufacturer string
	Model        string
	// UserPINToBeChanged and SOPINToBeChanged raise the PKCS#11 "to be changed" flag of that
	// PIN until it is changed (C_SetPIN), as a client's token may show for a factory PIN.
	UserPINToBeChanged bool
	SOPINToBeChanged   bool
	// FlagsOnly makes the token say what most PKCS#11 modules say of PIN tries: the flags
	// (count low, final try, locked) and no count (RetriesLeft -1), as a client's module
	// did. The count is still kept and enforced.
	FlagsOnly bool
	// NoPINInfo makes the token say nothing at all of PIN tries, as TPM-backed modules do: no
	// flags (count low, final try and locked stay false) and no count (RetriesLeft -1), in its
	// info and in its errors. The count is still kept and enforced: after UserMaxTries (or
	// SOMaxTries) wrong tries a login gets CKR_PIN_LOCKED. It overrides FlagsOnly.
	NoPINInfo bool
}

func (o Options) withDefaults() (Options, error) {
	def := func(v *int, d int, name string) error {
		if *v < 0 {
			return fmt.Errorf("software token options: %s is %d, want a positive number (0 for the default %d)", name, *v, d)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	if o.Label == "" {
		o.Label = "KAZTOKEN"
	}
	if o.DefaultUserPIN == "" {
		o.DefaultUserPIN = "12345678"
	}
	if o.DefaultSOPIN == "" {
		o.DefaultSOPIN = "87654321"
	}
	for _, d := range []struct {
		v    *int
		d    int
		name string
	}{{&o.UserMaxTries, 10, "UserMaxTries"}, {&o.SOMaxTries, 10, "SOMaxTries"}, {&o.MinPINLen, 4, "MinPINLen"}, {&o.MaxPINLen, 32, "MaxPINLen"}} {
		if err := def(d.v, d.d, d.name); err != nil {
			return o, err
		}
	}
	if o.MaxPINLen < o.MinPINLen {
		return o, fmt.Errorf("software token options: MaxPINLen %d is below MinPINLen %d", o.MaxPINLen, o.MinPINLen)
	}
	if len(o.Label) > maxLabelLen {
		return o, fmt.Errorf("software token options: label is %d bytes, a token label holds at most %d", len(o.Label), maxLabelLen)
	}
	if o.Serial != "" {
		if err := checkSerial(o.Serial); err != nil {
			return o, fmt.Errorf("software token options: %w", err)
		}
	}
	for _, f := range []struct{ v, name string }{{o.Manufacturer, "manufacturer"}, {o.Model, "model"}} {
		if len(f.v) > maxLabelLen {
			return o, fmt.Errorf("software token options: %s is %d bytes, a token holds at most %d", f.name, len(f.v), maxLabelLen)
		}
	}
	// The PINs themselves are never put into a message.
	for _, p := range []struct{ pin, name string }{{o.DefaultUserPIN, "DefaultUserPIN"}, {o.DefaultSOPIN, "DefaultSOPIN"}} {
		if n := len(p.pin); n < o.MinPINLen || n > o.MaxPINLen {
			return o, fmt.Errorf("software token options: %s has %d characters, want %d to %d", p.name, n, o.MinPINLen, o.MaxPINLen)
		}
	}
	return o, nil
}

// Provider is a set of software token directories. It implements token.Provider.
type Provider struct {
	opts   Options
	root   string     // OpenRoot's directory: its token directories are found at each look; "" for Open's fixed set
	mu     sync.Mutex // guards slots, which grow as a root's tokens are plugged in
	slots  []*slot
	closed atomic.Bool
}

var _ token.Provider = (*Provider)(nil)

// slot is one directory and the login state the process has on it. Like a PKCS#11 module,
// the login is shared by every handle opened on the token from this provider.
type slot struct {
	index int
	store store

	mu   sync.Mutex // serialises operations on the token within the process; guards below
	sess session
	open int // open handles; the last one to close logs out, as closing the last session does
}

// Open opens one token per directory. An empty or missing directory gets a new blank token
// made from opts; a directory that holds other files and no token is refused.
func Open(opts Options, dirs ...string) (*Provider, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("software token: no directory given: %w", token.ErrInvalidInput)
	}
	p := &Provider{opts: opts}
	seen := map[string]bool{}
	for i, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("software token %s: %w", dir, err)
		}
		if seen[abs] {
			return nil, fmt.Errorf("software token %s given twice: %w", dir, token.ErrInvalidInput)
		}
		seen[abs] = true
		s := store{dir: abs}
		if err := ensure(context.Background(), s, opts); err != nil {
			return nil, err
		}
		p.slots = append(p.slots, &slot{index: i, store: s})
	}
	return p, nil
}

// Create makes a new blank token in dir, which must be empty or missing. It fails with
// token.ErrAlreadyExists when dir already holds a token.
func Create(dir string, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	s := store{dir: dir}
	ok, err := s.exists()
	if err != nil {
		return fmt.Errorf("software token %s: %w", dir, err)
	}
	if ok {
		return fmt.Errorf("software token %s: %w", dir, token.ErrAlreadyExists)
	}
	return ensure(context.Background(), s, opts)
}

// ensure makes sure dir holds a readable token, creating a blank one if dir is empty.
func ensure(ctx context.Context, s store, opts Options) error {
	ok, err := s.exists()
	if err != nil {
		return fmt.Errorf("software token %s: %w", s.dir, err)
	}
	if !ok {
		// Checked before the lock file is made, so a wrong path is left untouched.
		foreign, err := s.foreignEntries()
		if err != nil {
			return fmt.Errorf("software token %s: %w", s.dir, err)
		}
		if len(foreign) > 0 {
			return fmt.Errorf("software token %s: the directory holds other files (%s) and no %s; give an empty or new directory for a new token: %w",
				s.dir, strings.Join(foreign, ", "), stateName, token.ErrInvalidInput)
		}
		if err := mkdirAll(s.dir); err != nil {
			return fmt.Errorf("software token %s: %w", s.dir, err)
		}
	}
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("software token %s: %w", s.dir, err)
	}
	defer unlock()
	// Again under the lock: another process may have created it meanwhile, and its serial
	// must win.
	if ok, err = s.exists(); err != nil {
		return fmt.Errorf("software token %s: %w", s.dir, err)
	}
	if ok {
		_, err := s.read()
		return err
	}
	st, err := newState(opts)
	if err != nil {
		return fmt.Errorf("software token %s: %w", s.dir, err)
	}
	return s.write(st)
}

// newState is a blank token: both PINs at their defaults, no objects.
func newState(opts Options) (*state, error) {
	st := &state{
		Format:       stateFormat,
		Version:      stateVersion,
		Serial:       opts.Serial,
		Label:        opts.Label,
		Manufacturer: opts.Manufacturer,
		Model:        opts.Model,
		FlagsOnly:    opts.FlagsOnly,
		NoPINInfo:    opts.NoPINInfo,
		Epoch:        hex.EncodeToString(randomBytes(16)),
		MinPINLen:    opts.MinPINLen,
		MaxPINLen:    opts.MaxPINLen,
		UserPIN:      pinRecord{MaxTries: opts.UserMaxTries, TriesLeft: opts.UserMaxTries, ToBeChanged: opts.UserPINToBeChanged},
		SOPIN:        pinRecord{MaxTries: opts.SOMaxTries, TriesLeft: opts.SOMaxTries, ToBeChanged: opts.SOPINToBeChanged},
	}
	if st.Serial == "" {
		st.Serial = hex.EncodeToString(randomBytes(8))
	}
	master := randomBytes(masterKeyLen)
	defer wipe(master)
	var err error
	if st.UserPIN.Secret, err = newPINSecret(opts.DefaultUserPIN, master, masterAAD(st, token.User)); err != nil {
		return nil, err
	}
	if st.SOPIN.Secret, err = newPINSecret(opts.DefaultSOPIN, master, masterAAD(st, token.SO)); err != nil {
		return nil, err
	}
	return st, nil
}

// Description names the provider and its directories.
func (p *Provider) Description() string {
	if p.root != "" {
		return "software tokens under " + p.root
	}
	slots := p.current()
	dirs := make([]string, len(slots))
	for i, s := range slots {
		dirs[i] = s.store.dir
	}
	return "software token (" + strings.Join(dirs, ", ") + ")"
}

// Tokens lists the token in each directory, in the order given to Open.
func (p *Provider) Tokens(ctx context.Context) ([]token.Info, error) {
	const op = "list tokens"
	if p.closed.Load() {
		return nil, closedErr(op)
	}
	slots, err := p.scan()
	if err != nil {
		return nil, wrapErr(op, err)
	}
	infos := make([]token.Info, 0, len(slots))
	for _, s := range slots {
		st, err := s.readState(ctx)
		if errors.Is(err, token.ErrTokenNotPresent) {
			continue // unplugged
		}
		if err != nil {
			return nil, wrapErr(op, err)
		}
		infos = append(infos, s.info(st))
	}
	return infos, nil
}

// Open opens the token whose serial is info.Serial.
func (p *Provider) Open(ctx context.Context, info token.Info) (token.Token, error) {
	const op = "open token"
	if p.closed.Load() {
		return nil, closedErr(op)
	}
	if info.Serial == "" {
		return nil, wrapErr(op, fmt.Errorf("no serial given: %w", token.ErrInvalidInput))
	}
	slots, err := p.scan()
	if err != nil {
		return nil, wrapErr(op, err)
	}
	var found []*slot
	for _, s := range slots {
		st, err := s.readState(ctx)
		if errors.Is(err, token.ErrTokenNotPresent) {
			continue
		}
		if err != nil {
			return nil, wrapErr(op, err)
		}
		if st.Serial == info.Serial {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, &token.Error{Op: op, Code: token.CKR_TOKEN_NOT_PRESENT, RetriesLeft: -1,
			Err: fmt.Errorf("no software token with serial %s in %s: %w", info.Serial, p.Description(), token.ErrTokenNotPresent)}
	case 1:
	default:
		// A copied directory: which one a script would change must not be left to chance.
		return nil, wrapErr(op, fmt.Errorf("serial %s is in both %s and %s (a copied token directory?): %w",
			info.Serial, found[0].store.dir, found[1].store.dir, token.ErrSeveralTokens))
	}
	s := found[0]
	s.mu.Lock()
	s.open++
	s.mu.Unlock()
	return &tok{p: p, s: s}, nil
}

// Close logs out of every token; tokens opened from p return token.ErrClosed afterwards.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	for _, s := range p.current() {
		s.mu.Lock()
		s.sess.logout()
		s.mu.Unlock()
	}
	return nil
}

// SetTries sets how many tries the PIN of role has left on the token in dir: 0 locks it, 1
// is the final try, the maximum clears the count. It is for tests and for replaying a
// client's token in support, and needs no PIN: whoever can write the directory can edit the
// state file anyway, so this grants nothing new. Providers open on dir see the change at
// their next operation.
func SetTries(dir string, role token.Role, left int) error {
	if role != token.User && role != token.SO {
		return fmt.Errorf("set tries: role %d: %w", role, token.ErrInvalidInput)
	}
	s := store{dir: dir}
	if ok, err := s.exists(); err != nil || !ok {
		if err == nil {
			err = s.gone()
		}
		return fmt.Errorf("set tries: %w", err)
	}
	unlock, err := s.lock(context.Background(), true)
	if err != nil {
		return fmt.Errorf("set tries: software token %s: %w", dir, err)
	}
	defer unlock()
	st, err := s.read()
	if err != nil {
		return fmt.Errorf("set tries: %w", err)
	}
	rec := st.pin(role)
	if left < 0 || left > rec.MaxTries {
		return fmt.Errorf("set tries: %d tries left for the %s PIN: want 0 to %d: %w", left, role, rec.MaxTries, token.ErrInvalidInput)
	}
	rec.TriesLeft = left
	return s.write(st)
}

// readState reads the state under a shared lock.
func (s *slot) readState(ctx context.Context) (*state, error) {
	unlock, err := s.store.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.store.read()
}

func (s *slot) info(st *state) token.Info {
	manufacturer, model := Manufacturer, Model
	if st.Manufacturer != "" {
		manufacturer = st.Manufacturer
	}
	if st.Model != "" {
		model = st.Model
	}
	return token.Info{
		Slot:               uint(s.index),
		Label:              st.Label,
		Serial:             st.Serial,
		Manufacturer:       manufacturer,
		Model:              model,
		Initialized:        true,
		LoginRequired:      true,
		UserPINInitialized: st.UserPIN.Secret != nil,
		MinPINLen:          st.MinPINLen,
		MaxPINLen:          st.MaxPINLen,
		UserPIN:            st.UserPIN.status(st.reporting()),
		SOPIN:              st.SOPIN.status(st.reporting()),
	}
}

// reporting is how much a token says of its PIN tries.
type reporting int

const (
	reportCount   reporting = iota // flags and the exact count (this token's own way)
	reportFlags                    // flags only (Options.FlagsOnly)
	reportNothing                  // neither (Options.NoPINInfo)
)

func (st *state) reporting() reporting {
	switch {
	case st.NoPINInfo:
		return reportNothing
	case st.FlagsOnly:
		return reportFlags
	}
	return reportCount
}

// retriesLeft is what an error says of the tries left: the count, or -1 when the token
// does not report it.
func (r reporting) retriesLeft(left int) int {
	if r != reportCount {
		return -1
	}
	return left
}

// status gives the PKCS#11 flags for a retry counter: count-low once a try has been lost,
// final-try with one left (count-low stays set), locked at none (then neither is set). A
// token that reports nothing gives no flag and no count, whatever the counter says.
func (r *pinRecord) status(rep reporting) token.PINStatus {
	if rep == reportNothing {
		return token.PINStatus{ToBeChanged: r.ToBeChanged, RetriesLeft: -1}
	}
	return token.PINStatus{
		CountLow:    r.TriesLeft > 0 && r.TriesLeft < r.MaxTries,
		FinalTry:    r.TriesLeft == 1,
		Locked:      r.TriesLeft == 0,
		ToBeChanged: r.ToBeChanged,
		RetriesLeft: rep.retriesLeft(r.TriesLeft),
	}
}
