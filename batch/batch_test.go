package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/internal/textenc"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

// plugIn makes n software tokens appear under root one after another, each once the one
// before has been worked on (enrolled[serial] set), as an operator plugs them in.
func plugIn(t *testing.T, root string, n int, next <-chan struct{}) {
	t.Helper()
	go func() {
		for i := 0; i < n; i++ {
			tmp := filepath.Join(t.TempDir(), "t")
			if err := soft.Create(tmp, soft.Options{Serial: fmt.Sprintf("%016d", i+1)}); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(root, fmt.Sprintf("tok%02d", i))); err != nil {
				t.Error(err)
				return
			}
			if i < n-1 {
				<-next
			}
		}
	}()
}

func writeList(t *testing.T, text string) *List {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.csv")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	l, err := ReadList(p, nil)
	require.NoError(t, err)
	return l
}

// fakeEnroll "enrolls" by storing nothing but a record; holds says a token was enrolled.
type fakeEnroll struct {
	mu       sync.Mutex
	enrolled map[string]string // serial -> row
	fail     map[string]string // user_id -> code
	next     chan struct{}
	calls    int
}

func (f *fakeEnroll) run(ctx context.Context, j Job) Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	defer func() {
		select {
		case f.next <- struct{}{}:
		default:
		}
	}()
	if code, ok := f.fail[j.Answers["user_id"]]; ok {
		if code == "CA_UNAVAILABLE" {
			delete(f.fail, j.Answers["user_id"])
		}
		return Result{Outcome: Failed, Code: code, Message: "no"}
	}
	if row, ok := f.enrolled[j.Token.Serial]; ok {
		if row != j.Row.ID {
			panic("a token enrolled twice")
		}
		return Result{Outcome: AlreadyEnrolled}
	}
	f.enrolled[j.Token.Serial] = j.Row.ID
	return Result{Outcome: Enrolled, KeyID: "k" + j.Row.ID}
}

func (f *fakeEnroll) holds(ctx context.Context, info token.Info) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.enrolled[info.Serial]
	return ok, nil
}

func users(n int) string {
	var b strings.Builder
	b.WriteString("\ufeffid;user_id;otp_pin\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "r%d;qq%06d_abcdefgh;AB1CD0EFG2H\n", i, i)
	}
	return b.String()
}

func readReport(t *testing.T, path string) []Result {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []Result
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r Result
		require.NoError(t, json.Unmarshal(line, &r))
		out = append(out, r)
	}
	return out
}

func TestTokensOneAfterAnother(t *testing.T) {
	root := t.TempDir()
	p, err := soft.OpenRoot(soft.Options{}, root)
	require.NoError(t, err)
	f := &fakeEnroll{enrolled: map[string]string{}, next: make(chan struct{}, 1)}
	plugIn(t, root, 5, f.next)
	l := writeList(t, users(5))
	rep := filepath.Join(t.TempDir(), "report.jsonl")
	var out bytes.Buffer
	opts := Options{Procedure: "enroll", List: l, Provider: p, Run: f.run, Reports: []string{rep}, Holds: f.holds,
		Out: &out, Poll: 10 * time.Millisecond, Idle: 5 * time.Second}
	sum, err := Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	assert.Equal(t, 5, sum.Counts[Enrolled], out.String())
	assert.Len(t, f.enrolled, 5)
	assert.Contains(t, out.String(), "row 5 of 5")
	assert.Contains(t, out.String(), "remove the token")
	for _, r := range readReport(t, rep) {
		assert.Equal(t, Enrolled, r.Outcome)
	}
	// A rerun repeats nothing.
	calls := f.calls
	sum, err = Run(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, 5, sum.Counts[AlreadyEnrolled])
	assert.Equal(t, calls, f.calls)
}

