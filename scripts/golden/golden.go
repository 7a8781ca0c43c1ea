// Package golden runs the golden cases of a scripts tree: tests/<procedure>/<case>/ with
// answers.yaml, an optional setup.yaml and expected.golden. One runner serves both
// TestProcedureGoldens (software token and SoftHSM2, -update) and `tokenrun scripts check
// DIR` (software token only): it drives the CLI in process (Options.Main, since nothing
// imports cmd) with --ui json against a development CA.
package golden

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

const (
	// The OTP PIN of the enrollment CA's user: 11 characters, as the region wants.
	EnrollUser = "qq111111_qwertyui"
	EnrollOTP  = "AB1CD0EFG2H"

	BackendSoft     = "soft"
	BackendSoftHSM2 = "softhsm2"
)

// secretIDs are the prompt ids whose answers must never show anywhere.
var secretIDs = []string{"otp_pin", "key_password", "current_pin", "new_pin", "new_pin_confirm", "so_pin"}

// Setup is setup.yaml: the starting state of a golden case.
type Setup struct {
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
	// Request is a web page's request for the agent's sign_request procedure (NCALayer's
	// {module, method, args}), written to a file and given with --request.
	Request map[string]any `yaml:"request"`
}

// Case is one case directory, read from a tests tree.
type Case struct {
	Proc, Name string // the procedure's directory (change_pin) and the case's
	Setup      Setup
	fsys       fs.FS // the tests tree
}

// Path is the case's directory in the tests tree: <procedure>/<case>.
func (c Case) Path() string { return c.Proc + "/" + c.Name }

// Skip says why the case does not run on backend, "" when it does.
func (c Case) Skip(be string) string {
	if be == BackendSoftHSM2 && c.Setup.SoftOnly != "" {
		return "software token only: " + c.Setup.SoftOnly
	}
	if be == BackendSoft && c.Setup.NoToken {
		return "a software token source always has its token: SoftHSM2 only"
	}
	return ""
}

// File is the file holding the case's expected transcript on backend: a module
// that truly differs (SoftHSM2 reports no tries left) keeps its own.
func (c Case) File(be string) string {
	own := path.Join(c.Path(), "expected."+be+".golden")
	if _, err := fs.Stat(c.fsys, own); err == nil {
		return own
	}
	return path.Join(c.Path(), "expected.golden")
}

// Expected is the case's expected transcript on backend.
func (c Case) Expected(be string) (string, error) {
	b, err := readfile.ReadFS(c.fsys, c.File(be), readfile.Record)
	if err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}
	return string(b), nil
}

// LoadCases reads every <procedure>/<case>/ directory of the tests tree fsys.
func LoadCases(fsys fs.FS) ([]Case, error) {
	procs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("golden cases: %w", err)
	}
	var cases []Case
	for _, p := range procs {
		if !p.IsDir() {
			continue
		}
		dirs, err := fs.ReadDir(fsys, p.Name())
		if err != nil {
			return nil, fmt.Errorf("golden cases: %w", err)
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			c := Case{Proc: p.Name(), Name: d.Name(), fsys: fsys}
			raw, err := readfile.ReadFS(fsys, path.Join(c.Path(), "setup.yaml"), readfile.Record)
			switch {
			case err == nil:
				if err := yaml.Unmarshal(raw, &c.Setup); err != nil {
					return nil, fmt.Errorf("golden %s: setup.yaml: %w", c.Path(), err)
				}
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("golden %s: %w", c.Path(), err)
			}
			cases = append(cases, c)
		}
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Path() < cases[j].Path() })
	return cases, nil
}

// Backend is where a case's token lives.
type Backend struct {
	Name string
	// Source is the --soft/--module flags for the token(s).
	Source []string
	Serial string
	Dir    string // software token directory; "" on SoftHSM2
}

// Options configures one run of a case.
type Options struct {
	Backend string // BackendSoft or BackendSoftHSM2
	// Scripts is the tree the procedures run from (--scripts); "" for the shipped one.
	Scripts string
	// TempDir holds the case's CA, tokens, answers and TOKENRUN_HOME.
	TempDir string
	// Plug plugs in the case's token(s) on a backend other than the software token
	// (SoftHSM2 needs the test harness).
	Plug func(st Setup) (Backend, error)
	// Main runs the CLI in process.
	Main Main
	// CheckJSON, when set, checks everything a case run over --ui json wrote to stdout (the
	// tests validate it against docs/protocol.schema.json).
	CheckJSON func(stdout string) error
	// Screen, when set, gets what the run wrote before normalising: stdout (JSON lines, or
	// nothing) and stderr. The language test reads the person's screen from it.
	Screen func(stdout, stderr string)
}

