package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
)

var update = flag.Bool("update", false, "rewrite the procedures' expected.golden files")

const (
	// The OTP PIN of the enrollment CA's user: 11 characters, as the region wants.
	enrollUser = "qq111111_qwertyui"
	enrollOTP  = "AB1CD0EFG2H"
	goldenTree = "../../scripts/tests"
)

// secretIDs are the prompt ids whose answers must never show anywhere.
var secretIDs = []string{"otp_pin", "key_password", "current_pin", "new_pin", "new_pin_confirm", "so_pin"}

// enrollCA is a development CA with one user whose initial key opens with enrollOTP,
// served on loopback unless opts is nil (a CA that is down). start serves it later.
type enrollCA struct {
	dir, url, keyFile, roots string
	ln                       net.Listener
	a                        *devca.CA
}

func newEnrollCA(t *testing.T) *enrollCA {
	t.Helper()
	c := &enrollCA{dir: filepath.Join(t.TempDir(), "ca")}
	r := tokenrun(t, "", "ca", "init", c.dir)
	require.Equal(t, exitOK, r.code, r.err)
	c.keyFile = filepath.Join(t.TempDir(), "Key.pfx")
	r = tokenrun(t, "", "ca", "add-user", "--dir", c.dir, "--user-id", enrollUser, "--pin", enrollOTP, "--out", c.keyFile)
	require.Equal(t, exitOK, r.code, r.err)
	a, err := devca.Open(c.dir)
	require.NoError(t, err)
	c.a = a
	c.ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.url = "https://" + c.ln.Addr().String()
	c.roots = filepath.Join(c.dir, devca.RootCertFile)
	return c
}

// start serves the CA on its listener until the test ends.
func (c *enrollCA) start(t *testing.T, opts devca.ServerOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.a.ServeListener(ctx, c.ln, opts) }()
	t.Cleanup(func() { cancel(); <-done })
}

// stop closes the listener of a CA that was never started: connections are refused.
func (c *enrollCA) down(t *testing.T) {
	require.NoError(t, c.ln.Close())
}

func (c *enrollCA) args() []string {
	return []string{"--set", "ca.url=" + c.url, "--set", "ca.roots=" + c.roots}
}

// backend is where a case's token lives.
type backend struct {
	name string
	// source is the --soft/--module flags for the token(s).
	source []string
	serial string
	dir    string // software token directory; "" on SoftHSM2
}

// caseSetup is setup.yaml: the starting state of a golden case.
type caseSetup struct {
	Mode        string   `yaml:"mode"` // json (default): driven by the JSON front-end; answers: --answers --yes
	Args        []string `yaml:"args"`
	UserTries   *int     `yaml:"user_tries"`
	SOTries     *int     `yaml:"so_tries"`
	ExtraTokens int      `yaml:"extra_tokens"` // more software tokens plugged in
	SelectFirst bool     `yaml:"select_first"` // --token naming the first one
	NoToken     bool     `yaml:"no_token"`
	Enrolled    bool     `yaml:"enrolled"` // a finished profile from a first enroll
	BareKey     string   `yaml:"bare_key"` // a key with this label and no certificate
	Journal     *struct {
		Step string         `yaml:"step"`
		Data map[string]any `yaml:"data"`
	} `yaml:"journal"`
	CA       string `yaml:"ca"` // "" (up), down, pending
	SoftOnly string `yaml:"soft_only"`
	Lang     string `yaml:"lang"`
}

