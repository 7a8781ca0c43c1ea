package main

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/scripts/golden"
)

// bankPage serves a test page of the bank written against the published ncalayer-js-client,
// unchanged: it connects to the agent and signs one document, detached, putting the
// outcome in window.result.
func bankPage(t *testing.T, agentURL string, doc []byte) *httptest.Server {
	t.Helper()
	lib, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", "ncalayer-js-client", "ncalayer-client.js"))
	require.NoError(t, err, "npm ci in %s", nodeDir)
	page := fmt.Sprintf(`<!doctype html><meta charset="utf-8"><title>Internet banking</title>
<script src="/ncalayer-client.js"></script>
<script>
window.result = null;
(async () => {
  const client = new NCALayerClient(%q);
  try {
    await client.connect();
    const cms = await client.basicsSignCMS(NCALayerClient.basicsStorageKAZTOKEN, %q,
      NCALayerClient.basicsCMSParamsDetached, NCALayerClient.basicsSignerSignAny, "en");
    window.result = { cms };
  } catch (e) {
    window.result = { error: String(e), canceledByUser: Boolean(e.canceledByUser) };
  }
})();
</script>`, agentURL, base64.StdEncoding.EncodeToString(doc))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ncalayer-client.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(lib)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAgentInBrowser: the bank's page, in headless Chromium, signs a payment order through
// ncalayer-js-client over wss:// (the agent's certificate authority put into the browser's
// NSS database by tokenrun agent install-cert), while the test plays the client in the
// wizard's consent page: it shows the requesting origin and the document's start, the client
// confirms and types the password there, and the bank's page gets only the signature, which
// openssl checks. The same page from an origin not in agent.origins is refused at the
// handshake.
func TestAgentInBrowser(t *testing.T) {
	needNode(t) // the client library comes from npm ci
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	b, ca := enrolledSoft(t, tmp)
	doc := []byte("Платёжное поручение № 42: 100 000,00 KZT\n")

	// The allowed page's origin must be known before the agent starts: a listener now, served later.
	allowed := httptest.NewUnstartedServer(nil)
	origin := "http://" + allowed.Listener.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &golden.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		args := append([]string{"tokenrun", "agent", "--listen", "127.0.0.1:0", "--tls", "auto", "--person", "wizard", "--no-browser",
			"--lang", "en", "--set", "agent.origins=[" + origin + "]"}, b.Source...)
		done <- runMainContext(ctx, args, strings.NewReader(""), &golden.SyncBuffer{}, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("tokenrun agent did not stop within 30 s")
		}
	})
	wait := func(re *regexp.Regexp) string {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := re.FindStringSubmatch(stderr.String()); m != nil {
				return m[1]
			}
		}
		t.Fatalf("tokenrun agent did not say %s:\n%s", re, stderr.String())
		return ""
	}
	agentURL := wait(regexp.MustCompile(`listening on (wss://127\.0\.0\.1:\d+)`))

	// The browser trusts the agent's CA as a client's would after install-cert.
	nssdb := filepath.Join(tmp, "browser-home", ".pki", "nssdb")
	r := tokenrun(t, "", "agent", "install-cert", "--nssdb", nssdb)
	require.Equal(t, 0, r.code, r.err)

	page := bankPage(t, agentURL, doc)
	allowed.Config.Handler = page.Config.Handler
	allowed.Start()
	defer allowed.Close()

	browser := newBrowser(t, "HOME="+filepath.Join(tmp, "browser-home")) // Chromium reads ~/.pki/nssdb

	bank := newTab(t, browser)
	bank.run(chromedp.Navigate(allowed.URL))
	launch := wait(regexp.MustCompile(`Open (http://127\.0\.0\.1:\d+/launch/[0-9a-f]{64})`))
	client := newTab(t, browser)
	client.run(chromedp.Navigate(launch))
	client.run(chromedp.WaitVisible(chromedp.CSS(`#run-banner .document pre.preview`)))
	banner := client.text("#run-banner")
	assert.Contains(t, banner, origin, "the consent page names who asks")
	assert.Contains(t, banner, "Платёжное поручение № 42", "and shows the document's start")
	outcome, code := client.converse(map[string][]string{"sign_confirm": {"yes"}, "current_pin": {"Kx7mQ9pz"}}, nil)
	require.Equal(t, "ok", outcome, "code %s; the page says: %s", code, client.text("#run-log"))

	ctxR, cancelR := context.WithTimeout(bank.ctx, 60*time.Second)
	defer cancelR()
	_, err := chromedp.Run(ctxR, chromedp.Poll[bool](`window.result !== null`))
	require.NoError(t, err)
	cms := eval[string](bank, `window.result.cms || ("error: " + window.result.error)`)
	require.NotContains(t, cms, "error:")
	// The library hands the page the signature as PEM ("-----BEGIN CMS-----").
	block, _ := pem.Decode([]byte(cms))
	require.NotNil(t, block, "%.200q", cms)
	der := block.Bytes
	sig, content := filepath.Join(tmp, "order.p7s"), filepath.Join(tmp, "order.txt")
	require.NoError(t, os.WriteFile(sig, der, 0o600))
	require.NoError(t, os.WriteFile(content, doc, 0o600))
	out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
		"-CAfile", ca.Roots, "-out", os.DevNull).CombinedOutput()
	require.NoError(t, err, "openssl cms -verify: %s", out)
	assert.False(t, bank.pageHolds("Kx7mQ9pz"), "the bank's page never sees the password")

	// The same page from an origin not allowed: refused at the handshake, nothing asked.
	other := bankPage(t, agentURL, doc)
	evil := newTab(t, browser)
	evil.run(chromedp.Navigate(other.URL))
	ctxE, cancelE := context.WithTimeout(evil.ctx, 60*time.Second)
	defer cancelE()
	_, err = chromedp.Run(ctxE, chromedp.Poll[bool](`window.result !== null`))
	require.NoError(t, err)
	assert.Empty(t, eval[string](evil, `window.result.cms || ""`))
	assert.Contains(t, stderr.String(), other.URL[len("http://"):], "the refusal is logged with the origin")
}
