package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/batch"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
)

// batchEnv is a dev CA with n users, their initial keys, a list naming them, the answers
// they share and a directory of software tokens (--soft-root).
type batchEnv struct {
	dir, home, root, list, common, report string
	ca                                    *enrollCA
	users                                 []string
	key                                   []string // the key's --set flags
}

func newBatchEnv(t testing.TB, n int) *batchEnv {
	t.Helper()
	c, err := golden.NewCA(t.TempDir(), runMain)
	require.NoError(t, err)
	e := &batchEnv{dir: t.TempDir(), ca: &enrollCA{c}, key: []string{"--set", "key.type=ec", "--set", "key.curve=P-256"}}
	e.home = filepath.Join(e.dir, "home")
	e.root = filepath.Join(e.dir, "tokens")
	require.NoError(t, os.MkdirAll(e.root, 0o700))
	t.Setenv("TOKENRUN_HOME", e.home)
	var list strings.Builder
	list.WriteString("\ufeffid;user_id;otp_pin;key_file\n")
	for i := 1; i <= n; i++ {
		u := fmt.Sprintf("qq%06d_batchusr", i)
		pfx := filepath.Join(e.dir, u+".pfx")
		require.NoError(t, e.ca.Authority.AddUser(u, golden.EnrollOTP, pfx))
		e.users = append(e.users, u)
		fmt.Fprintf(&list, "u%02d;%s;%s;%s\n", i, u, golden.EnrollOTP, pfx)
	}
	e.list = writeFile(t, filepath.Join(e.dir, "users.csv"), list.String())
	require.NoError(t, os.Chmod(e.list, 0o600))
	e.common = writeFile(t, filepath.Join(e.dir, "common.yaml"),
		"validity: 1y\npin_is_password: true\nnew_pin: "+newPIN+"\nnew_pin_confirm: "+newPIN+"\n")
	e.report = filepath.Join(e.dir, "report.jsonl")
	return e
}

func (e *batchEnv) args(extra ...string) []string {
	a := []string{"batch", "enroll", "--list", e.list, "--answers", e.common, "--yes", "--report", e.report, "--lang", "en"}
	a = append(a, e.key...)
	return append(append(a, e.ca.Args()...), extra...)
}

// token makes a blank software token in a directory of its own, outside the root.
func (e *batchEnv) token(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(e.dir, "made", name)
	require.NoError(t, soft.Create(dir, soft.Options{UserPINToBeChanged: true}))
	return dir
}

// plugIn moves a token directory into the root: the token is plugged in.
func (e *batchEnv) plugIn(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.Rename(dir, filepath.Join(e.root, filepath.Base(dir))))
}

func readBatchReport(t testing.TB, path string) []batch.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []batch.Result
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r batch.Result
		require.NoError(t, json.Unmarshal(line, &r), "%s", line)
		out = append(out, r)
	}
	return out
}

func outcomes(rs []batch.Result) map[batch.Outcome]int {
	m := map[batch.Outcome]int{}
	for _, r := range rs {
		m[r.Outcome]++
	}
	return m
}

// softObjects are a software token's keys and certificates (certificates need no login).
func softObjects(t *testing.T, dir, pin string) (serial string, keys []*token.Key, certs []*token.Cert) {
	t.Helper()
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	tk, err := p.Open(ctx, infos[0])
	require.NoError(t, err)
	defer tk.Close()
	require.NoError(t, tk.Login(ctx, token.User, pin))
	keys, err = tk.Keys(ctx)
	require.NoError(t, err)
	certs, err = tk.Certificates(ctx)
	require.NoError(t, err)
	return infos[0].Serial, keys, certs
}

func verifyCertOpenSSL(t *testing.T, roots string, der []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	out, err := exec.Command("openssl", "verify", "-CAfile", roots, f).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), ": OK")
}