// CA is a development CA with one user whose initial key opens with EnrollOTP,
// served on loopback unless it is down.
type CA struct {
	Dir, URL, KeyFile, Roots string
	Listener                 net.Listener
	Authority                *devca.CA // the CA itself, for a test that serves it its own way
	stop                     func()
}

// NewCA makes the CA in tmp with main (tokenrun ca init, ca add-user); Start serves it.
func NewCA(tmp string, main Main) (*CA, error) {
	c := &CA{Dir: filepath.Join(tmp, "ca"), KeyFile: filepath.Join(tmp, "Key.pfx"), stop: func() {}}
	if _, err := main.run("ca", "init", c.Dir); err != nil {
		return nil, err
	}
	if _, err := main.run("ca", "add-user", "--dir", c.Dir, "--user-id", EnrollUser, "--pin", EnrollOTP, "--out", c.KeyFile); err != nil {
		return nil, err
	}
	a, err := devca.Open(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("golden CA: %w", err)
	}
	c.Authority = a
	if c.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("golden CA: %w", err)
	}
	c.URL = "https://" + c.Listener.Addr().String()
	c.Roots = filepath.Join(c.Dir, devca.RootCertFile)
	return c, nil
}

// Start serves the CA on its listener until Stop.
func (c *CA) Start(opts devca.ServerOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Authority.ServeListener(ctx, c.Listener, opts) }()
	c.stop = func() { cancel(); <-done }
}

// Stop stops serving.
func (c *CA) Stop() { c.stop() }

// Args are the --set flags that point a procedure at the CA.
func (c *CA) Args() []string {
	return []string{"--set", "ca.url=" + c.URL, "--set", "ca.roots=" + c.Roots}
}

// Main is the CLI's entry point run in process (cmd/tokenrun's runMain): args[0] is
// "tokenrun"; it returns the exit code.
type Main func(args []string, in io.Reader, out, errOut io.Writer) int