// TestProcedureGoldens walks scripts/tests/<procedure>/<case>/ and runs each case on the
// software token and on SoftHSM2, comparing the normalised transcript with expected.golden.
func TestProcedureGoldens(t *testing.T) {
	procs, err := os.ReadDir(goldenTree)
	require.NoError(t, err)
	for _, p := range procs {
		cases, err := os.ReadDir(filepath.Join(goldenTree, p.Name()))
		require.NoError(t, err)
		for _, c := range cases {
			dir := filepath.Join(goldenTree, p.Name(), c.Name())
			t.Run(p.Name()+"/"+c.Name(), func(t *testing.T) {
				var st caseSetup
				if raw, err := os.ReadFile(filepath.Join(dir, "setup.yaml")); err == nil {
					require.NoError(t, yaml.Unmarshal(raw, &st))
				}
				for _, be := range []string{"soft", "softhsm2"} {
					t.Run(be, func(t *testing.T) {
						if be == "softhsm2" && st.SoftOnly != "" {
							t.Skip("software token only: " + st.SoftOnly)
						}
						if be == "soft" && st.NoToken {
							t.Skip("a software token source always has its token: SoftHSM2 only")
						}
						runGoldenCase(t, p.Name(), dir, be, st)
					})
				}
			})
		}
	}
}

func runGoldenCase(t *testing.T, proc, dir, be string, st caseSetup) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	switch st.CA {
	case "down":
		ca.down(t)
	case "pending":
		ca.start(t, devca.ServerOptions{PendingFirst: 1})
	default:
		ca.start(t, devca.ServerOptions{})
	}
	b := makeBackend(t, be, st)
	vars := map[string]string{"KEY_FILE": ca.keyFile, "ROOTS": ca.roots}
	ans := loadAnswers(t, filepath.Join(dir, "answers.yaml"), vars)

	if st.Enrolled {
		enrollOnce(t, b, ca)
	}
	if st.BareKey != "" {
		bareKey(t, b, st.BareKey)
	}
	if st.Journal != nil {
		s, err := journal.Open(filepath.Join(os.Getenv("TOKENRUN_HOME"), "journal"))
		require.NoError(t, err)
		_, err = s.Record(b.serial, "enroll", st.Journal.Step, st.Journal.Data)
		require.NoError(t, err)
	}
	if st.UserTries != nil {
		require.NoError(t, soft.SetTries(b.dir, token.User, *st.UserTries))
	}
	if st.SOTries != nil {
		require.NoError(t, soft.SetTries(b.dir, token.SO, *st.SOTries))
	}

	lang := st.Lang
	if lang == "" {
		lang = "en"
	}
	args := append([]string{strings.ReplaceAll(proc, "_", "-")}, b.source...)
	args = append(args, ca.args()...)
	args = append(args, "--lang", lang, "--set", "token.wait=1s")
	if st.SelectFirst {
		args = append(args, "--token", "pkcs11:serial="+b.serial)
	}
	args = append(args, st.Args...)

	var tr []string
	var code int
	var stdout, stderr string
	if st.Mode == "answers" {
		f := writeAnswers(t, ans)
		r := tokenrun(t, "", append(args, "--answers", f, "--yes")...)
		code, stdout, stderr = r.code, r.stdout, r.err
	} else {
		tr, code, stdout, stderr = driveJSON(t, append(args, "--ui", "json"), ans)
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" {
			tr = append(tr, "stderr: "+l)
		}
	}
	tr = append(tr, fmt.Sprintf("exit %d", code))
	got := normalise(strings.Join(tr, "\n")+"\n", b, ca)

	assertNoSecrets(t, ans, stdout+stderr+got)
	// A module that truly differs (SoftHSM2 reports no tries left) keeps its own golden.
	golden := filepath.Join(dir, "expected.golden")
	own := filepath.Join(dir, "expected."+be+".golden")
	if *update {
		if be == "soft" || st.NoToken {
			require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
		} else if base, err := os.ReadFile(golden); err == nil && string(base) != got {
			require.NoError(t, os.WriteFile(own, []byte(got), 0o644))
		} else {
			_ = os.Remove(own)
		}
	}
	if _, err := os.Stat(own); err == nil {
		golden = own
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), got, "transcript on %s (stdout: %s)", be, stdout)
}

