package floor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// fake is a pure-Go stand-in for the decision logic's tests; the CLI's tests drive the floor
// over SoftHSM2, openCryptoki and the software token.
type fake struct {
	token.Token // unused methods panic
	mu          sync.Mutex
	reports     string // "count", "flags", "nothing", "count-low-only" (SoftHSM2: never locks)
	max         int
	pin         string
	fails       int
	logins      int
	during      func() // runs inside Login, to look at the ledger mid-call
	loginErr    error  // returned instead of checking the PIN
}

func (f *fake) status() token.PINStatus {
	s := token.PINStatus{RetriesLeft: -1}
	left := f.max - f.fails
	switch f.reports {
	case "count":
		s.RetriesLeft = max(left, 0)
		s.CountLow, s.FinalTry, s.Locked = f.fails > 0 && left > 1, left == 1, left <= 0
	case "flags":
		s.CountLow, s.FinalTry, s.Locked = f.fails > 0 && left > 1, left == 1, left <= 0
	case "count-low-only":
		s.CountLow = f.fails > 0
	}
	return s
}

func (f *fake) Info(context.Context) (token.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return token.Info{Label: "KAZTOKEN", Serial: "0123", Manufacturer: "test", Model: f.reports,
		Initialized: true, UserPINInitialized: true, UserPIN: f.status(), SOPIN: token.PINStatus{RetriesLeft: -1}}, nil
}

func (f *fake) Login(_ context.Context, _ token.Role, pin string) error {
	if f.during != nil {
		f.during()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	if f.loginErr != nil {
		return f.loginErr
	}
	if f.reports != "count-low-only" && f.fails >= f.max {
		return &token.Error{Op: "login", Code: token.CKR_PIN_LOCKED, Err: token.ErrPINLocked, RetriesLeft: -1}
	}
	if pin != f.pin {
		f.fails++
		return &token.Error{Op: "login", Code: token.CKR_PIN_INCORRECT, Err: token.ErrPINIncorrect, RetriesLeft: f.status().RetriesLeft}
	}
	f.fails = 0
	return nil
}

func (f *fake) locked() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reports != "count-low-only" && f.fails >= f.max
}

func (f *fake) Close() error { return nil }

type fakeProvider struct{ tok *fake }

func (p fakeProvider) Description() string { return "fake module" }
func (p fakeProvider) Tokens(ctx context.Context) ([]token.Info, error) {
	i, _ := p.tok.Info(ctx)
	return []token.Info{i}, nil
}
func (p fakeProvider) Open(context.Context, token.Info) (token.Token, error) { return p.tok, nil }
func (p fakeProvider) Close() error                                          { return nil }

// run is one tokenrun run: its own floor over the shared directory, one open, one login.
func run(t *testing.T, dir string, f *fake, pin string, person bool) error {
	t.Helper()
	ctx := context.Background()
	p := Wrap(fakeProvider{f}, Options{Dir: dir, Command: "test", Person: func(string) bool { return person }})
	info, _ := f.Info(ctx)
	tok, err := p.Open(ctx, info)
	require.NoError(t, err)
	defer tok.Close()
	return tok.Login(ctx, token.User, pin)
}

// TestWrongPINsFromFilesNeverLock: 20 runs in a row with a wrong PIN from a file never lock
// a token, whatever it reports of its tries, and the right PIN typed by a person works
// afterwards.
func TestWrongPINsFromFilesNeverLock(t *testing.T) {
	for _, tt := range []struct {
		reports string
		max     int
		spent   int // tries the floor lets files spend before it keeps the rest for a person
	}{
		{"count", 3, 2},
		{"count", 10, 9},
		{"flags", 3, 2},
		{"nothing", 3, 1},
		{"nothing", 2, 1},
		{"count-low-only", 3, 2},
	} {
		t.Run(tt.reports+"-"+string(rune('0'+tt.max)), func(t *testing.T) {
			dir := t.TempDir()
			f := &fake{reports: tt.reports, max: tt.max, pin: "right-pin"}
			var refused int
			for i := 0; i < 20; i++ {
				err := run(t, dir, f, "wrong-pin", false)
				require.Error(t, err)
				if errors.Is(err, token.ErrTryRefused) {
					refused++
					assert.Contains(t, err.Error(), "not typed by a person")
				} else {
					require.ErrorIs(t, err, token.ErrPINIncorrect)
				}
				require.False(t, f.locked(), "run %d locked the token", i+1)
			}
			assert.Equal(t, tt.spent, f.logins, "tries that reached the token")
			assert.Equal(t, 20-tt.spent, refused)
			// The right PIN from a file is kept for a person too; typed by one, it works and
			// clears the ledger.
			require.ErrorIs(t, run(t, dir, f, "right-pin", false), token.ErrTryRefused)
			require.NoError(t, run(t, dir, f, "right-pin", true))
			require.ErrorIs(t, run(t, dir, f, "wrong-pin", false), token.ErrPINIncorrect, "after a success files may try again")
		})
	}
}

