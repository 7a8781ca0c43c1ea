package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent/agenttest"
	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// nodeDir is the Node project of the published NCALayer client (package.json, its lockfile).
const nodeDir = "../../agent/testdata/node"

// needNode finds node and the client's node_modules (`npm ci` in .ci/run; here if missing). A
// missing node or npm fails under CI=true, as every interop tool does.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		p11test.Unavailable(t, "node not found: apt-get install nodejs npm (then npm ci in %s)", nodeDir)
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "ncalayer-js-client", "ncalayer-client.js")); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			p11test.Unavailable(t, "npm not found: apt-get install npm, then npm ci in %s", nodeDir)
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci: %s", out)
	}
	return node
}

// agentProc is a `tokenrun agent --person json` process whose person the test plays.
type agentProc struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	runs   [][]agenttest.Line
	stdout golden.SyncBuffer // the --person json lines, as they come
	stderr bytes.Buffer
	done   chan struct{}
}

// startAgent starts the agent on ws:// with args and answers its runs with plans, in order.
func startAgent(t *testing.T, plans []agenttest.Plan, args ...string) *agentProc {
	t.Helper()
	return launchAgent(t, plans, append([]string{"--tls", "off"}, args...))
}

// startAgentTLS starts the agent on wss:// with its own certificate.
func startAgentTLS(t *testing.T, args ...string) *agentProc {
	t.Helper()
	return launchAgent(t, nil, append([]string{"--tls", "auto"}, args...))
}

func launchAgent(t *testing.T, plans []agenttest.Plan, args []string) *agentProc {
	t.Helper()
	a := &agentProc{done: make(chan struct{})}
	a.cmd = exec.Command(tokenrunBinary(t), append([]string{"agent", "--listen", "127.0.0.1:0", "--person", "json", "--lang", "en"}, args...)...)
	stdin, err := a.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := a.cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := a.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, a.cmd.Start())
	t.Cleanup(func() { _ = a.cmd.Process.Kill() })
	var next sync.Mutex
	go agenttest.AnswerRuns(io.TeeReader(stdout, &a.stdout), stdin, func() agenttest.Plan {
		next.Lock()
		defer next.Unlock()
		if len(plans) == 0 {
			return agenttest.Plan{Cancel: true}
		}
		p := plans[0]
		plans = plans[1:]
		return p
	}, func(lines []agenttest.Line, err error) {
		a.mu.Lock()
		a.runs = append(a.runs, lines)
		a.mu.Unlock()
		assert.NoError(t, err)
	})
	listening := make(chan string, 1)
	go func() {
		defer close(a.done)
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`listening on (wss?://127\.0\.0\.1:\d+)`)
		for sc.Scan() {
			a.mu.Lock()
			a.stderr.WriteString(sc.Text() + "\n")
			a.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			}
		}
	}()
	select {
	case a.url = <-listening:
	case <-a.done:
		t.Fatalf("the agent stopped before listening: %s", a.stderrText())
	case <-time.After(time.Minute):
		t.Fatalf("the agent did not listen within a minute: %s", a.stderrText())
	}
	return a
}

// asked reports whether the agent has asked the person a question.
func (a *agentProc) asked() bool {
	return strings.Contains(a.stdout.String(), `"type":"ask"`)
}

func (a *agentProc) stderrText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stderr.String()
}

// stop interrupts the agent as Ctrl-C does and returns its exit code.
func (a *agentProc) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, a.cmd.Process.Signal(os.Interrupt))
	select {
	case <-a.done:
	case <-time.After(time.Minute):
		t.Fatal("the agent did not stop within a minute of SIGINT")
	}
	_ = a.cmd.Wait()
	return a.cmd.ProcessState.ExitCode()
}

// enrolledSoftHSM is a SoftHSM2 token enrolled against a development CA on loopback, with
// TOKENRUN_HOME in home; it returns the module, the CA's root file and the token's password.
func enrolledSoftHSM(t *testing.T, tmp string) (module, roots, pin string) {
	t.Helper()
	module = p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
	ca, err := golden.NewCA(tmp, runMain)
	require.NoError(t, err)
	ca.Start(devca.ServerOptions{})
	t.Cleanup(ca.Stop)
	b := golden.Backend{Name: golden.BackendSoftHSM2, Source: []string{"--module", tk.Module}, Serial: tk.Serial}
	require.NoError(t, golden.EnrollOnce(tmp, b, ca, runMain))
	return module, ca.Roots, "Kx7mQ9pz"
}