// makeBackend plugs in the case's token(s).
func makeBackend(t *testing.T, be string, st caseSetup) backend {
	t.Helper()
	if be == "softhsm2" {
		module := p11test.SoftHSM(t)
		if st.NoToken {
			// Only SoftHSM2's spare uninitialised slot: no token that counts.
			return backend{name: be, source: []string{"--module", module}}
		}
		tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
		return backend{name: be, source: []string{"--module", tk.Module}, serial: tk.Serial}
	}
	root := t.TempDir()
	b := backend{name: be, dir: filepath.Join(root, "tok")}
	b.source = []string{"--soft", b.dir}
	for i := range st.ExtraTokens {
		b.source = append(b.source, "--soft", filepath.Join(root, fmt.Sprintf("other%d", i)))
	}
	// Create them all and learn the first one's serial.
	r := tokenrun(t, "", append([]string{"tokens", "--json"}, b.source...)...)
	require.Equal(t, exitOK, r.code, r.err)
	r = tokenrun(t, "", "tokens", "--json", "--soft", b.dir)
	require.Equal(t, exitOK, r.code, r.err)
	var infos []token.Info
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &infos))
	require.Len(t, infos, 1)
	b.serial = infos[0].Serial
	return b
}

// enrollOnce leaves a finished profile on the token and closes its journal.
func enrollOnce(t *testing.T, b backend, ca *enrollCA) {
	t.Helper()
	f := writeAnswers(t, map[string]any{"validity": "1y", "user_id": enrollUser, "otp_pin": enrollOTP,
		"key_file": ca.keyFile, "pin_is_password": true, "profile_name": "Main",
		"new_pin": "Kx7mQ9pz", "new_pin_confirm": "Kx7mQ9pz"})
	r := tokenrun(t, "", append(append([]string{"enroll", "--answers", f, "--yes", "--lang", "en"}, b.source...), ca.args()...)...)
	require.Equal(t, exitOK, r.code, r.err)
}

// bareKey generates a key with label and no certificate: what a run killed right after
// generating leaves.
func bareKey(t *testing.T, b backend, label string) {
	t.Helper()
	script := writeFile(t, filepath.Join(t.TempDir(), "bare.lua"), fmt.Sprintf(`
local token = require("token")
local tok = assert(token.wait { timeout = 5 })
assert(tok:login("12345678"))
assert(tok:generate_key { type = "ec", curve = "P-256", label = %q })
`, label))
	r := tokenrun(t, "", append([]string{"run", script}, b.source...)...)
	require.Equal(t, exitOK, r.code, r.err)
}

// loadAnswers reads answers.yaml, with {{NAME}} replaced from vars.
func loadAnswers(t *testing.T, file string, vars map[string]string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return map[string]any{}
	}
	require.NoError(t, err)
	text := string(raw)
	for k, v := range vars {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	ans := map[string]any{}
	require.NoError(t, yaml.Unmarshal([]byte(text), &ans))
	return ans
}

func writeAnswers(t *testing.T, ans map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(ans)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "answers.yaml")
	require.NoError(t, os.WriteFile(f, b, 0o600))
	return f
}

// answerText is what the driver sends for an answer: YAML booleans become yes/no for a
// confirmation and true/false otherwise.
func answerText(v any, kind string) string {
	if v == nil {
		return "" // no answer: an optional prompt takes the procedure's default
	}
	if b, ok := v.(bool); ok {
		if kind == "confirm" {
			if b {
				return "yes"
			}
			return "no"
		}
		return fmt.Sprint(b)
	}
	return fmt.Sprint(v)
}