// run runs tokenrun in process and fails unless it exits 0.
func (m Main) run(args ...string) (stdout string, err error) {
	var out, errOut bytes.Buffer
	if code := m(append([]string{"tokenrun"}, args...), strings.NewReader(""), &out, &errOut); code != runner.ExitOK {
		return "", fmt.Errorf("tokenrun %s: exit %d: %s", args[0], code, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// isolateEnv points TOKENRUN_HOME at home and clears the other TOKENRUN_ variables, so
// a case runs the same whatever the caller's environment; it returns what puts them back.
func isolateEnv(home string) func() {
	var restore []func()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TOKENRUN_") && k != "TOKENRUN_HOME" {
			old := os.Getenv(k)
			os.Unsetenv(k)
			restore = append(restore, func() { os.Setenv(k, old) })
		}
	}
	old, had := os.LookupEnv("TOKENRUN_HOME")
	os.Setenv("TOKENRUN_HOME", home)
	restore = append(restore, func() {
		if had {
			os.Setenv("TOKENRUN_HOME", old)
		} else {
			os.Unsetenv("TOKENRUN_HOME")
		}
	})
	return func() {
		for _, f := range restore {
			f()
		}
	}
}

// Run runs c once and returns its normalised transcript. An error means the
// case could not be set up, or a secret leaked; comparing with the golden is the caller's.
func Run(ctx context.Context, c Case, opts Options) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}
	st := c.Setup
	home := filepath.Join(opts.TempDir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}
	defer isolateEnv(home)()

	ca, err := NewCA(opts.TempDir, opts.Main)
	if err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}
	switch st.CA {
	case "down":
		// Connections are refused.
		if err := ca.Listener.Close(); err != nil {
			return "", fmt.Errorf("golden %s: %w", c.Path(), err)
		}
	case "pending":
		ca.Start(devca.ServerOptions{PendingFirst: 1})
	default:
		ca.Start(devca.ServerOptions{})
	}
	defer func() { ca.stop() }()

	var b Backend
	if opts.Backend == BackendSoft {
		b, err = softBackend(opts.TempDir, st, opts.Main)
	} else if opts.Plug == nil {
		err = fmt.Errorf("no way to plug in a %s token", opts.Backend)
	} else {
		b, err = opts.Plug(st)
	}
	if err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}
	vars := map[string]string{"KEY_FILE": ca.KeyFile, "ROOTS": ca.Roots}
	ans, err := loadAnswers(c.fsys, path.Join(c.Path(), "answers.yaml"), vars)
	if err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}
	if err := prepareCase(opts.TempDir, st, b, ca, opts.Main); err != nil {
		return "", fmt.Errorf("golden %s: %w", c.Path(), err)
	}

	lang := st.Lang
	if lang == "" {
		lang = "en"
	}
	args := append([]string{strings.ReplaceAll(c.Proc, "_", "-")}, b.Source...)
	args = append(args, ca.Args()...)
	args = append(args, "--lang", lang, "--set", "token.wait=1s")
	if opts.Scripts != "" {
		args = append(args, "--scripts", opts.Scripts)
	}
	if st.SelectFirst {
		args = append(args, "--token", "pkcs11:serial="+b.Serial)
	}
	args = append(args, st.Args...)
	if st.Request != nil {
		f, err := writeRequest(opts.TempDir, st.Request)
		if err != nil {
			return "", fmt.Errorf("golden %s: %w", c.Path(), err)
		}
		args = append(args, "--request", f)
	}

	var tr []string
	var code int
	var stdout, stderr string
	if st.Mode == "answers" {
		f, err := WriteAnswers(opts.TempDir, ans)
		if err != nil {
			return "", fmt.Errorf("golden %s: %w", c.Path(), err)
		}
		var out, errOut bytes.Buffer
		code = opts.Main(append([]string{"tokenrun"}, append(args, "--answers", f, "--yes")...), strings.NewReader(""), &out, &errOut)
		stdout, stderr = out.String(), errOut.String()
	} else {
		tr, code, stdout, stderr, err = DriveJSON(opts.Main, append(args, "--ui", "json"), ans)
		if err == nil && opts.CheckJSON != nil {
			err = opts.CheckJSON(stdout)
		}
		if err != nil {
			return "", fmt.Errorf("golden %s: %w", c.Path(), err)
		}
	}
	// The tree under test is unsigned by design: its warning is not the procedure's.
	unsigned := "warning: running unsigned scripts from " + opts.Scripts
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && (opts.Scripts == "" || l != unsigned) {
			tr = append(tr, "stderr: "+l)
		}
	}
	tr = append(tr, fmt.Sprintf("exit %d", code))
	if opts.Screen != nil {
		opts.Screen(stdout, stderr)
	}
	got := normalise(strings.Join(tr, "\n")+"\n", b.Serial, ca.KeyFile, ca.Dir)
	if err := NoSecrets(ans, stdout+stderr+got); err != nil {
		return got, fmt.Errorf("golden %s on %s: %w", c.Path(), opts.Backend, err)
	}
	return got, nil
}

// prepareCase puts the token and the journal in the state setup.yaml asks for.
func prepareCase(tmp string, st Setup, b Backend, ca *CA, main Main) error {
	if st.Enrolled {
		if err := enrollOnce(tmp, b, ca, main); err != nil {
			return err
		}
	}
	if st.BareKey != "" {
		if err := bareKey(tmp, b, st.BareKey, main); err != nil {
			return err
		}
	}
	if st.Journal != nil {
		s, err := journal.Open(filepath.Join(os.Getenv("TOKENRUN_HOME"), "journal"))
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if _, err := s.Record(b.Serial, "enroll", st.Journal.Step, st.Journal.Data); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if st.UserTries != nil {
		if err := soft.SetTries(b.Dir, token.User, *st.UserTries); err != nil {
			return fmt.Errorf("user tries: %w", err)
		}
	}
	if st.SOTries != nil {
		if err := soft.SetTries(b.Dir, token.SO, *st.SOTries); err != nil {
			return fmt.Errorf("SO tries: %w", err)
		}
	}
	return nil
}

// softBackend plugs in the case's software token(s) under tmp.
func softBackend(tmp string, st Setup, main Main) (Backend, error) {
	b := Backend{Name: BackendSoft, Dir: filepath.Join(tmp, "tok")}
	b.Source = []string{"--soft", b.Dir}
	for i := range st.ExtraTokens {
		b.Source = append(b.Source, "--soft", filepath.Join(tmp, fmt.Sprintf("other%d", i)))
	}
	// Create them all and learn the first one's serial.
	if _, err := main.run(append([]string{"tokens", "--json"}, b.Source...)...); err != nil {
		return b, err
	}
	out, err := main.run("tokens", "--json", "--soft", b.Dir)
	if err != nil {
		return b, err
	}
	var infos []token.Info
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		return b, fmt.Errorf("tokens --json: %w", err)
	}
	if len(infos) != 1 {
		return b, fmt.Errorf("tokens --json: %d tokens in %s, want 1", len(infos), b.Dir)
	}
	b.Serial = infos[0].Serial
	return b, nil
}