// TestLockedPINIsNeverTried: a locked PIN reaches no module, typed by a person or not.
func TestLockedPINIsNeverTried(t *testing.T) {
	f := &fake{reports: "flags", max: 3, pin: "right-pin", fails: 3}
	require.ErrorIs(t, run(t, t.TempDir(), f, "right-pin", true), token.ErrPINLocked)
	assert.Zero(t, f.logins)
}

// TestTryRecordedBeforeItIsSpent: during the login the ledger already counts the try, so a
// run killed inside it does not lose it; a failure that is no wrong PIN gives it back.
func TestTryRecordedBeforeItIsSpent(t *testing.T) {
	dir := t.TempDir()
	f := &fake{reports: "nothing", max: 3, pin: "right-pin"}
	l := &ledger{path: filepath.Join(dir, "tries", Identify(fakeProvider{f}, mustInfo(t, f)).Key+".json")}
	var seen int
	f.during = func() {
		n, err := l.read()
		require.NoError(t, err)
		seen = n.failures(token.User)
	}
	require.ErrorIs(t, run(t, dir, f, "wrong-pin", false), token.ErrPINIncorrect)
	assert.Equal(t, 1, seen, "the ledger during the call")

	f.loginErr = &token.Error{Op: "login", Code: token.CKR_DEVICE_REMOVED, Err: token.ErrTokenNotPresent}
	require.ErrorIs(t, run(t, dir, f, "x", true), token.ErrTokenNotPresent)
	assert.Equal(t, 2, seen)
	n, err := l.read()
	require.NoError(t, err)
	assert.Equal(t, 1, n.failures(token.User), "a pulled token spent no try")
}

// TestInfoShowsTheFloorsView: scripts read the floor's judgement in the flags, so they warn
// and ask a person when the floor would.
func TestInfoShowsTheFloorsView(t *testing.T) {
	dir := t.TempDir()
	f := &fake{reports: "nothing", max: 3, pin: "right-pin"}
	require.Error(t, run(t, dir, f, "wrong", true))
	require.Error(t, run(t, dir, f, "wrong", true))
	p := Wrap(fakeProvider{f}, Options{Dir: dir})
	tok, err := p.Open(context.Background(), mustInfo(t, f))
	require.NoError(t, err)
	defer tok.Close()
	info, err := tok.Info(context.Background())
	require.NoError(t, err)
	assert.True(t, info.UserPIN.CountLow)
	assert.True(t, info.UserPIN.FinalTry)
	assert.False(t, info.UserPIN.Locked)
}

func TestJudge(t *testing.T) {
	for _, tt := range []struct {
		name        string
		raw         token.PINStatus
		failures    int
		finalTry    bool
		needsPerson bool
	}{
		{"exact, plenty", token.PINStatus{RetriesLeft: 5}, 3, false, false},
		{"exact, last", token.PINStatus{RetriesLeft: 1}, 0, true, true},
		{"exact count wins over the ledger", token.PINStatus{RetriesLeft: 9}, 4, false, false},
		{"flags, none", token.PINStatus{RetriesLeft: -1}, 0, false, false},
		{"flags, count low", token.PINStatus{RetriesLeft: -1, CountLow: true}, 1, false, false},
		{"flags say final", token.PINStatus{RetriesLeft: -1, FinalTry: true}, 0, true, true},
		{"ledger says final", token.PINStatus{RetriesLeft: -1, CountLow: true}, 2, true, true},
		{"silent after one failure", token.PINStatus{RetriesLeft: -1}, 1, false, true},
		{"silent after two", token.PINStatus{RetriesLeft: -1}, 2, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(tt.raw, tt.failures)
			assert.Equal(t, tt.finalTry, v.status.FinalTry, "final try")
			assert.Equal(t, tt.needsPerson, v.needsPerson, "needs a person")
		})
	}
}

