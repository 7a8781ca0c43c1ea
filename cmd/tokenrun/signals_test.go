package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// The signal tests run the real binary, built once for the package: main's signal handling
// is what they test, and the test binary run as tokenrun (TOKENRUN_TEST_AS_MAIN) has none.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

func tokenrunBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "tokenrun-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "tokenrun")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.path
}

// removeBuiltBinary is called by TestMain once the tests are done.
func removeBuiltBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// proc is the real binary running: stdout and stderr lines arrive on channels (closed at
// EOF) and are kept whole for the assertions.
type proc struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	out, errs      chan string
	mu             sync.Mutex
	stdout, stderr strings.Builder // every line, kept for the assertions
	wg             sync.WaitGroup
}

func startTokenrun(t *testing.T, home string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(tokenrunBinary(t), args...)
	cmd.Env = append(os.Environ(), "TOKENRUN_HOME="+home)
	return startProc(t, cmd)
}

// startProc starts cmd (tokenrun, or tokenrun.exe under wine) with its output on channels.
func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, out: make(chan string, 1<<16), errs: make(chan string, 1024)}
	var err error
	p.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	pump := func(r io.Reader, ch chan string, keep *strings.Builder) {
		defer p.wg.Done()
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			keep.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case ch <- sc.Text():
			default: // nobody waits for these lines any more; they are kept
			}
		}
	}
	p.wg.Add(2)
	go pump(stdout, p.out, &p.stdout)
	go pump(stderr, p.errs, &p.stderr)
	return p
}

// waitLine reads ch until a line contains want; fn sees every line first (to answer
// prompts). It fails the test when the stream ends without one.
func waitLine(t *testing.T, ch chan string, want string, fn func(string)) string {
	t.Helper()
	for line := range ch {
		if fn != nil {
			fn(line)
		}
		if strings.Contains(line, want) {
			return line
		}
	}
	t.Fatalf("the output ended without a line containing %q", want)
	return ""
}

// wait drains the output and returns the exit code, stdout and stderr. A run that does not
// end within a minute fails the test (a guard, not a measurement).
func (p *proc) wait(t *testing.T) (code int, stdout, stderr string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		for range p.out {
		}
		for range p.errs {
		}
		p.wg.Wait()
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		t.Fatal("tokenrun did not stop within a minute of the signal")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.False(t, ws.Signaled(), "tokenrun died of a signal instead of exiting: %s", p.stderr.String())
	return p.cmd.ProcessState.ExitCode(), p.stdout.String(), p.stderr.String()
}

// answerJSON answers a --ui json ask line from ans.
func (p *proc) answerJSON(t *testing.T, ans map[string]any) func(string) {
	return func(line string) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["type"] != "ask" {
			return
		}
		id, _ := m["id"].(string)
		kind, _ := m["kind"].(string)
		b, _ := json.Marshal(map[string]any{"id": id, "value": golden.AnswerText(ans[id], kind)})
		_, err := p.stdin.Write(append(b, '\n'))
		assert.NoError(t, err)
	}
}

// noTempFiles fails when a temporary file (atomicfile's .NAME.tmp-*, the software token's
// .token.json.tmp-*, a bundle's .tmp-*) is left anywhere under dirs.
func noTempFiles(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err == nil && strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file left: %s", path)
			}
			return nil
		})
	}
}

// footer is the transcript's last line.
func footer(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err, "the transcript is written")
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &f))
	return f
}

func retriesLeft(t *testing.T, dir string) int {
	t.Helper()
	r := tokenrun(t, "", "tokens", "--json", "--soft", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	var infos []token.Info
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &infos))
	require.Len(t, infos, 1)
	return infos[0].UserPIN.RetriesLeft
}

var stopSignalsUnderTest = []struct {
	name string
	sig  syscall.Signal
}{{"SIGINT", syscall.SIGINT}, {"SIGTERM", syscall.SIGTERM}}