// TestBatch20TokensOneAfterAnother: 20 software tokens plugged in one after another (none
// removed: the batch must pass over the ones it did), 20 enrolled lines, each certificate on
// its own token and chaining to the CA; a rerun reports 20 already_enrolled and changes nothing.
func TestBatch20TokensOneAfterAnother(t *testing.T) {
	const n = 20
	e := newBatchEnv(t, n)
	e.ca.start(t, devca.ServerOptions{})
	var dirs []string
	for i := 0; i < n; i++ {
		dirs = append(dirs, e.token(t, fmt.Sprintf("t%02d", i)))
	}
	// A token already holding a profile, not in this batch: never given a row.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			e.plugIn(t, dirs[i])
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				if b, err := os.ReadFile(e.report); err == nil && bytes.Count(b, []byte("\n")) >= i+1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	start := time.Now()
	r := tokenrun(t, "", e.args("--soft-root", e.root, "--idle", "60s")...)
	<-done
	require.Equal(t, runner.ExitOK, r.code, r.err)
	t.Logf("20 rows in %s", time.Since(start))
	rs := readBatchReport(t, e.report)
	require.Len(t, rs, n)
	assert.Equal(t, map[batch.Outcome]int{batch.Enrolled: n}, outcomes(rs))
	assert.Contains(t, r.err, "row 20 of 20")
	assert.Contains(t, r.err, "remove the token")
	assert.Contains(t, r.err, "enrolled 20, already_enrolled 0, skipped 0, failed 0, pending 0")
	assert.NotContains(t, r.err+r.stdout, golden.EnrollOTP)
	bySerial := map[string]batch.Result{}
	for _, res := range rs {
		bySerial[res.Serial] = res
		assert.NotContains(t, fmt.Sprint(res), golden.EnrollOTP)
		assert.NotContains(t, fmt.Sprint(res), newPIN)
	}
	require.Len(t, bySerial, n, "each row on its own token")
	states := map[string][]byte{}
	for i := 0; i < n; i++ {
		dir := filepath.Join(e.root, fmt.Sprintf("t%02d", i))
		serial, keys, certs := softObjects(t, dir, newPIN)
		require.Len(t, keys, 1)
		require.Len(t, certs, 1)
		res, ok := bySerial[serial]
		require.True(t, ok, serial)
		assert.Equal(t, "CN="+res.UserID+",C=KZ", certs[0].X509.Subject.String())
		assert.Equal(t, hex.EncodeToString(keys[0].ID), res.KeyID)
		assert.Equal(t, certs[0].X509.SerialNumber.Text(16), res.CertSerial)
		verifyCertOpenSSL(t, e.ca.Roots, certs[0].DER)
		states[dir], _ = os.ReadFile(filepath.Join(dir, "token.json"))
	}
	issued, err := e.ca.Authority.Issued()
	require.NoError(t, err)

	r = tokenrun(t, "", e.args("--soft-root", e.root, "--idle", "5s")...)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	rs = readBatchReport(t, e.report)
	assert.Equal(t, map[batch.Outcome]int{batch.AlreadyEnrolled: n}, outcomes(rs))
	for dir, st := range states {
		now, _ := os.ReadFile(filepath.Join(dir, "token.json"))
		assert.Equal(t, st, now, "rerun changed %s", dir)
	}
	again, err := e.ca.Authority.Issued()
	require.NoError(t, err)
	assert.Len(t, again, len(issued), "a rerun asks the CA for nothing")
}

// TestBatchFailuresStayLocal: a wrong OTP PIN and a user ID the CA refuses fail their rows
// with their codes; the others are enrolled, and the batch exits 10.
func TestBatchFailuresStayLocal(t *testing.T) {
	e := newBatchEnv(t, 5)
	e.ca.start(t, devca.ServerOptions{})
	for i := 0; i < 4; i++ {
		e.plugIn(t, e.token(t, fmt.Sprintf("t%d", i)))
	}
	// u05's token is at its final try: the batch never spends it from a list.
	final := e.token(t, "final")
	require.NoError(t, soft.SetTries(final, token.User, 1))
	serial, _, _ := softObjects(t, final, "12345678")
	require.NoError(t, soft.SetTries(final, token.User, 1))
	e.plugIn(t, final)
	b, err := os.ReadFile(e.list)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	lines[0] += ";token"
	for i := 1; i <= 5; i++ {
		lines[i] += ";"
	}
	lines[2] = strings.Replace(lines[2], golden.EnrollOTP, "ZZ9ZZ9ZZ9ZZ", 1) // u02: wrong OTP PIN
	lines[3] = strings.Replace(lines[3], e.users[2]+";", "qq999999_notauser;", 1)
	lines[5] += serial
	require.NoError(t, os.WriteFile(e.list, []byte(strings.Join(lines, "\n")), 0o600))
	r := tokenrun(t, "", e.args("--soft-root", e.root, "--idle", "10s", "--report", filepath.Join(e.dir, "report.csv"))...)
	assert.Equal(t, exitBatchFailed, r.code, r.err)
	rs := readBatchReport(t, e.report)
	got := map[string]string{}
	for _, res := range rs {
		got[res.Row] = string(res.Outcome) + " " + res.Code
		if res.Outcome == batch.Failed {
			assert.NotEmpty(t, res.Message)
			assert.NotEmpty(t, res.MessageEN)
		}
	}
	assert.Equal(t, map[string]string{"u01": "enrolled ", "u02": "failed CA_WRONG_PASSWORD", "u03": "failed CA_REFUSED", "u04": "enrolled ",
		"u05": "failed REFUSED"}, got, r.err)
	assert.Contains(t, r.err, "remove the token "+serial+": it was refused for safety")
	st, err := os.ReadFile(filepath.Join(e.root, "final", "token.json"))
	require.NoError(t, err)
	assert.Contains(t, string(st), `"tries_left": 1,`, "the final try is not spent")
	csvText, err := os.ReadFile(filepath.Join(e.dir, "report.csv"))
	require.NoError(t, err)
	assert.Contains(t, string(csvText), "u02,qq000002_batchusr")
	assert.NotContains(t, string(csvText), golden.EnrollOTP)
}

