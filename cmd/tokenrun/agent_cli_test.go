package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/agent/agenttest"
	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// Mistakes on the agent's command line stop it before it listens, with exit 2.
func TestAgentUsage(t *testing.T) {
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	tok := filepath.Join(tmp, "tok")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"every interface", []string{"agent", "--soft", tok, "--listen", "0.0.0.0:13579"}, "the agent serves loopback only"},
		{"another machine's address", []string{"agent", "--soft", tok, "--listen", "192.168.1.5:13579"}, "the agent serves loopback only"},
		{"no port", []string{"agent", "--soft", tok, "--listen", "127.0.0.1"}, "want HOST:PORT"},
		{"tls", []string{"agent", "--soft", tok, "--tls", "maybe"}, `--tls "maybe": want auto or off`},
		{"person", []string{"agent", "--soft", tok, "--person", "robot"}, `--person "robot": want wizard, terminal or json`},
		{"an argument", []string{"agent", "--soft", tok, "install"}, "did you mean tokenrun agent install-cert?"},
		{"bad origin in --set", []string{"agent", "--soft", tok, "--set", "agent.origins=[ib.bank.kz]"}, `agent.origins[1]: "ib.bank.kz" is not an origin`},
		{"no CA yet", []string{"agent", "install-cert"}, "no agent certificate authority in"},
		{"no request file", []string{"sign-request", "--soft", tok, "--request", filepath.Join(tmp, "none.json")}, "none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tokenrun(t, "", tt.args...)
			assert.Equal(t, runner.ExitUsage, r.code, r.err)
			assert.Contains(t, r.err, tt.want)
		})
	}
}

// sign-request refuses a request the agent would refuse before asking anyone, in the
// catalog's words (the developer's details with --debug), with exit 2 and nothing on stdout
// (no run began: the JSON protocol's "fails before the hello").
func TestSignRequestRefusals(t *testing.T) {
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	tok := filepath.Join(tmp, "tok")
	tests := []struct {
		name, request, lang, want, debug string
	}{
		{"xml", `{"module":"kz.gov.pki.knca.basics","method":"sign","args":{"format":"xml","data":"<order/>"}}`, "ru",
			"tokenrun: Подпись XML пока не поддерживается: страница может запросить подпись CMS.", "NOT_SUPPORTED: format xml (XMLDSig) is not supported yet"},
		{"keys in files", `{"module":"kz.gov.pki.knca.basics","method":"sign","args":{"allowedStorages":["PKCS12"],"format":"cms","data":"MTEK"}}`, "kk",
			"tokenrun: Файлдағы кілттер (PKCS12, JKS) мұнда қолданылмайды: KAZTOKEN токенімен қол қойыңыз.", "STORAGE_REFUSED: allowedStorages [PKCS12]"},
		{"malformed", `{"module":"kz.gov.pki.knca.commonUtils","method":"getKeyInfo","args":[1]}`, "en",
			"tokenrun: The page sent a request this program cannot read.", "BAD_REQUEST: argument type mismatch. Method: getKeyInfo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := filepath.Join(t.TempDir(), "request.json")
			require.NoError(t, os.WriteFile(req, []byte(tt.request), 0o600))
			resp := filepath.Join(t.TempDir(), "response.json")
			r := tokenrun(t, "", "sign-request", "--soft", tok, "--request", req, "--lang", tt.lang, "--ui", "json", "--response", resp, "--debug")
			assert.Equal(t, runner.ExitUsage, r.code, r.err)
			assert.Empty(t, r.stdout)
			assert.Contains(t, r.err, tt.want)
			assert.Contains(t, r.err, tt.debug)
			b, err := os.ReadFile(resp)
			require.NoError(t, err)
			assert.Regexp(t, `"status":false|"code":"500"`, string(b), "the page's answer is kept")
		})
	}
}

// tokenrun agent --tls auto makes its CA once and serves wss:// with it; install-cert adds the
// CA to an NSS database (the real certutil) and says how to undo it; uninstall-cert removes it.
func TestAgentTLSAndTrust(t *testing.T) {
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		p11test.Unavailable(t, "certutil not found: apt-get install libnss3-tools")
	}
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	home := os.Getenv("TOKENRUN_HOME")
	a := startAgentTLS(t, "--soft", filepath.Join(tmp, "tok"), "--set", "agent.origins=[https://ib.test.kz]")
	require.True(t, strings.HasPrefix(a.url, "wss://127.0.0.1:"), a.url)
	assert.Contains(t, a.stderrText(), "run tokenrun agent install-cert")

	ca, err := agent.TLSDir(home).CA()
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, a.url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}},
		HTTPHeader: http.Header{"Origin": {"https://ib.test.kz"}}})
	require.NoError(t, err)
	_, hello, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(hello), `"version"`)
	c.CloseNow()
	assert.Equal(t, 0, a.stop(t))

	db := filepath.Join(tmp, "nssdb")
	r := tokenrun(t, "", "agent", "install-cert", "--nssdb", db)
	require.Equal(t, 0, r.code, r.err)
	nick := agent.Nickname(ca)
	assert.Contains(t, r.stdout, "the NSS database sql:"+db+" (given with --nssdb): added \""+nick+"\"")
	assert.Contains(t, r.stdout, "undo: certutil -d sql:"+db+" -D -n \""+nick+"\"")
	out, err := exec.Command(certutil, "-L", "-d", "sql:"+db).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), nick)

	r = tokenrun(t, "", "agent", "uninstall-cert", "--nssdb", db)
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.stdout, "removed")
	assert.Contains(t, r.stdout, "undo: tokenrun agent install-cert")
	out, err = exec.Command(certutil, "-L", "-d", "sql:"+db).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), nick)

	// A second start reuses the CA: what was installed stays trusted.
	b := startAgentTLS(t, "--soft", filepath.Join(tmp, "tok"), "--set", "agent.origins=[https://ib.test.kz]")
	assert.NotContains(t, b.stderrText(), "made ")
	again, err := agent.TLSDir(home).CA()
	require.NoError(t, err)
	assert.Equal(t, ca.Raw, again.Raw)
	assert.Equal(t, 0, b.stop(t))
}