// enrollOnce leaves a finished profile on the token and closes its journal.
func enrollOnce(tmp string, b Backend, ca *CA, main Main) error {
	f, err := WriteAnswers(tmp, map[string]any{"validity": "1y", "user_id": EnrollUser, "otp_pin": EnrollOTP,
		"key_file": ca.KeyFile, "pin_is_password": true, "profile_name": "Main",
		"new_pin": "Kx7mQ9pz", "new_pin_confirm": "Kx7mQ9pz"})
	if err != nil {
		return err
	}
	_, err = main.run(append(append([]string{"enroll", "--answers", f, "--yes", "--lang", "en"}, b.Source...), ca.Args()...)...)
	return err
}

// bareKey generates a key with label and no certificate: what a run killed right after
// generating leaves.
func bareKey(tmp string, b Backend, label string, main Main) error {
	script := filepath.Join(tmp, "bare.lua")
	src := fmt.Sprintf(`
local token = require("token")
local tok = assert(token.wait { timeout = 5 })
assert(tok:login("12345678"))
assert(tok:generate_key { type = "ec", curve = "P-256", label = %q })
`, label)
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		return fmt.Errorf("bare key: %w", err)
	}
	_, err := main.run(append([]string{"run", script}, b.Source...)...)
	return err
}

// loadAnswers reads answers.yaml, with {{NAME}} replaced from vars; none is no answers.
func loadAnswers(fsys fs.FS, file string, vars map[string]string) (map[string]any, error) {
	raw, err := readfile.ReadFS(fsys, file, readfile.Answers)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("answers: %w", err)
	}
	text := string(raw)
	for k, v := range vars {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	ans := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &ans); err != nil {
		return nil, fmt.Errorf("answers.yaml: %w", err)
	}
	return ans, nil
}