// opensslVerifyCMS checks a signature the agent gave with openssl cms -verify against the dev
// CA: PEM (basics) or base64 DER (commonUtils); content nil for an attached one, whose
// document it returns.
func opensslVerifyCMS(t *testing.T, sig string, content []byte, roots string) []byte {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		p11test.Unavailable(t, "openssl not found: apt-get install openssl")
	}
	dir := t.TempDir()
	in, form := filepath.Join(dir, "sig"), "PEM"
	data := []byte(sig)
	if !strings.HasPrefix(sig, "-----BEGIN CMS-----") {
		var err error
		data, err = base64.StdEncoding.DecodeString(sig)
		require.NoError(t, err, "a commonUtils signature is base64")
		form = "DER"
	}
	require.NoError(t, os.WriteFile(in, data, 0o600))
	out := filepath.Join(dir, "out")
	args := []string{"cms", "-verify", "-binary", "-inform", form, "-in", in, "-CAfile", roots, "-out", out}
	if content != nil {
		doc := filepath.Join(dir, "doc")
		require.NoError(t, os.WriteFile(doc, content, 0o600))
		args = append(args, "-content", doc)
	}
	msg, err := exec.Command(openssl, args...).CombinedOutput()
	require.NoError(t, err, "openssl %s: %s", strings.Join(args, " "), msg)
	require.Contains(t, string(msg), "Verification successful")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	return got
}