func TestFailuresStayLocalAndCAOutagePauses(t *testing.T) {
	root := t.TempDir()
	p, err := soft.OpenRoot(soft.Options{}, root)
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		require.NoError(t, soft.Create(filepath.Join(root, fmt.Sprintf("t%d", i)), soft.Options{}))
	}
	f := &fakeEnroll{enrolled: map[string]string{}, fail: map[string]string{
		"qq000001_abcdefgh": "CA_WRONG_PASSWORD", "qq000002_abcdefgh": "CA_REFUSED", "qq000003_abcdefgh": "CA_UNAVAILABLE"}}
	l := writeList(t, users(4))
	rep := filepath.Join(t.TempDir(), "report.jsonl")
	var out bytes.Buffer
	opts := Options{Procedure: "enroll", List: l, Provider: p, Run: f.run, Reports: []string{rep}, Holds: f.holds,
		Out: &out, Poll: 10 * time.Millisecond, CAPause: 200 * time.Millisecond, Parallel: 2, Idle: 5 * time.Second}
	sum, err := Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	assert.Equal(t, 2, sum.Counts[Failed], out.String())
	assert.Equal(t, 2, sum.Counts[Enrolled], out.String())
	assert.Contains(t, out.String(), "the batch pauses")
	codes := map[string]string{}
	for _, r := range readReport(t, rep) {
		codes[r.Row] = r.Code
	}
	assert.Equal(t, map[string]string{"r1": "CA_WRONG_PASSWORD", "r2": "CA_REFUSED", "r3": "", "r4": ""}, codes)

	// --retry-failed reruns only those two, on their own tokens.
	f.fail = map[string]string{}
	opts.RetryFailed = true
	sum, err = Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	assert.Equal(t, 2, sum.Counts[Enrolled], out.String())
	assert.Equal(t, 2, sum.Counts[AlreadyEnrolled])
}

func TestListFormats(t *testing.T) {
	dir := t.TempDir()
	y := filepath.Join(dir, "users.yaml")
	require.NoError(t, os.WriteFile(y, []byte("- {user_id: qq1, otp_pin: 'file:"+filepath.Join(dir, "pin")+"', token: '0123'}\n- {id: b, user_id: qq2, otp_pin: {env: OTP2}}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pin"), []byte("AB1CD0EFG2H\n"), 0o600))
	var warn bytes.Buffer
	l, err := ReadList(y, &warn)
	require.NoError(t, err)
	assert.Empty(t, warn.String(), "references are no secrets in the list")
	require.Len(t, l.Rows, 2)
	assert.Equal(t, "1", l.Rows[0].ID)
	assert.Equal(t, "0123", l.Rows[0].Token)
	a, err := l.Rows[0].Answers(map[string]string{"validity": "1y", "user_id": "x"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"validity": "1y", "user_id": "qq1", "otp_pin": "AB1CD0EFG2H"}, a)
	_, err = l.Rows[1].Answers(nil)
	assert.ErrorContains(t, err, "OTP2")
	t.Setenv("OTP2", "X")
	a, err = l.Rows[1].Answers(nil)
	require.NoError(t, err)
	assert.Equal(t, "X", a["otp_pin"])

	c := filepath.Join(dir, "users.csv")
	require.NoError(t, os.WriteFile(c, []byte("user_id,otp_pin\nqq1,AB1CD0EFG2H\n"), 0o644))
	l, err = ReadList(c, &warn)
	require.NoError(t, err)
	assert.Equal(t, "AB1CD0EFG2H", l.Rows[0].Values["otp_pin"])
	assert.Contains(t, warn.String(), "others may read it")

	require.NoError(t, os.WriteFile(c, []byte("id;user_id\na;x\na;y\n"), 0o600))
	_, err = ReadList(c, nil)
	assert.ErrorContains(t, err, "same id")
}

// TestListWindowsEncodings: a list saved by Excel ("CSV UTF-8": a BOM, CRLF) or Notepad
// ("Unicode": UTF-16LE with a BOM), and a PIN file saved by PowerShell, read as the same rows.
func TestListWindowsEncodings(t *testing.T) {
	dir := t.TempDir()
	pin := filepath.Join(dir, "pin.txt")
	require.NoError(t, os.WriteFile(pin, textenc.UTF16("AB1CD0EFG2H\r\n", false), 0o600))
	csv := "user_id;otp_pin;token_label\r\nqq1;file:" + pin + ";ТОО Ақ\r\n"
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"Excel CSV UTF-8", append([]byte("\xef\xbb\xbf"), csv...)},
		{"Notepad Unicode", textenc.UTF16(csv, false)},
		{"UTF-16BE", textenc.UTF16(csv, true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "users.csv")
			require.NoError(t, os.WriteFile(p, tt.data, 0o600))
			l, err := ReadList(p, nil)
			require.NoError(t, err)
			require.Len(t, l.Rows, 1)
			a, err := l.Rows[0].Answers(nil)
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"user_id": "qq1", "otp_pin": "AB1CD0EFG2H", "token_label": "ТОО Ақ"}, a)
		})
	}
	p := filepath.Join(dir, "nobom.csv")
	require.NoError(t, os.WriteFile(p, textenc.UTF16(csv, false)[2:], 0o600))
	_, err := ReadList(p, nil)
	assert.ErrorContains(t, err, p+": not UTF-8 text: it holds NUL bytes")
}

