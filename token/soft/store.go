package soft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/internal/flock"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/token"
)

// The files a token directory holds. The lock file is never removed: removing a lock file
// while another process waits on it would let two writers in.
const (
	stateName  = "token.json"
	lockName   = "token.lock"
	tempPrefix = ".token.json.tmp-"

	stateFormat  = "tokenrun-soft-token"
	stateVersion = 1
)

// state is the whole token as stored in its state file. It holds no PIN and no plaintext
// key: PINs are PBKDF2 verifiers, private keys are sealed under the master key, and the master
// key is sealed under keys derived from the PINs.
type state struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Serial  string `json:"serial"`
	Label   string `json:"label"`
	// Manufacturer and Model are set only on a token made to look like a client's
	// (Options); empty means this package's own.
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	FlagsOnly    bool   `json:"flags_only,omitempty"`  // Options.FlagsOnly
	NoPINInfo    bool   `json:"no_pin_info,omitempty"` // Options.NoPINInfo
	// Epoch changes at every format. A login made before it (in this or another process)
	// belongs to a token that no longer exists and is dropped.
	Epoch     string       `json:"epoch"`
	MinPINLen int          `json:"min_pin_len"`
	MaxPINLen int          `json:"max_pin_len"`
	UserPIN   pinRecord    `json:"user_pin"`
	SOPIN     pinRecord    `json:"so_pin"`
	Keys      []keyRecord  `json:"keys"`
	Certs     []certRecord `json:"certificates"`
}

// pinRecord is one role's PIN. Secret is nil for a user PIN that is not initialised (after a
// format, until the SO sets it).
type pinRecord struct {
	MaxTries  int        `json:"max_tries"`
	TriesLeft int        `json:"tries_left"`
	Secret    *pinSecret `json:"secret,omitempty"`
	// ToBeChanged is CKF_*_PIN_TO_BE_CHANGED: set only on a token made to look like a
	// client's whose module said so (a factory PIN), cleared when the PIN is changed.
	ToBeChanged bool `json:"to_be_changed,omitempty"`
}

type pinSecret struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	Verifier   []byte `json:"verifier"`
	// MasterKey is the token master key sealed under this PIN's wrapping key.
	MasterKey sealed `json:"master_key"`
}

// sealed is AES-256-GCM output.
type sealed struct {
	Nonce []byte `json:"nonce"`
	Data  []byte `json:"data"`
}

// keyRecord is a key pair: one record, as the token shows a pair under one CKA_ID.
type keyRecord struct {
	ID      []byte        `json:"id"`
	Label   string        `json:"label"`
	Type    token.KeyType `json:"type"`
	Bits    int           `json:"bits"`
	Curve   string        `json:"curve,omitempty"`
	Public  []byte        `json:"public"`  // PKIX DER
	Private sealed        `json:"private"` // PKCS#8 DER sealed under the master key
}

type certRecord struct {
	ID    []byte `json:"id"`
	Label string `json:"label"`
	DER   []byte `json:"der"`
}

func (st *state) pin(role token.Role) *pinRecord {
	if role == token.SO {
		return &st.SOPIN
	}
	return &st.UserPIN
}

// store is one token directory on disk.
type store struct {
	dir string
}

func (s store) statePath() string { return filepath.Join(s.dir, stateName) }
func (s store) lockPath() string  { return filepath.Join(s.dir, lockName) }