// hungCA accepts TCP connections on loopback and never answers: a CA that hangs.
func hungCA(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestEnrollSignalled sends SIGINT or SIGTERM to a real enrollment while it generates an
// RSA-4096 key on the software token, and while it waits on a CA that never answers: exit 6,
// the transcript written with outcome cancelled, one line saying where the token stands, no
// temporary file anywhere, and a rerun finishes with one key and one certificate.
func TestEnrollSignalled(t *testing.T) {
	for _, step := range []struct {
		name, at string
		hung     bool
		say      string
	}{
		{"key generation", `"type":"progress","id":"generate_key"`, false, "the key pair was being generated"},
		{"CA step", `"type":"progress","id":"request_certificate"`, true, "the certificate was being requested"},
	} {
		for _, s := range stopSignalsUnderTest {
			t.Run(step.name+"/"+s.name, func(t *testing.T) {
				home := t.TempDir()
				t.Setenv("TOKENRUN_HOME", home)
				ca := newEnrollCA(t)
				ca.start(t, devca.ServerOptions{})
				dir, serial := softToken(t)
				file := filepath.Join(t.TempDir(), "enroll.jsonl")
				args := append([]string{"enroll", "--soft", dir, "--lang", "en", "--ui", "json", "--transcript", file}, ca.Args()...)
				args = append(args, "--set", "key.bits=4096")
				if step.hung {
					args = append(args, "--set", "ca.url=https://"+hungCA(t))
				}
				p := startTokenrun(t, home, args...)
				waitLine(t, p.out, step.at, p.answerJSON(t, enrollAnswers(ca)))
				require.NoError(t, p.cmd.Process.Signal(s.sig))
				code, stdout, stderr := p.wait(t)
				require.Equal(t, runner.ExitCancelled, code, stdout+stderr)
				t.Logf("stderr:\n%s", stderr)
				assert.Contains(t, stderr, "Stopping after the current step")
				assert.Contains(t, stderr, step.say)
				assert.Contains(t, stderr, "it continues from the journal")
				assertNoSecrets(t, enrollAnswers(ca), stdout+stderr)

				f := footer(t, file)
				assert.Equal(t, "cancelled", f["outcome"])
				assert.Equal(t, "CANCELLED", f["code"])
				assert.EqualValues(t, runner.ExitCancelled, f["exit"])
				assert.Contains(t, f["message"], s.name)
				kept, err := filepath.Glob(filepath.Join(home, "transcripts", "*"))
				require.NoError(t, err)
				assert.NotEmpty(t, kept, "the kept copy is written too")
				noTempFiles(t, dir, home, filepath.Dir(file))
				j, err := journal.Open(filepath.Join(home, "journal"))
				require.NoError(t, err)
				e, err := j.Load(serial)
				require.NoError(t, err, "the journal stays open")
				assert.Contains(t, []string{"generating", "key_generated", "requested"}, e.Step)

				out, code := enrollJSON(t, dir, ca)
				require.Equal(t, runner.ExitOK, code, out)
				assert.Contains(t, out, "Continuing the registration")
				keys, certs := objects(t, dir, newPIN)
				assert.Equal(t, 1, keys, "exactly one key")
				assert.Equal(t, 1, certs, "exactly one certificate")
			})
		}
	}
}

// TestSignSignalled stops a batch of 1,500 signatures at its first output line: exit 6, a
// line saying how many were signed, exactly those signatures written, whole, no temporary
// file, and a rerun with --force signs them all.
func TestSignSignalled(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	out, code := enrollJSON(t, dir, ca)
	require.Equal(t, runner.ExitOK, code, out)
	pin := writeFile(t, filepath.Join(t.TempDir(), "pin"), newPIN)
	docs := t.TempDir()
	var files []string
	for i := range 1500 {
		files = append(files, writeFile(t, filepath.Join(docs, fmt.Sprintf("order-%04d.txt", i)), fmt.Sprintf("payment order %d\n", i)))
	}
	for _, s := range stopSignalsUnderTest {
		t.Run(s.name, func(t *testing.T) {
			outDir := t.TempDir()
			args := append([]string{"sign", "--lang", "en", "--soft", dir, "--token", "pkcs11:token=KAZTOKEN;object=Main", "--pin-file", pin, "--out-dir", outDir}, files...)
			p := startTokenrun(t, home, args...)
			waitLine(t, p.out, " -> ", nil)
			require.NoError(t, p.cmd.Process.Signal(s.sig))
			code, stdout, stderr := p.wait(t)
			require.Equal(t, runner.ExitCancelled, code, stderr)
			var n, total int
			i := strings.Index(stderr, "Cancelled: ")
			require.GreaterOrEqual(t, i, 0, stderr)
			_, err := fmt.Sscanf(stderr[i:], "Cancelled: %d of %d documents signed", &n, &total)
			require.NoError(t, err, stderr)
			assert.Equal(t, 1500, total)
			assert.Less(t, n, total, "the batch stopped early")
			assert.Equal(t, n, strings.Count(stdout, " -> "))
			sigs, err := filepath.Glob(filepath.Join(outDir, "*.p7s"))
			require.NoError(t, err)
			assert.Len(t, sigs, n, "exactly the signatures reported, each written whole")
			noTempFiles(t, dir, outDir, home, docs)
			r := tokenrun(t, "", "verify", "--in", sigs[len(sigs)-1], "--roots", ca.Roots)
			require.Equal(t, runner.ExitOK, r.code, "%s", r.stdout+r.err)

			r = tokenrun(t, "", append(args[:len(args)-len(files)], append([]string{"--force"}, files...)...)...)
			require.Equal(t, runner.ExitOK, r.code, r.err)
			sigs, err = filepath.Glob(filepath.Join(outDir, "*.p7s"))
			require.NoError(t, err)
			assert.Len(t, sigs, 1500)
		})
	}
}

// TestSecondSignalExitsAtOnce: a token call that cannot be abandoned (RSA-4096 key
// generation inside SoftHSM2, about a second) finishes before a first Ctrl-C takes effect; a
// second one exits at once, still exit 6, leaving no temporary file.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "SIG", "87654321", "12345678")
	script := writeFile(t, filepath.Join(t.TempDir(), "slow.lua"), `
local token = require("token")
local ui = require("ui")
local tok = assert(token.wait { timeout = 5 })
assert(tok:login("12345678"))
ui.say("generating now")
assert(tok:generate_key { type = "rsa", bits = 4096, label = "slow" })
ui.say("generated")
`)
	home := t.TempDir()
	p := startTokenrun(t, home, "run", "--module", tk.Module, script)
	waitLine(t, p.errs, "generating now", nil)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	waitLine(t, p.errs, "Stopping after the current step", nil)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, _, stderr := p.wait(t)
	assert.Equal(t, runner.ExitCancelled, code, stderr)
	if !strings.Contains(stderr, "stopped at once") {
		// The key was made within the moment between the two signals: the first one ended
		// the run the ordinary way (also exit 6). Rare; nothing to check about the second.
		assert.Contains(t, stderr, "Cancelled after the procedure had changed the token")
		t.Skip("the key generation finished before the second signal arrived")
	}
	assert.Contains(t, stderr, "stopped at once by a second Ctrl-C")
	assert.NotContains(t, stderr, "generated\n")
	noTempFiles(t, home)
}