// A request's run keeps a transcript like every procedure's: it names the documents by their
// SHA-256, never holds them, and replays from the record alone (exit 0).
func TestSignRequestTranscriptReplays(t *testing.T) {
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	b, ca := enrolledSoft(t, tmp)

	req := filepath.Join(tmp, "request.json")
	doc := "Платёжное поручение № 18\n"
	require.NoError(t, os.WriteFile(req, []byte(`{"module":"kz.gov.pki.knca.basics","method":"sign","args":{"format":"cms","data":"`+
		base64.StdEncoding.EncodeToString([]byte(doc))+`","signingParams":{"encapsulate":true}}}`), 0o600))
	answers := writeAnswers(t, map[string]any{"sign_confirm": true, "current_pin": "Kx7mQ9pz"})
	resp := filepath.Join(tmp, "response.json")
	r := tokenrun(t, "", "sign-request", "--soft", b.Dir, "--request", req, "--origin", "https://ib.test.kz", "--answers", answers, "--yes", "--response", resp)
	require.Equal(t, 0, r.code, r.err)
	var answer struct {
		Status bool `json:"status"`
		Body   struct {
			Result string `json:"result"`
		} `json:"body"`
	}
	raw, err := os.ReadFile(resp)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &answer))
	require.True(t, answer.Status)
	assert.Equal(t, doc, string(opensslVerifyCMS(t, answer.Body.Result, nil, ca.Roots)))

	kept, err := filepath.Glob(filepath.Join(os.Getenv("TOKENRUN_HOME"), "transcripts", "*-sign_request.jsonl"))
	require.NoError(t, err)
	require.Len(t, kept, 1)
	text, err := os.ReadFile(kept[0])
	require.NoError(t, err)
	assert.NotContains(t, string(text), "Платёжное")
	sum := sha256.Sum256([]byte(doc))
	assert.Contains(t, string(text), hex.EncodeToString(sum[:]))
	assert.Contains(t, string(text), `"origin":"https://ib.test.kz"`)

	r = tokenrun(t, "", "replay", kept[0])
	assert.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.stdout+r.err, "reproduced: sign_request 1.0.0")
}

// The wizard offers the client's procedures, not the agent's: sign_request runs for a page's
// request only.
func TestWizardLeavesSignRequestToTheAgent(t *testing.T) {
	set, err := scripts.Embedded()
	require.NoError(t, err)
	require.Contains(t, set.Procedures, "sign_request")
	w := &wizardSource{set: set, catalogs: map[string]map[string]string{"en": {}}}
	procs, err := w.procedures("en")
	require.NoError(t, err)
	require.NotEmpty(t, procs)
	for _, p := range procs {
		assert.NotEqual(t, "sign_request", p.Name)
	}
}

// Ctrl-C while a request waits for the person: the request is cancelled, its run keeps its
// transcript and audit line, and the agent exits 0.
func TestAgentStopsWithARequestOpen(t *testing.T) {
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	home := os.Getenv("TOKENRUN_HOME")
	b, _ := enrolledSoft(t, tmp)
	a := startAgent(t, []agenttest.Plan{{Silent: true}}, "--soft", b.Dir, "--set", "agent.origins=[https://ib.test.kz]")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, a.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://ib.test.kz"}}})
	require.NoError(t, err)
	defer c.CloseNow()
	_, _, err = c.Read(ctx) // hello
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"module":"kz.gov.pki.knca.basics","method":"sign","args":{"format":"cms","data":"MTEK"}}`)))
	require.Eventually(t, a.asked, 30*time.Second, 20*time.Millisecond, "the person is asked")
	assert.Equal(t, 0, a.stop(t), a.stderrText())
	entries, err := audit.Tail(audit.Dir(home), 10)
	require.NoError(t, err)
	require.Len(t, entries, 1, a.stderrText())
	assert.Equal(t, audit.Cancelled, entries[0].Outcome)
	kept, err := filepath.Glob(filepath.Join(home, "transcripts", "*-sign_request.jsonl"))
	require.NoError(t, err)
	require.Len(t, kept, 1)
	text, err := os.ReadFile(kept[0])
	require.NoError(t, err)
	assert.Contains(t, string(text), `"outcome":"cancelled"`)
}

// enrolledSoft is a software token under tmp enrolled against a development CA on loopback
// (served until the test ends), as setup `enrolled` leaves it: password Kx7mQ9pz.
func enrolledSoft(t *testing.T, tmp string) (golden.Backend, *golden.CA) {
	t.Helper()
	ca, err := golden.NewCA(tmp, runMain)
	require.NoError(t, err)
	ca.Start(devca.ServerOptions{})
	t.Cleanup(ca.Stop)
	b, err := golden.SoftBackend(tmp, runMain)
	require.NoError(t, err)
	require.NoError(t, golden.EnrollOnce(tmp, b, ca, runMain))
	return b, ca
}