// TestResumeFromJournal: a row started on a token and never ended (a kill -9) runs again on
// that token only, and is enrolled, not already_enrolled; a torn last journal line is
// ignored; a token holding a profile that no row is bound to is passed over.
func TestResumeFromJournal(t *testing.T) {
	root := t.TempDir()
	p, err := soft.OpenRoot(soft.Options{}, root)
	require.NoError(t, err)
	require.NoError(t, soft.Create(filepath.Join(root, "a"), soft.Options{Serial: "000000000000000a"}))
	require.NoError(t, soft.Create(filepath.Join(root, "b"), soft.Options{Serial: "000000000000000b"}))
	require.NoError(t, soft.Create(filepath.Join(root, "c"), soft.Options{Serial: "000000000000000c"}))
	l := writeList(t, users(2))
	rep := filepath.Join(t.TempDir(), "report.jsonl")
	jpath := JournalPath([]string{rep}, l.Path)
	// r1 was started on token b by a run that was killed, mid-way through its last record.
	require.NoError(t, os.WriteFile(jpath, []byte(`{"event":"batch","procedure":"enroll","at":"2026-12-04T10:00:00Z"}
{"event":"start","row":"r1","serial":"000000000000000b","label":"KAZTOKEN","at":"2026-12-04T10:00:01Z"}
{"event":"end","row":"r1","resu`), 0o600))
	// The run had got as far as the token (it holds the profile now); a holds the profile of
	// someone else.
	f := &fakeEnroll{enrolled: map[string]string{"000000000000000b": "r1", "000000000000000a": "other"}}
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Procedure: "enroll", List: l, Provider: p, Run: f.run, Reports: []string{rep},
		Holds: f.holds, Out: &out, Poll: 10 * time.Millisecond, Idle: 2 * time.Second})
	require.NoError(t, err, out.String())
	assert.Equal(t, 2, sum.Counts[Enrolled], out.String())
	got := map[string]string{}
	for _, r := range readReport(t, rep) {
		got[r.Row] = r.Serial
		if r.Row == "r1" {
			assert.True(t, r.Resumed)
		}
	}
	assert.Equal(t, map[string]string{"r1": "000000000000000b", "r2": "000000000000000c"}, got)
	assert.Contains(t, out.String(), "already holds a profile")
	// The journal reads whole again.
	_, err = openJournal(jpath, "enroll")
	require.NoError(t, err)
	_, err = openJournal(jpath, "change_pin")
	assert.ErrorContains(t, err, "not change_pin")
}

// TestSkippedRows: rows the operator leaves out are reported skipped and stay unfinished, so
// a later run without --skip does them, and only them.
func TestSkippedRows(t *testing.T) {
	root := t.TempDir()
	p, err := soft.OpenRoot(soft.Options{}, root)
	require.NoError(t, err)
	f := &fakeEnroll{enrolled: map[string]string{}, next: make(chan struct{}, 1)}
	plugIn(t, root, 3, f.next)
	l := writeList(t, users(3))
	rep := filepath.Join(t.TempDir(), "report.jsonl")
	var out bytes.Buffer
	opts := Options{Procedure: "enroll", List: l, Provider: p, Run: f.run, Reports: []string{rep}, Holds: f.holds,
		Out: &out, Poll: 10 * time.Millisecond, Idle: 5 * time.Second, Skip: map[string]bool{"r2": true}}
	sum, err := Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	assert.Equal(t, 1, sum.Counts[Skipped], out.String())
	assert.Equal(t, 2, sum.Counts[Enrolled], out.String())
	var skipped []string
	for _, r := range readReport(t, rep) {
		if r.Outcome == Skipped {
			skipped = append(skipped, r.Row)
		}
	}
	assert.Equal(t, []string{"r2"}, skipped)

	opts.Skip = nil
	sum, err = Run(context.Background(), opts)
	require.NoError(t, err, out.String())
	assert.Equal(t, 1, sum.Counts[Enrolled], "only the skipped row runs: %s", out.String())
	assert.Equal(t, 2, sum.Counts[AlreadyEnrolled])
	assert.Len(t, f.enrolled, 3)
}