// TestEnrollRerunAfterPINChange: an enrollment stopped after the password was changed (its
// journal left at pin_set, as a kill before the journal's close leaves it) reruns to done
// with no login at all: the token's tries are untouched. Left at setting_pin alone (result
// not known) it spends no try either: the token's to-be-changed flag decides when it was
// recorded; otherwise a person must type the password the token has now: a run from an
// answers file is refused, and a driver is asked with human_only.
func TestEnrollRerunAfterPINChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(e *journal.Entry)
		answers bool // an answers file instead of the JSON driver
		code    int
		want    string
	}{
		{"pin_set", func(*journal.Entry) {}, false, runner.ExitOK, "already set"},
		{"setting_pin with the flag recorded", func(e *journal.Entry) { e.Step, e.Data["must_change"] = "setting_pin", true }, false, runner.ExitOK, "already set"},
		{"setting_pin unknown from a file", func(e *journal.Entry) { e.Step, e.Data["must_change"] = "setting_pin", false }, true, runner.ExitRefused, "Run the registration again at a terminal"},
		{"setting_pin unknown from a driver", func(e *journal.Entry) { e.Step, e.Data["must_change"] = "setting_pin", false }, false, runner.ExitCancelled, "ask pin_unknown_go_on confirm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("TOKENRUN_HOME", home)
			ca := newEnrollCA(t)
			ca.start(t, devca.ServerOptions{})
			dir, serial := softToken(t)
			out, code := enrollJSON(t, dir, ca)
			require.Equal(t, runner.ExitOK, code, out)

			// The finished journal, put back as the kill between pin_set and its close left it.
			done, err := filepath.Glob(filepath.Join(home, "journal", "done", serial+"-*.json"))
			require.NoError(t, err)
			require.Len(t, done, 1)
			b, err := os.ReadFile(done[0])
			require.NoError(t, err)
			var e journal.Entry
			require.NoError(t, json.Unmarshal(b, &e))
			require.Equal(t, "pin_set", e.Step, "pin_set is recorded once set_pin returns")
			require.Equal(t, "setting_pin", e.History[len(e.History)-2].Name)
			tc.edit(&e)
			b, err = json.Marshal(e)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(home, "journal", serial+".json"), b, 0o600))
			require.NoError(t, os.Remove(done[0]))

			before := retriesLeft(t, dir)
			if tc.answers {
				r := tokenrun(t, "", append([]string{"enroll", "--soft", dir, "--lang", "en", "--yes",
					"--answers", writeAnswers(t, enrollAnswers(ca))}, ca.Args()...)...)
				out, code = r.stdout+r.err, r.code
			} else {
				out, code = enrollJSON(t, dir, ca)
			}
			require.Equal(t, tc.code, code, out)
			assert.Contains(t, out, tc.want)
			assert.NotContains(t, out, "PIN_INCORRECT")
			assert.Equal(t, before, retriesLeft(t, dir), "no PIN try spent")
			keys, certs := objects(t, dir, newPIN)
			assert.Equal(t, 1, keys)
			assert.Equal(t, 1, certs)
		})
	}
}