// writeRequest writes a page's request as the JSON file sign-request reads.
func writeRequest(tmp string, req map[string]any) (string, error) {
	f := filepath.Join(tmp, "request.json")
	b, err := json.Marshal(req)
	if err == nil {
		err = os.WriteFile(f, b, 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	return f, nil
}

// WriteAnswers writes ans as an answers file in a new directory under tmp.
func WriteAnswers(tmp string, ans map[string]any) (string, error) {
	b, err := yaml.Marshal(ans)
	if err != nil {
		return "", fmt.Errorf("answers: %w", err)
	}
	dir, err := os.MkdirTemp(tmp, "answers")
	if err != nil {
		return "", fmt.Errorf("answers: %w", err)
	}
	f := filepath.Join(dir, "answers.yaml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		return "", fmt.Errorf("answers: %w", err)
	}
	return f, nil
}

// AnswerText is what the driver sends for an answer: YAML booleans become yes/no for a
// confirmation and true/false otherwise.
func AnswerText(v any, kind string) string {
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

// SyncBuffer is a bytes.Buffer safe for the run's goroutine and the driver (a test's reference driver uses it too).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// DriveJSON runs tokenrun with --ui json in process and answers its prompts from ans, as a
// GUI would. The transcript records each ask (id, kind), message, progress and invalid
// answer. A prompt marked human_only, or one without an answer, is cancelled. A line that
// is not JSON is an error, once the run has ended.
func DriveJSON(main Main, args []string, ans map[string]any) (tr []string, code int, stdout, stderr string, err error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errBuf SyncBuffer
	var all bytes.Buffer
	done := make(chan int, 1)
	go func() {
		c := main(append([]string{"tokenrun"}, args...), inR, outW, &errBuf)
		outW.Close()
		done <- c
	}()
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	answered := map[string]bool{}
	running := map[string]bool{} // progress ids started and not done
	send := func(m map[string]any) {
		b, _ := json.Marshal(m)
		go func() { _, _ = inW.Write(append(b, '\n')) }()
	}
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		var m map[string]any
		if jerr := json.Unmarshal([]byte(line), &m); jerr != nil {
			if err == nil {
				err = fmt.Errorf("--ui json wrote %q: %w", line, jerr)
			}
			continue
		}
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
			send(map[string]any{"id": id, "value": AnswerText(v, kind)})
		case "invalid":
			tr = append(tr, fmt.Sprintf("invalid %s: %s", id, m["message"]))
			send(map[string]any{"id": id, "cancel": true})
		case "error":
			tr = append(tr, fmt.Sprintf("protocol error %s: %s", id, m["message"]))
		case "say":
			tr = append(tr, fmt.Sprintf("%s: %s", m["level"], m["text"]))
		case "progress":
			switch note, _ := m["note"].(string); {
			case m["fraction"] == nil && note != "":
				// An update with words for the person (the CA's countdown).
				tr = append(tr, fmt.Sprintf("progress %s note: %s", id, note))
			case m["fraction"] == nil && !running[id]:
				// The start; a retried CA request moves on with fraction null and no note too.
				tr = append(tr, fmt.Sprintf("progress %s: %s", id, m["label"]))
			}
			running[id] = true
		case "progress_done":
			running[id] = false
			tr = append(tr, fmt.Sprintf("progress_done %s ok=%v", id, m["ok"]))
		case "result":
			// The outcome and the result table's fields (their values change from run to run).
			var keys []string
			if r, ok := m["result"].(map[string]any); ok {
				for k := range r {
					keys = append(keys, k)
				}
				sort.Strings(keys)
			}
			code, _ := m["code"].(string)
			tr = append(tr, strings.Join(strings.Fields(fmt.Sprintf("result %v %s exit=%v %s", m["outcome"], code, m["exit"], strings.Join(keys, " "))), " "))
		}
	}
	code = <-done
	inW.Close()
	return tr, code, all.String(), errBuf.String(), err
}

var (
	reTime   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	rePort   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reHex    = regexp.MustCompile(`\b[0-9a-f]{16,}\b`)
	reModule = regexp.MustCompile(`/usr/lib/\S*softhsm2\.so`)
	// A time as the catalogs render it ({t|date}, {t|day}) in en, ru and kk: local, so it
	// changes with the machine's zone as well as the run.
	reLocalTime = regexp.MustCompile(`\d{1,2} (?:January|February|March|April|May|June|July|August|September|October|November|December|` +
		`января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря) \d{4}(?: г\.)?(?:, \d\d:\d\d)?|` +
		`\d{4} жылғы \d{1,2} (?:қаңтар|ақпан|наурыз|сәуір|мамыр|маусым|шілде|тамыз|қыркүйек|қазан|қараша|желтоқсан)(?:, \d\d:\d\d)?`)
)

// normalise replaces what changes from run to run: serials, key ids, times, ports,
// paths.
func normalise(s, serial, keyFile, caDir string) string {
	if serial != "" {
		s = strings.ReplaceAll(s, serial, "<SERIAL>")
	}
	s = strings.ReplaceAll(s, keyFile, "<KEY_FILE>")
	s = strings.ReplaceAll(s, caDir, "<CA_DIR>")
	s = strings.ReplaceAll(s, os.TempDir(), "<TMP>")
	s = reTime.ReplaceAllString(s, "<TIME>")
	s = reLocalTime.ReplaceAllString(s, "<TIME>")
	s = rePort.ReplaceAllString(s, "127.0.0.1:<PORT>")
	s = reModule.ReplaceAllString(s, "<MODULE>")
	return reHex.ReplaceAllString(s, "<HEX>")
}

// NoSecrets is an error when any secret typed (as typed or upper-cased) shows in out.
func NoSecrets(ans map[string]any, out string) error {
	var leaked []string
	for _, id := range secretIDs {
		v, ok := ans[id]
		if !ok {
			continue
		}
		s := fmt.Sprint(v)
		if len(s) < 4 {
			continue
		}
		if strings.Contains(out, s) || strings.Contains(out, strings.ToUpper(s)) {
			leaked = append(leaked, id)
		}
	}
	if len(leaked) > 0 {
		return fmt.Errorf("secret(s) leaked: %s", strings.Join(leaked, ", "))
	}
	return nil
}

// Diff is a short account of how got differs from want: the first differing line.
func Diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if i >= len(w) || i >= len(g) || wl != gl {
			var sb strings.Builder
			fmt.Fprintf(&sb, "line %d:", i+1)
			if i < len(w) {
				fmt.Fprintf(&sb, "\n  - %s", wl)
			}
			if i < len(g) {
				fmt.Fprintf(&sb, "\n  + %s", gl)
			}
			return sb.String()
		}
	}
	return "identical"
}