// TestBatchCAOutagePauses: the CA goes away in the middle; the row that meets the outage is
// not failed, the batch pauses and goes on when the CA is back.
func TestBatchCAOutagePauses(t *testing.T) {
	e := newBatchEnv(t, 4)
	addr := e.ca.Listener.Addr().String()
	// The CA served here, not by e.ca.start: it stops and starts again on the same address.
	serve := func(ln net.Listener) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = e.ca.Authority.ServeListener(ctx, ln, devca.ServerOptions{}); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := serve(e.ca.Listener)
	restarted := make(chan func(), 1)
	t.Cleanup(func() {
		select {
		case s := <-restarted:
			s()
		case <-time.After(10 * time.Second):
		}
	})
	var dirs []string
	for i := 0; i < 4; i++ {
		dirs = append(dirs, e.token(t, fmt.Sprintf("t%d", i)))
	}
	go func() {
		for i := 0; i < 4; i++ {
			if i == 2 { // after two rows, the CA goes down for a while
				stop()
				go func() {
					time.Sleep(5 * time.Second)
					ln, err := net.Listen("tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					restarted <- serve(ln)
				}()
			}
			e.plugIn(t, dirs[i])
			for {
				b, _ := os.ReadFile(e.report)
				if bytes.Count(b, []byte("\n")) >= i+1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	r := tokenrun(t, "", e.args("--soft-root", e.root, "--idle", "30s", "--ca-pause", "1s", "--set", "ca.timeout=2s")...)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.err, "the batch pauses")
	assert.Equal(t, map[batch.Outcome]int{batch.Enrolled: 4}, outcomes(readBatchReport(t, e.report)), r.err)
}

// TestBatchSoftHSM2Parallel: 5 SoftHSM2 tokens present, --parallel 5: 5 enrolled, each key
// and certificate seen by pkcs11-tool and the certificate checked by OpenSSL.
func TestBatchSoftHSM2Parallel(t *testing.T) {
	e := newBatchEnv(t, 5)
	e.ca.start(t, devca.ServerOptions{})
	module := p11test.SoftHSM(t)
	var tks []p11test.Token
	for i := 0; i < 5; i++ {
		tks = append(tks, p11test.SoftHSMToken(t, fmt.Sprintf("BATCH%d", i), "87654321", "12345678"))
	}
	r := tokenrun(t, "", e.args("--module", module, "--parallel", "5", "--idle", "10s")...)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	rs := readBatchReport(t, e.report)
	assert.Equal(t, map[batch.Outcome]int{batch.Enrolled: 5}, outcomes(rs), r.err)
	for _, tk := range tks {
		objs := p11test.ListObjects(t, p11test.Token{Module: tk.Module, Label: tk.Label, Serial: tk.Serial, UserPIN: newPIN})
		assert.Equal(t, 1, strings.Count(objs, "Private Key Object"), objs)
		assert.Equal(t, 1, strings.Count(objs, "Certificate Object"), objs)
		var res batch.Result
		for _, x := range rs {
			if x.Serial == tk.Serial {
				res = x
			}
		}
		require.NotEmpty(t, res.KeyID, "no report line for %s", tk.Serial)
		out, err := exec.Command(p11test.PKCS11Tool(t), "--module", tk.Module, "--token-label", tk.Label,
			"--read-object", "--type", "cert", "--id", res.KeyID).CombinedOutput()
		require.NoError(t, err, "%s", out)
		c, err := x509.ParseCertificate(out)
		require.NoError(t, err)
		assert.Equal(t, res.UserID, c.Subject.CommonName)
		assert.Contains(t, objs, "CN="+res.UserID)
		verifyCertOpenSSL(t, e.ca.Roots, out)
	}
}

// TestBatchKill9: a 10-row batch killed with SIGKILL at random points 10 times, each time run
// again: every row ends enrolled exactly once, no token holds two keys, and every
// certificate the CA issued is on a token unless the report marks its row resumed.
func TestBatchKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a batch 10 times")
	}
	const n = 10
	e := newBatchEnv(t, n)
	e.ca.start(t, devca.ServerOptions{})
	for i := 0; i < n; i++ {
		e.plugIn(t, e.token(t, fmt.Sprintf("t%02d", i)))
	}
	args := e.args("--soft-root", e.root, "--idle", "20s")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for k := 0; k < 10; k++ {
		cmd := exec.Command(os.Args[0], args[0:]...)
		cmd.Env = append(os.Environ(), "TOKENRUN_TEST_AS_MAIN=1", "TOKENRUN_HOME="+e.home)
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Killed at a random moment once it has begun a row.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), " on token ") {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(600)) * time.Millisecond)
		_ = cmd.Process.Kill()
		go func() {
			for sc.Scan() {
			}
		}()
		_ = cmd.Wait()
	}
	r := tokenrun(t, "", args...)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	rs := readBatchReport(t, e.report)
	require.Len(t, rs, n)
	resumed := map[string]bool{}
	users := map[string]int{}
	for _, res := range rs {
		assert.Contains(t, []batch.Outcome{batch.Enrolled, batch.AlreadyEnrolled}, res.Outcome, "%+v", res)
		users[res.UserID]++
		if res.Resumed {
			resumed[res.UserID] = true
		}
	}
	assert.Len(t, users, n)
	t.Logf("%d of %d rows were interrupted and resumed", len(resumed), n)
	// The journal: exactly one enrolled end per row.
	jb, err := os.ReadFile(batch.JournalPath([]string{e.report}, e.list))
	require.NoError(t, err)
	ends := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(jb), []byte("\n")) {
		var rec struct {
			Event  string        `json:"event"`
			Result *batch.Result `json:"result"`
		}
		require.NoError(t, json.Unmarshal(line, &rec))
		if rec.Event == "end" {
			ends[rec.Result.Row]++
			assert.Equal(t, batch.Enrolled, rec.Result.Outcome)
		}
	}
	for _, res := range rs {
		assert.Equal(t, 1, ends[res.Row], "row %s ended %d times", res.Row, ends[res.Row])
	}
	onToken := map[string]bool{}
	entries, err := os.ReadDir(e.root)
	require.NoError(t, err)
	for _, d := range entries {
		_, keys, certs := softObjects(t, filepath.Join(e.root, d.Name()), newPIN)
		assert.Len(t, keys, 1, d.Name())
		assert.Len(t, certs, 1, d.Name())
		for _, c := range certs {
			onToken[c.X509.SerialNumber.Text(16)] = true
		}
	}
	issued, err := e.ca.Authority.Issued()
	require.NoError(t, err)
	for _, is := range issued {
		if is.Op != "simpleenroll" || onToken[is.Serial] {
			continue
		}
		assert.True(t, resumed[is.User], "certificate %s for %s is on no token and the report does not mark the row", is.Serial, is.User)
	}
}