// lock takes the directory's lock file: shared to read, exclusive to read-modify-write. Every
// read goes under it too, so that a reader never holds the state file open while a writer
// renames over it (Windows refuses that).
func (s store) lock(ctx context.Context, exclusive bool) (unlock func(), err error) {
	// A link in the token's directory was put there by someone else: opening it would
	// create or lock its target.
	if fi, err := os.Lstat(s.lockPath()); err == nil && !fi.Mode().IsRegular() {
		return nil, s.foreign(s.lockPath(), fi.Mode())
	}
	f, err := os.OpenFile(s.lockPath(), os.O_RDWR|os.O_CREATE|noFollow, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, s.gone()
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	wait := time.Millisecond
	for {
		ok, err := flock.TryLock(f, exclusive)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", s.lockPath(), err)
		}
		if ok {
			// Closing the descriptor releases the lock.
			return func() { f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for %s (another process is using the token): %w", s.lockPath(), ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// exists reports whether the directory holds a state file. A link, dangling or not, counts:
// a new blank token must never be written over what is there.
func (s store) exists() (bool, error) {
	_, err := os.Lstat(s.statePath())
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// read loads and checks the state file. The caller holds the lock. A file that does not
// parse, or parses to something this code does not understand, is reported and left alone:
// it may be the only copy of a client's keys.
func (s store) read() (*state, error) {
	path := s.statePath()
	// Not a regular file (a FIFO would hang the read, a device would never end), a link, or
	// larger than any token: refused unread, as damage, leaving it as it is.
	data, err := readfile.Read(path, readfile.SoftState)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, s.gone()
		}
		if _, ok := errors.AsType[*readfile.Error](err); ok {
			return nil, damage{msg: fmt.Sprintf("the software token in %s is damaged: %v (it was left as it is)", s.dir, err), cause: err}
		}
		return nil, fmt.Errorf("read software token state: %w", err)
	}
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, s.corrupt(err)
	}
	if head.Format != stateFormat {
		return nil, s.corrupt(fmt.Errorf("format is %q, want %q", head.Format, stateFormat))
	}
	if head.Version != stateVersion {
		return nil, fmt.Errorf("software token state %s has version %d, this tokenrun understands version %d only; use a tokenrun that knows it (the file was left as it is)",
			path, head.Version, stateVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	st := &state{}
	if err := dec.Decode(st); err != nil {
		return nil, s.corrupt(err)
	}
	if err := st.check(); err != nil {
		return nil, s.corrupt(err)
	}
	return st, nil
}

// foreign is a file in the token's directory that tokenrun did not put there as it is.
func (s store) foreign(path string, m fs.FileMode) error {
	return damage{msg: fmt.Sprintf("the software token in %s is damaged: %s is not a regular file (%s); tokenrun does not follow links or open devices in a token's directory: remove it, or restore the directory from a backup", s.dir, path, m.Type()), cause: fs.ErrInvalid}
}

// gone is a token whose directory or state file was removed: to a script, an unplugged
// token. Putting the directory back plugs it in again.
func (s store) gone() error {
	return &token.Error{Op: "read state", Code: token.CKR_TOKEN_NOT_PRESENT, RetriesLeft: -1,
		Err: fmt.Errorf("software token %s is gone (no %s): %w", s.dir, stateName, token.ErrTokenNotPresent)}
}

// corrupt is a state file that does not read as a token: damage (token.ErrTokenDamaged).
func (s store) corrupt(err error) error {
	return damage{msg: fmt.Sprintf("software token state %s is corrupt (it was left as it is): %v", s.statePath(), err), cause: err}
}

// damaged is a token whose state reads but whose role PIN cannot work as stored: a right
// PIN whose master key does not open, or a secret no PIN could open. It costs no try, and
// says what may still get the keys back.
func (s store) damaged(op string, role token.Role, err error) error {
	name, ways := "SO", []string{}
	if role == token.User {
		name = "user"
		ways = append(ways, "unblock (the administrator sets a new user password; the keys stay if the administrator's copy is whole)")
	}
	if _, ok := errors.AsType[masterDamage](err); ok || role == token.User {
		ways = append(ways, "format the token (its keys are lost)")
	}
	ways = append(ways, "restore the directory from a backup")
	return &token.Error{Op: op, Code: token.CKR_DEVICE_ERROR, RetriesLeft: -1, Err: damage{
		msg: fmt.Sprintf("the software token in %s is damaged: the %s PIN %v; no try was counted; to go on: %s",
			s.dir, name, err, strings.Join(ways, ", or ")),
		cause: err,
	}}
}

// damage is token.ErrTokenDamaged with a message of its own.
type damage struct {
	msg   string
	cause error
}

func (d damage) Error() string   { return d.msg }
func (d damage) Unwrap() []error { return []error{token.ErrTokenDamaged, d.cause} }

// check rejects states that code further on would have to trust blindly.
func (st *state) check() error {
	if err := checkSerial(st.Serial); err != nil {
		return err
	}
	if st.Epoch == "" {
		return errors.New("no epoch")
	}
	if st.MinPINLen < 1 || st.MaxPINLen < st.MinPINLen {
		return fmt.Errorf("PIN length range %d..%d", st.MinPINLen, st.MaxPINLen)
	}
	for _, r := range []struct {
		name string
		rec  *pinRecord
	}{{"user", &st.UserPIN}, {"so", &st.SOPIN}} {
		if r.rec.MaxTries < 1 || r.rec.TriesLeft < 0 || r.rec.TriesLeft > r.rec.MaxTries {
			return fmt.Errorf("%s PIN: %d tries left of %d", r.name, r.rec.TriesLeft, r.rec.MaxTries)
		}
		if sec := r.rec.Secret; sec != nil && (len(sec.Salt) == 0 || sec.Iterations < 1 || len(sec.Verifier) == 0) {
			return fmt.Errorf("%s PIN: incomplete secret", r.name)
		}
	}
	if st.SOPIN.Secret == nil {
		return errors.New("no SO PIN")
	}
	for i, k := range st.Keys {
		if len(k.Public) == 0 || len(k.Private.Data) == 0 {
			return fmt.Errorf("key %d: incomplete", i)
		}
	}
	for i, c := range st.Certs {
		if len(c.DER) == 0 {
			return fmt.Errorf("certificate %d: empty", i)
		}
	}
	return nil
}

// checkSerial accepts what CK_TOKEN_INFO.serialNumber can hold: 1 to 16 printable ASCII
// characters. New tokens get 16 hex digits; a reproduction of a client's token gets its
// serial.
func checkSerial(s string) error {
	if len(s) == 0 || len(s) > 16 {
		return fmt.Errorf("serial %q: want 1 to 16 printable ASCII characters", s)
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("serial %q: want 1 to 16 printable ASCII characters (no spaces)", s)
		}
	}
	return nil
}

// write replaces the state file atomically: a temporary file in the same directory, synced,
// renamed over the old one, then the directory synced so that the rename itself survives a
// crash. A crash leaves either the old state or the new one, never a mix. The caller holds
// the exclusive lock.
func (s store) write(st *state) (err error) {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode software token state: %w", err)
	}
	data = append(data, '\n')
	s.removeStaleTemps()
	f, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write software token state: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write software token state: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write software token state: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write software token state: %w", err)
	}
	if beforeStateRename != nil {
		beforeStateRename(s.dir)
	}
	if err = os.Rename(tmp, s.statePath()); err != nil {
		return fmt.Errorf("write software token state: %w", err)
	}
	if err = syncDir(s.dir); err != nil {
		return fmt.Errorf("write software token state: sync %s: %w", s.dir, err)
	}
	if afterStateWrite != nil {
		afterStateWrite(s.dir)
	}
	return nil
}

// Test hooks, set only by this package's tests (never from the environment): beforeStateRename
// runs when a new state sits synced in its temporary file, afterStateWrite once it has
// replaced the state file. The kill tests end the process in them.
var beforeStateRename, afterStateWrite func(dir string)

// removeStaleTemps removes what a writer that crashed before its rename left behind. Only
// writers create temporary files and the caller holds the exclusive lock, so none is in use.
func (s store) removeStaleTemps() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

// foreignEntries lists what in the directory is not the token's. A directory with anything
// else in it is not made into a token: a mistyped path must not scatter token files into,
// say, a home directory.
func (s store) foreignEntries() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); n != lockName && n != stateName && !strings.HasPrefix(n, tempPrefix) {
			names = append(names, n)
		}
	}
	return names, nil
}