// syncBuffer is a bytes.Buffer safe for the run's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// driveJSON runs tokenrun with --ui json in process and answers its prompts from ans, as a
// GUI would. The transcript records each ask (id, kind), message, progress and invalid
// answer. A prompt marked human_only, or one without an answer, is cancelled.
func driveJSON(t *testing.T, args []string, ans map[string]any) (tr []string, code int, stdout, stderr string) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errBuf syncBuffer
	var all bytes.Buffer
	done := make(chan int, 1)
	go func() {
		c := runMain(append([]string{"tokenrun"}, args...), inR, outW, &errBuf)
		outW.Close()
		done <- c
	}()
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	answered := map[string]bool{}
	send := func(m map[string]any) {
		b, _ := json.Marshal(m)
		go func() { _, _ = inW.Write(append(b, '\n')) }()
	}
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		id, _ := m["id"].(string)
		switch m["type"] {
		case "ask":
			kind, _ := m["kind"].(string)
			entry := "ask " + id + " " + kind
			if kind == "confirm" {
				// What is being confirmed matters (format names the token's label and serial).
				entry += fmt.Sprintf(" %q", m["label"])
			}
			if m["human_only"] == true {
				tr = append(tr, entry+" human_only: cancelled by the driver")
				send(map[string]any{"id": id, "cancel": true})
				continue
			}
			v, ok := ans[id]
			if !ok && m["optional"] == true && !answered[id] {
				// An optional prompt the answers leave out: empty, the procedure's default.
				tr = append(tr, entry+" (optional: left empty)")
				answered[id] = true
				send(map[string]any{"id": id, "value": ""})
				continue
			}
			if !ok || answered[id] {
				// No answer, or the one given was refused (invalid): give up.
				tr = append(tr, entry+": no answer, cancelled")
				send(map[string]any{"id": id, "cancel": true})
				continue
			}
			tr = append(tr, entry)
			answered[id] = true
			send(map[string]any{"id": id, "value": answerText(v, kind)})
		case "invalid":
			tr = append(tr, fmt.Sprintf("invalid %s: %s", id, m["message"]))
			send(map[string]any{"id": id, "cancel": true})
		case "error":
			tr = append(tr, fmt.Sprintf("protocol error %s: %s", id, m["message"]))
		case "say":
			tr = append(tr, fmt.Sprintf("%s: %s", m["level"], m["text"]))
		case "progress":
			if m["fraction"] == nil {
				tr = append(tr, fmt.Sprintf("progress %s: %s", id, m["label"]))
			}
		case "progress_done":
			tr = append(tr, fmt.Sprintf("progress_done %s ok=%v", id, m["ok"]))
		}
	}
	code = <-done
	inW.Close()
	return tr, code, all.String(), errBuf.String()
}

var (
	reTime   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	rePort   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reHex    = regexp.MustCompile(`\b[0-9a-f]{16,}\b`)
	reModule = regexp.MustCompile(`/usr/lib/\S*softhsm2\.so`)
)

// normalise replaces what changes from run to run: serials, key ids, times, ports, paths.
func normalise(s string, b backend, ca *enrollCA) string {
	if b.serial != "" {
		s = strings.ReplaceAll(s, b.serial, "<SERIAL>")
	}
	s = strings.ReplaceAll(s, ca.keyFile, "<KEY_FILE>")
	s = strings.ReplaceAll(s, ca.dir, "<CA_DIR>")
	s = strings.ReplaceAll(s, os.TempDir(), "<TMP>")
	s = reTime.ReplaceAllString(s, "<TIME>")
	s = rePort.ReplaceAllString(s, "127.0.0.1:<PORT>")
	s = reModule.ReplaceAllString(s, "<MODULE>")
	return reHex.ReplaceAllString(s, "<HEX>")
}

// assertNoSecrets fails when any secret typed (as typed or upper-cased) shows in out.
func assertNoSecrets(t *testing.T, ans map[string]any, out string) {
	t.Helper()
	for _, id := range secretIDs {
		v, ok := ans[id]
		if !ok {
			continue
		}
		s := fmt.Sprint(v)
		if len(s) < 4 {
			continue
		}
		assert.NotContains(t, out, s, "secret %s leaked", id)
		assert.NotContains(t, out, strings.ToUpper(s), "secret %s leaked", id)
	}
}