// TestEnrollSignalledWhileSettingPIN: a signal while the password is being changed leaves the
// journal saying what happened (pin_set when set_pin returned, the step before when it was
// never called), so the rerun finishes without spending a try.
func TestEnrollSignalledWhileSettingPIN(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TOKENRUN_HOME", home)
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, serial := softToken(t)
	before := retriesLeft(t, dir)
	args := append([]string{"enroll", "--soft", dir, "--lang", "en", "--ui", "json"}, ca.Args()...)
	p := startTokenrun(t, home, args...)
	waitLine(t, p.out, `"type":"progress","id":"set_pin"`, p.answerJSON(t, enrollAnswers(ca)))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, stdout, stderr := p.wait(t)
	if code == runner.ExitOK {
		t.Skip("the run finished before the signal arrived")
	}
	require.Equal(t, runner.ExitCancelled, code, stdout+stderr)
	j, err := journal.Open(filepath.Join(home, "journal"))
	require.NoError(t, err)
	e, err := j.Load(serial)
	require.NoError(t, err)
	t.Logf("journal left at %s; stderr:\n%s", e.Step, stderr)
	assert.Contains(t, []string{"pin_set", "verified"}, e.Step, "never the ambiguous setting_pin after a signal")
	noTempFiles(t, dir, home)

	out, code := enrollJSON(t, dir, ca)
	require.Equal(t, runner.ExitOK, code, out)
	assert.Equal(t, before, retriesLeft(t, dir), "no PIN try spent")
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestRunSignalled: `run` with --transcript, SIGTERM while the software token makes an
// RSA-4096 key: exit 6, footer cancelled, no temporary file in the token's directory.
func TestRunSignalled(t *testing.T) {
	dir, _ := softToken(t)
	script := writeFile(t, filepath.Join(t.TempDir(), "keygen.lua"), `
local token = require("token")
local ui = require("ui")
local tok = assert(token.wait { timeout = 5 })
assert(tok:login("12345678"))
ui.say("generating now")
assert(tok:generate_key { type = "rsa", bits = 4096, label = "big" })
ui.say("generated")
`)
	home := t.TempDir()
	file := filepath.Join(t.TempDir(), "run.jsonl")
	p := startTokenrun(t, home, "run", "--soft", dir, "--transcript", file, script)
	waitLine(t, p.errs, "generating now", nil)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	code, _, stderr := p.wait(t)
	require.Equal(t, runner.ExitCancelled, code, stderr)
	assert.NotContains(t, stderr, "generated\n")
	assert.Regexp(t, `tokenrun: Cancelled(\.| after the procedure had changed the token)`, stderr)
	f := footer(t, file)
	assert.Equal(t, "cancelled", f["outcome"])
	assert.Equal(t, "cancelled", f["exit_class"])
	noTempFiles(t, dir, home, filepath.Dir(file))
}