// TestLockExcludesOtherRuns: a second run on the token waits, told what holds it, then
// fails with ErrTokenBusy; once the first closes, it gets the token. One run may open the
// token twice.
func TestLockExcludesOtherRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := &fake{reports: "flags", max: 3, pin: "p"}
	info := mustInfo(t, f)
	a := Wrap(fakeProvider{f}, Options{Dir: dir, Command: "tokenrun enroll"})
	ta, err := a.Open(ctx, info)
	require.NoError(t, err)
	again, err := a.Open(ctx, info)
	require.NoError(t, err, "the same run opens it again")
	require.NoError(t, again.Close())

	var told []Holder
	b := Wrap(fakeProvider{f}, Options{Dir: dir, LockWait: 300 * time.Millisecond, Poll: 20 * time.Millisecond,
		Waiting: func(_ token.Info, h Holder) { told = append(told, h) }})
	_, err = b.Open(ctx, info)
	require.ErrorIs(t, err, token.ErrTokenBusy)
	assert.Contains(t, err.Error(), "tokenrun enroll (pid ")
	require.Len(t, told, 1)
	assert.Equal(t, os.Getpid(), told[0].PID)
	assert.Equal(t, "tokenrun enroll", told[0].Command)

	// Cancelled while waiting: the context's cause, at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.Open(cctx, info)
	require.ErrorIs(t, err, context.Canceled)

	require.NoError(t, ta.Close())
	tb, err := b.Open(ctx, info)
	require.NoError(t, err, "free once the first run closed it")
	require.NoError(t, tb.Close())
	entries, err := os.ReadDir(filepath.Join(dir, "locks"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasSuffix(e.Name(), ".holder"), "holder file left: %s", e.Name())
	}
}

func TestIdentify(t *testing.T) {
	p := fakeProvider{&fake{}}
	base := token.Info{Label: "A", Serial: "12ab", Manufacturer: "m", Model: "x"}
	relabelled := base
	relabelled.Label = "B"
	assert.Equal(t, Identify(p, base).Key, Identify(p, relabelled).Key, "a unique serial is enough")

	zeros := token.Info{Label: "A", Serial: "0000000000000000", Manufacturer: "m", Model: "x"}
	other := zeros
	other.Label = "B"
	assert.NotEqual(t, Identify(p, zeros).Key, Identify(p, other).Key, "repeated serials: the label tells them apart")
	blank := zeros
	blank.Serial = "   "
	assert.NotEqual(t, Identify(p, zeros).Key, Identify(p, blank).Key)
	moved := base
	moved.Slot = 7
	assert.Equal(t, Identify(p, base).Key, Identify(p, moved).Key, "slots move; the identity does not")
}

func mustInfo(t *testing.T, f *fake) token.Info {
	t.Helper()
	i, err := f.Info(context.Background())
	require.NoError(t, err)
	return i
}

// TestReadState: support's diagnosis shows the tries tokenrun counted and the runs holding a
// token, and nothing once a success cleared the count and the run ended.
func TestReadState(t *testing.T) {
	dir := t.TempDir()
	f := &fake{reports: "nothing", max: 3, pin: "right-pin"}
	require.Error(t, run(t, dir, f, "wrong", false))
	st := ReadState(dir)
	require.Len(t, st.Tries, 1)
	assert.Equal(t, 1, st.Tries[0].Failures["user"])
	assert.Contains(t, st.Tries[0].Token, "KAZTOKEN")
	assert.Empty(t, st.Held)

	p := Wrap(fakeProvider{f}, Options{Dir: dir, Command: "tokenrun sign", Person: func(string) bool { return true }})
	tok, err := p.Open(context.Background(), mustInfo(t, f))
	require.NoError(t, err)
	st = ReadState(dir)
	require.Len(t, st.Held, 1)
	assert.Equal(t, "tokenrun sign", st.Held[0].Command)
	require.NoError(t, tok.Login(context.Background(), token.User, "right-pin"), "typed by a person")
	require.NoError(t, tok.Close())
	st = ReadState(dir)
	assert.Empty(t, st.Tries, "a success clears the count")
	assert.Empty(t, st.Held)
}