// TestAgentNCALayerClient: the published ncalayer-js-client, unchanged, in Node, against a
// real tokenrun agent on a SoftHSM2 token enrolled against the development CA; the test
// plays the person over --person json. Every signature is checked with openssl.
func TestAgentNCALayerClient(t *testing.T) {
	node := needNode(t)
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	module, roots, pin := enrolledSoftHSM(t, tmp)
	const origin = "https://ib.test.kz"
	a := startAgent(t, []agenttest.Plan{
		agenttest.Confirmed(pin), // attached
		agenttest.Confirmed(pin), // detached
		agenttest.Confirmed(pin), // three documents, one consent and one login
		agenttest.Confirmed(pin), // createCAdESFromBase64
		{Confirm: true},          // getKeyInfo: no password
		{Cancel: true},           // the person cancels
		agenttest.Confirmed("Wrong9pin"),
	}, "--module", module, "--set", "agent.origins=["+origin+"]", "--set", "token.wait=5s")

	docs := [][]byte{[]byte("Платёжное поручение № 17: 150 000,00 KZT\n"), []byte("order 2\n"), {0x25, 0x50, 0x44, 0x46, 0, 1, 2}}
	enc := make([]string, len(docs))
	for i, d := range docs {
		enc[i] = base64.StdEncoding.EncodeToString(d)
	}
	docsJSON, _ := json.Marshal(enc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ncalayer.js")
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "AGENT_URL="+a.url, "ORIGIN="+origin, "OTHER_ORIGIN=https://evil.example", "DOCS="+string(docsJSON))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node: %s\nagent: %s", stderr.String(), a.stderrText())

	type step struct {
		Step           string  `json:"step"`
		Result         any     `json:"result"`
		Error          string  `json:"error"`
		CanceledByUser bool    `json:"canceledByUser"`
		MS             float64 `json:"ms"`
	}
	steps := map[string]step{}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s step
		require.NoError(t, json.Unmarshal([]byte(line), &s), "%s", line)
		steps[s.Step] = s
		order = append(order, s.Step)
		t.Logf("%s: %.1f ms", s.Step, s.MS)
	}
	require.Equal(t, []string{"connect", "getActiveTokens", "attached", "detached", "three", "createCAdESFromBase64", "getKeyInfo",
		"cancel", "wrongPIN", "pkcs12", "xml", "otherOrigin"}, order)

	assert.NotEmpty(t, steps["connect"].Result, "connect resolves with the version")
	assert.Equal(t, []any{"AKKaztokenStore"}, steps["getActiveTokens"].Result)
	sig := func(name string) string {
		s, ok := steps[name].Result.(string)
		require.True(t, ok, "%s: %+v", name, steps[name])
		return s
	}
	assert.Equal(t, docs[0], opensslVerifyCMS(t, sig("attached"), nil, roots), "attached: the document is inside")
	opensslVerifyCMS(t, sig("detached"), docs[0], roots)
	three, ok := steps["three"].Result.([]any)
	require.True(t, ok, "%+v", steps["three"])
	require.Len(t, three, 3)
	for i, s := range three {
		opensslVerifyCMS(t, s.(string), docs[i], roots)
	}
	opensslVerifyCMS(t, sig("createCAdESFromBase64"), docs[1], roots)
	info, ok := steps["getKeyInfo"].Result.(map[string]any)
	require.True(t, ok, "%+v", steps["getKeyInfo"])
	assert.Equal(t, "qq111111_qwertyui", info["subjectCn"])

	assert.True(t, steps["cancel"].CanceledByUser, "%+v", steps["cancel"])
	assert.Equal(t, "NCALayerError: cancelled by user", steps["cancel"].Error)
	assert.False(t, steps["wrongPIN"].CanceledByUser)
	assert.Contains(t, steps["wrongPIN"].Error, "NCALayerError: PIN_INCORRECT: Wrong token password.")
	assert.NotContains(t, steps["wrongPIN"].Error, "Wrong9pin")
	assert.Contains(t, steps["pkcs12"].Error, "STORAGE_REFUSED: Keys in files (PKCS12, JKS) are not used here")
	assert.Contains(t, steps["xml"].Error, "NOT_SUPPORTED: XML signing is not supported yet")
	assert.Equal(t, "NCALayerError: Ошибка взаимодействия с NCALayer. В том случае, если на вашем компьютере не установлен NCALayer, пожалуйста установите его c портала НУЦ РК (https://ncl.pki.gov.kz/). Если же NCALayer установлен, но портал выдает ошибку, свяжитесь, пожалуйста, с нашей технической поддержкой.",
		steps["otherOrigin"].Error, "another origin is refused at the handshake")
	assert.Contains(t, a.stderrText(), `refused a connection from "https://evil.example"`)

	// The person saw seven requests, each naming the page.
	a.mu.Lock()
	runs := a.runs
	a.mu.Unlock()
	require.Len(t, runs, 7)
	for _, lines := range runs {
		var text []string
		for _, l := range lines {
			if s, ok := l["text"].(string); ok {
				text = append(text, s)
			}
			if s, ok := l["label"].(string); ok {
				text = append(text, s)
			}
		}
		assert.Contains(t, strings.Join(text, "\n"), origin)
	}

	// tokenrun diagnose shows the running agent and the audit log's tail: digests, never content.
	d := tokenrun(t, "", "diagnose", "--text", "--probe=false")
	require.Equal(t, 0, d.code, d.err)
	assert.Regexp(t, `running: pid \d+ since .* on ws://127\.0\.0\.1:\d+, region default, person json, origins `+origin, d.stdout)
	assert.Contains(t, d.stdout, origin+" kz.gov.pki.knca.basics.sign 3 document(s) signed")
	assert.Contains(t, d.stdout, `https://evil.example connect 0 document(s) refused ORIGIN_REFUSED`)
	assert.NotContains(t, d.stdout, "Платёжное")

	assert.Equal(t, 0, a.stop(t), "Ctrl-C stops the agent cleanly: %s", a.stderrText())
	entries, err := audit.Tail(audit.Dir(os.Getenv("TOKENRUN_HOME")), 100)
	require.NoError(t, err)
	outcomes := map[string]int{}
	for _, e := range entries {
		outcomes[e.Outcome]++
	}
	assert.Equal(t, map[string]int{audit.Signed: 4, audit.Shown: 1, audit.Cancelled: 1, audit.Failed: 1, audit.Refused: 1}, outcomes)
	st, err := audit.ReadState(audit.Dir(os.Getenv("TOKENRUN_HOME")))
	require.NoError(t, err)
	assert.Nil(t, st, "a stopped agent leaves no state behind")
}