// TestBatchCtrlC: SIGINT in the middle of a batch stops the rows running at their safe point
// (exit 6, the rows not finished pending); the rerun finishes them, each token ending with one
// key and its certificate.
func TestBatchCtrlC(t *testing.T) {
	const n = 3
	e := newBatchEnv(t, n)
	e.ca.start(t, devca.ServerOptions{})
	for i := 0; i < n; i++ {
		e.plugIn(t, e.token(t, fmt.Sprintf("t%d", i)))
	}
	args := e.args("--soft-root", e.root, "--idle", "20s", "--parallel", "3")
	cmd := exec.Command(tokenrunBinary(t), args...) // the real binary: main's signal handling
	cmd.Env = append(os.Environ(), "TOKENRUN_HOME="+e.home)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stderr)
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), " on token ") {
			break
		}
	}
	time.Sleep(150 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, runner.ExitCancelled, ee.ExitCode(), seen.String())
	} // else: every row had finished before the signal
	for _, l := range strings.Split(seen.String(), "\n") {
		if strings.HasPrefix(l, "batch enroll: ") {
			t.Log(l)
		}
	}
	r := tokenrun(t, "", args...)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	rs := readBatchReport(t, e.report)
	require.Len(t, rs, n)
	for _, res := range rs {
		assert.Contains(t, []batch.Outcome{batch.Enrolled, batch.AlreadyEnrolled}, res.Outcome, "%+v", res)
	}
	entries, err := os.ReadDir(e.root)
	require.NoError(t, err)
	for _, d := range entries {
		_, keys, certs := softObjects(t, filepath.Join(e.root, d.Name()), newPIN)
		assert.Len(t, keys, 1, d.Name())
		assert.Len(t, certs, 1, d.Name())
	}
}
