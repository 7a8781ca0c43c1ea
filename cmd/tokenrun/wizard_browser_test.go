package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
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

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
)

// The wizard in a real browser: headless Chromium driven as a client would, typing into
// the page, choosing files, clicking. Under CI=true a missing browser fails.

var updateScreenshot = flag.Bool("update-screenshot", false, "rewrite docs/wizard.png from the enrollment test")

// wizardProcess is tokenrun ui running in process until the test ends.
type wizardProcess struct {
	url, base string
	log       *golden.SyncBuffer
}

func startWizard(t *testing.T, args ...string) *wizardProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &golden.SyncBuffer{}, &golden.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMainContext(ctx, append([]string{"tokenrun", "ui", "--no-browser"}, args...), strings.NewReader(""), out, errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("tokenrun ui did not stop within 30 s of its context")
		}
	})
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/launch/[0-9a-f]{64}`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if u := url.FindString(out.String()); u != "" {
			return &wizardProcess{url: u, base: u[:strings.Index(u, "/launch/")], log: errOut}
		}
		select {
		case code := <-done:
			t.Fatalf("tokenrun ui exited %d: %s%s", code, out.String(), errOut.String())
		default:
		}
	}
	t.Fatalf("tokenrun ui printed no address: %s%s", out.String(), errOut.String())
	return nil
}

// chromium is the browser's path: Debian's chromium, or what CHROME names.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROME"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	p11test.Unavailable(t, "no Chromium found: apt-get install --no-install-recommends chromium (or set CHROME)")
	return ""
}

// newBrowser starts a headless Chromium for the test, with env added to its environment;
// tabs are new contexts of it.
func newBrowser(t *testing.T, env ...string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", "new"), chromedp.NoSandbox, chromedp.WindowSize(1000, 900),
		chromedp.UserDataDir(t.TempDir()), chromedp.Env(env...))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx)) // start it now, without a deadline: a broken browser fails here
	return ctx
}

// tab is one browser tab with a deadline for each step.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func newTab(t *testing.T, browser context.Context) *tab {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx)) // opens the tab, for the tab's whole life
	return &tab{t: t, ctx: ctx}
}

// run runs the steps, each tab's step within 90 s.
func (b *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		// What the person would see, to tell why.
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("%v; the page shows:\n%s", err, text)
	}
}

// eval is the value of js in the page, awaiting a promise it returns.
func eval[T any](b *tab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err, "%s", js)
	return v
}

// text is the visible text of the element sel, once it is visible.
func (b *tab) text(sel string) string {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS(sel)))
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return v
}

// pageState is what converse reads of the page between steps.
type pageState struct {
	Turn    string `json:"turn"`
	Prompt  string `json:"prompt"`
	Outcome string `json:"outcome"`
	Code    string `json:"code"`
}

const pageStateJS = `JSON.stringify({
  turn: document.body.dataset.turn || "0",
  prompt: (() => { const f = document.getElementById("run-ask"); return f && !f.hidden ? f.dataset.prompt || "" : ""; })(),
  outcome: (document.querySelector("#run-result:not([hidden])") || {dataset: {}}).dataset.outcome || "",
  code: (document.querySelector("#run-result:not([hidden])") || {dataset: {}}).dataset.code || "",
})`

func (b *tab) state() pageState {
	b.t.Helper()
	raw := eval[string](b, pageStateJS)
	var s pageState
	require.NoError(b.t, json.Unmarshal([]byte(raw), &s))
	return s
}

// converse answers the page's prompts as a person does, each id's values in turn (a wrong
// one first, then the right one), until the run's result shows; it returns the outcome and
// code. check, when set, is called after a value is typed and before it is sent.
func (b *tab) converse(answers map[string][]string, check func(id, value string)) (outcome, code string) {
	b.t.Helper()
	last := "" // a prompt already showing when the conversation starts is answered too
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s := b.state()
		if s.Outcome != "" {
			return s.Outcome, s.Code
		}
		if s.Turn == last || s.Prompt == "" {
			continue
		}
		last = s.Turn
		values := answers[s.Prompt]
		require.NotEmpty(b.t, values, "the page asks %q, which the test has no (more) answers for; page says: %s", s.Prompt, b.text("#run-log"))
		v := values[0]
		answers[s.Prompt] = values[1:]
		sent := b.answer(s.Prompt, v)
		if check != nil {
			check(s.Prompt, v)
		}
		if !sent {
			b.run(chromedp.Click(chromedp.CSS("#answer-submit"), chromedp.NodeVisible))
		}
	}
	b.t.Fatalf("the run did not end; the page says: %s", b.text("#run-log"))
	return "", ""
}

// answer fills the pending prompt's field as a person does. A confirm prompt is answered
// by its button, which sends at once (sent); the others wait for the submit button.
func (b *tab) answer(id, v string) (sent bool) {
	b.t.Helper()
	kind := eval[string](b, `(() => {
  const f = document.getElementById("run-ask");
  if (f.querySelector("#answer-yes")) return "confirm";
  const i = f.querySelector("input");
  return i ? i.type : "none";
})()`)
	switch kind {
	case "confirm":
		button := "#answer-no"
		if v == "yes" {
			button = "#answer-yes"
		}
		b.run(chromedp.Click(chromedp.CSS(button)))
		return true
	case "radio":
		b.run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#run-ask input[value=%q]`, v))))
	case "file":
		b.run(chromedp.SetUploadFiles(chromedp.CSS("#answer-"+id), []string{v}),
			chromedp.WaitVisible(chromedp.CSS("#run-ask .file-name:not(:empty)")))
	default:
		b.run(chromedp.SendKeys(chromedp.CSS("#answer-"+id), v))
	}
	return false
}

// click waits for sel to be visible and clicks it.
func (b *tab) click(sel string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// startProcedure opens the start screen and starts the procedure called name.
func (b *tab) startProcedure(name string) {
	b.t.Helper()
	b.click(`#nav button[data-screen=home]`)
	b.startsRun(func() { b.click(fmt.Sprintf(`#procedures button[data-procedure=%q]`, name)) })
}

// startsRun does act, which starts a run, and waits until the page shows it.
func (b *tab) startsRun(act func()) {
	b.t.Helper()
	const runs = `Number(document.body.dataset.runs || 0)`
	before := eval[int](b, runs)
	act()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf("%s > %d", runs, before)))
	require.NoError(b.t, err, "the page started no run")
}

// download fetches what the link sel points to, through the page (its session), as bytes.
func (b *tab) download(sel string) []byte {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS(sel)))
	b64 := eval[string](b, fmt.Sprintf(`fetch(document.querySelector(%q).href).then(r => r.arrayBuffer()).then(buf => {
  let s = ""; for (const c of new Uint8Array(buf)) s += String.fromCharCode(c); return btoa(s); })`, sel))
	data, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(b.t, err)
	return data
}

// pageHolds reports whether the page's HTML or its storage holds s.
func (b *tab) pageHolds(s string) bool {
	b.t.Helper()
	all := eval[string](b, `document.documentElement.outerHTML + JSON.stringify(localStorage) + JSON.stringify(sessionStorage) +
  Array.from(document.querySelectorAll("input")).map(i => i.value).join(" ")`)
	return strings.Contains(all, s)
}

// softCerts are the certificates on a software token, after a login with pin (which must work).
func softCerts(t *testing.T, dir, pin string) []*token.Cert {
	t.Helper()
	_, _, certs := softObjects(t, dir, pin)
	return certs
}

// lockSoftUserPIN types wrong user PINs into the software token directly (not through
// tokenrun's floor, which would refuse) until it locks, as a careless person would.
func lockSoftUserPIN(t *testing.T, dir string) {
	t.Helper()
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	tk, err := p.Open(ctx, infos[0])
	require.NoError(t, err)
	defer tk.Close()
	for i := 0; i < 30; i++ {
		if err := tk.Login(ctx, token.User, "Wrong1x9"); errors.Is(err, token.ErrPINLocked) {
			return
		}
	}
	t.Fatal("the software token's user PIN did not lock")
}

const (
	wizardPIN  = "Kx7mQ9pz"
	wizardPIN2 = "Qw8rTy5u"
	wizardPIN3 = "Zt4nVb6m"
)

// TestWizardSoftToken is the client's day in the wizard on a software token: a first
// registration typed as the guide says (a wrong OTP PIN corrected on the spot, a password
// refused then accepted), the certificate checked by OpenSSL; a password change; a document
// signed, its signature downloaded and checked by openssl cms and by the page; a format
// refused for a token with a profile; a password locked, seen on the tokens screen and
// unblocked; every screen in Kazakh without English.
func TestWizardSoftToken(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.Mkdir(dir, 0o700))
	w := startWizard(t, append([]string{"--soft", dir, "--lang", "en"}, ca.Args()...)...)
	browser := newBrowser(t)
	b := newTab(t, browser)
	b.run(chromedp.Navigate(w.url))
	// Each step builds on the one before: stop at the first that fails.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("enroll", func(t *testing.T) {
		b.t = t
		b.click(`#nav button[data-screen=tokens]`)
		b.run(chromedp.WaitVisible(chromedp.CSS(`#tokens li.token .badge`))) // blank: KAZTOKEN - ?
		b.startProcedure("enroll")
		seen := map[string]string{}
		outcome, code := b.converse(map[string][]string{
			"validity": {"1y"}, "user_id": {golden.EnrollUser}, "key_file": {ca.KeyFile},
			"otp_pin": {"ZZ9ZZ9ZZ9ZZ", golden.EnrollOTP}, "pin_is_password": {"true"}, "profile_name": {"Main"},
			"new_pin": {"abc12345", wizardPIN}, "new_pin_confirm": {wizardPIN}, "confirm": {"yes"}, "current_pin": {""},
		}, func(id, v string) {
			if id == "new_pin" {
				seen[v] = eval[string](b, `document.querySelector('#run-ask li[data-rule=password_sequence]').className`)
			}
		})
		require.Equal(t, "ok", outcome, "code %s; the page says: %s", code, b.text("#run-log"))
		assert.Equal(t, "bad", seen["abc12345"], "the sequence rule is marked broken as the person types")
		assert.Equal(t, "ok", seen[wizardPIN])
		wrongShown := eval[int](b, `document.querySelectorAll("#run-log li.error").length`)
		assert.Positive(t, wrongShown, "the wrong OTP PIN was said")
		assert.NotEmpty(t, b.text(`#run-result dd[data-field=certificate_serial]`))
		for _, secret := range []string{wizardPIN, golden.EnrollOTP, "abc12345"} {
			assert.False(t, b.pageHolds(secret), "the page keeps no secret")
		}
		screenshot(t, b)
		certs := softCerts(t, dir, wizardPIN)
		require.Len(t, certs, 1)
		verifyCertOpenSSL(t, ca.Roots, certs[0].DER)
		b.click(`#nav button[data-screen=tokens]`)
		assert.Contains(t, b.text(`#tokens li.token .profile`), certs[0].X509.Subject.CommonName)
	})

	step("change password", func(t *testing.T) {
		b.t = t
		b.startProcedure("change_pin")
		outcome, code := b.converse(map[string][]string{"current_pin": {wizardPIN}, "new_pin": {wizardPIN2}, "new_pin_confirm": {wizardPIN2}}, nil)
		require.Equal(t, "ok", outcome, code)
		require.Len(t, softCerts(t, dir, wizardPIN2), 1)
	})

	step("sign and verify", func(t *testing.T) {
		b.t = t
		doc := filepath.Join(t.TempDir(), "payment-order.txt")
		require.NoError(t, os.WriteFile(doc, []byte("Payment order 42: 100 000 KZT\n"), 0o600))
		b.click(`#nav button[data-screen=sign]`)
		b.run(chromedp.SetUploadFiles(chromedp.CSS("#sign-file"), []string{doc}))
		b.startsRun(func() { b.click("#sign-button") })
		outcome, code := b.converse(map[string][]string{"current_pin": {wizardPIN2}}, nil)
		require.Equal(t, "ok", outcome, code)
		sig := filepath.Join(t.TempDir(), "payment-order.txt.p7s")
		require.NoError(t, os.WriteFile(sig, b.download("#signature-download"), 0o600))
		out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", doc,
			"-CAfile", ca.Roots, "-out", os.DevNull).CombinedOutput()
		require.NoError(t, err, "openssl cms -verify: %s", out)

		// The page checks it too, and sees a changed document.
		b.click(`#nav button[data-screen=sign]`)
		b.run(chromedp.SetUploadFiles(chromedp.CSS("#verify-signature"), []string{sig}),
			chromedp.SetUploadFiles(chromedp.CSS("#verify-document"), []string{doc}))
		b.click("#verify-button")
		assert.Equal(t, "The signature is valid.", b.text("#verify-verdict"))
		forged := filepath.Join(t.TempDir(), "forged.txt")
		require.NoError(t, os.WriteFile(forged, []byte("Payment order 42: 900 000 KZT\n"), 0o600))
		b.run(chromedp.SetUploadFiles(chromedp.CSS("#verify-document"), []string{forged}))
		b.click("#verify-button")
		b.run(chromedp.WaitVisible(chromedp.CSS(`#verify-result.error`)))
		assert.Equal(t, "The signature is NOT valid.", b.text("#verify-verdict"))
		assert.Contains(t, b.text("#verify-result"), "The document is not the one that was signed.")
	})

	step("format refused", func(t *testing.T) {
		b.t = t
		b.startProcedure("format")
		outcome, code := b.converse(map[string][]string{"so_pin": {"87654321"}, "confirm": {"yes"}, "token_label": {""}}, nil)
		assert.Equal(t, "error", outcome)
		assert.Equal(t, "REFUSED", code)
		require.Len(t, softCerts(t, dir, wizardPIN2), 1, "the profile is still there")
	})

	step("unblock after locking", func(t *testing.T) {
		b.t = t
		lockSoftUserPIN(t, dir)
		b.click(`#nav button[data-screen=tokens]`)
		b.click("#tokens-refresh")
		b.run(chromedp.WaitVisible(chromedp.CSS(`#tokens [data-pin=user].locked`)))
		b.startProcedure("unblock")
		outcome, code := b.converse(map[string][]string{"so_pin": {"87654321"}, "new_pin": {wizardPIN3}, "new_pin_confirm": {wizardPIN3}}, nil)
		require.Equal(t, "ok", outcome, code)
		require.Len(t, softCerts(t, dir, wizardPIN3), 1)
	})

	step("kazakh", func(t *testing.T) {
		b.t = t
		b.click(`#langs button[data-lang=kk]`)
		b.run(chromedp.WaitVisible(chromedp.CSS(`html[lang=kk]`)))
		certs := softCerts(t, dir, wizardPIN3)
		holder := strings.FieldsFunc(certs[0].X509.Subject.CommonName, func(r rune) bool { return r == ' ' || r == '_' })
		check := func(screen string) {
			b.run(chromedp.Sleep(300 * time.Millisecond))
			text := eval[string](b, `document.body.innerText`)
			assert.Empty(t, latinWords(text, append(holder, "English", "p7s", runtime.Version)), "%s screen in Kazakh:\n%s", screen, text)
		}
		for _, screen := range []string{"home", "tokens", "sign", "support"} {
			b.click(fmt.Sprintf(`#nav button[data-screen=%s]`, screen))
			check(screen)
		}
		b.startProcedure("change_pin")
		b.run(chromedp.WaitVisible(chromedp.CSS(`#run-ask[data-prompt=current_pin]`)))
		check("change password")
		b.click("#run-cancel")
		b.run(chromedp.WaitVisible(chromedp.CSS(`#run-result[data-outcome]`)))
		check("stopped run")
		// Remembered: the page comes back in Kazakh.
		b.run(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#procedures button`)))
		assert.Equal(t, "kk", eval[string](b, `document.documentElement.lang`))
	})
}

// screenshot keeps the README's picture of the wizard: docs/wizard.png, rewritten with
// -update-screenshot; otherwise it must be there and be a PNG.
func screenshot(t *testing.T, b *tab) {
	t.Helper()
	path := filepath.Join("..", "..", "docs", "wizard.png")
	if *updateScreenshot {
		buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, buf, 0o644))
	}
	f, err := os.Open(path)
	require.NoError(t, err, "docs/wizard.png: run go test ./cmd/tokenrun -run TestWizardSoftToken -update-screenshot")
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, img.Bounds().Dx(), 800)
}

// TestWizardEnrollSoftHSM2: the same first registration through the page, on SoftHSM2; the
// certificate pkcs11-tool lists chains to the CA by OpenSSL.
func TestWizardEnrollSoftHSM2(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	p11test.SoftHSM(t)
	tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
	w := startWizard(t, append([]string{"--module", tk.Module, "--lang", "en"}, ca.Args()...)...)
	b := newTab(t, newBrowser(t))
	b.run(chromedp.Navigate(w.url))
	b.startProcedure("enroll")
	outcome, code := b.converse(map[string][]string{
		"validity": {"1y"}, "user_id": {golden.EnrollUser}, "key_file": {ca.KeyFile},
		"otp_pin": {golden.EnrollOTP}, "pin_is_password": {"true"}, "profile_name": {"Main"},
		"new_pin": {wizardPIN}, "new_pin_confirm": {wizardPIN}, "confirm": {"yes"}, "current_pin": {""},
	}, nil)
	require.Equal(t, "ok", outcome, "code %s; the page says: %s", code, b.text("#run-log"))
	assert.Contains(t, p11test.ListObjects(t, p11test.Token{Module: tk.Module, Label: tk.Label, UserPIN: wizardPIN}), "Certificate Object")
	p, _, err := runner.OpenSource(runner.Source{Module: tk.Module})
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	infos, err := p.Tokens(ctx)
	require.NoError(t, err)
	var certs []*token.Cert
	for _, info := range infos {
		if info.Serial == tk.Serial {
			tok, err := p.Open(ctx, info)
			require.NoError(t, err)
			certs, err = tok.Certificates(ctx)
			require.NoError(t, err)
			require.NoError(t, tok.Close())
		}
	}
	require.Len(t, certs, 1)
	verifyCertOpenSSL(t, ca.Roots, certs[0].DER)
}

// TestWizardRefusesOthers: only the page the wizard launched drives it. The launch address
// works once; a request with another Host (DNS rebinding), without the session, or a POST or
// WebSocket from another origin is refused (a page on another port of 127.0.0.1 is the same
// site to the browser, so its cookie goes along: the Origin check is what stops it); there is
// no CORS; a second tab is told the wizard is open elsewhere.
func TestWizardRefusesOthers(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	dir := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.Mkdir(dir, 0o700))
	w := startWizard(t, "--soft", dir, "--lang", "en")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// The launch token, once.
	resp, err := noRedirect.Get(w.url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "tokenrun_session" {
			session = c
		}
	}
	require.NotNil(t, session)
	assert.True(t, session.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, session.SameSite)
	resp, err = noRedirect.Get(w.url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the launch address works once")

	port := w.base[strings.LastIndex(w.base, ":")+1:]
	tests := []struct {
		name, method, path, host, origin string
		cookie                           bool
		want                             int
	}{
		{name: "the page", method: "GET", path: "/", cookie: true, want: http.StatusOK},
		{name: "no session", method: "GET", path: "/api/state", want: http.StatusForbidden},
		{name: "rebound name", method: "GET", path: "/api/state", host: "evil.example:" + port, cookie: true, want: http.StatusMisdirectedRequest},
		{name: "another port", method: "GET", path: "/api/state", host: "127.0.0.1:1", cookie: true, want: http.StatusMisdirectedRequest},
		{name: "localhost is the same", method: "GET", path: "/api/state", host: "localhost:" + port, cookie: true, want: http.StatusOK},
		{name: "POST from its page", method: "POST", path: "/api/documents?name=a.txt", origin: w.base, cookie: true, want: http.StatusOK},
		{name: "POST from another site", method: "POST", path: "/api/documents?name=a.txt", origin: "http://evil.example", cookie: true, want: http.StatusForbidden},
		{name: "POST from another port", method: "POST", path: "/api/documents?name=a.txt", origin: "http://127.0.0.1:1", cookie: true, want: http.StatusForbidden},
		{name: "POST without an origin", method: "POST", path: "/api/documents?name=a.txt", cookie: true, want: http.StatusForbidden},
		{name: "CORS preflight", method: "OPTIONS", path: "/api/documents", origin: "http://evil.example", cookie: true, want: http.StatusMethodNotAllowed},
		{name: "WebSocket from another site", method: "GET", path: "/ws", origin: "http://evil.example", cookie: true, want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, w.base+tt.path, strings.NewReader("x"))
			require.NoError(t, err)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.cookie {
				req.AddCookie(session)
			}
			if tt.path == "/ws" {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := noRedirect.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no CORS")
			assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		})
	}

	// In a browser holding the session (of a wizard of its own: the launch address above is
	// used), a page on another port of 127.0.0.1 tries.
	w = startWizard(t, "--soft", dir, "--lang", "en")
	browser := newBrowser(t)
	b := newTab(t, browser)
	b.run(chromedp.Navigate(w.url), chromedp.WaitVisible(chromedp.CSS(`#procedures button`)))
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(rw, `<!doctype html><body><script>
const results = {};
const ws = new WebSocket("ws://%[1]s/ws");
ws.onopen = () => { results.ws = "open"; };
ws.onerror = () => { results.ws = results.ws || "refused"; };
fetch("http://%[1]s/api/documents?name=evil.txt", {method: "POST", body: "evil", mode: "no-cors", credentials: "include"})
  .then(() => { results.post = "sent"; }, () => { results.post = "failed"; });
window.results = results;
</script></body>`, strings.TrimPrefix(w.base, "http://"))
	}))
	defer evil.Close()
	e := newTab(t, browser)
	e.run(chromedp.Navigate(evil.URL))
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`!!(window.results && results.ws && results.post)`))
	require.NoError(t, err)
	assert.Equal(t, "refused", eval[string](e, `results.ws`), "the other page's WebSocket is refused")
	evilPort := evil.URL[strings.LastIndex(evil.URL, ":")+1:]
	assert.Contains(t, w.log.String(), `refused POST /api/documents: Origin "http://127.0.0.1:`+evilPort+`"`)
	assert.Contains(t, w.log.String(), `refused GET /ws: Origin "http://127.0.0.1:`+evilPort+`"`)

	// A second tab of the same browser has the session, and is told where the wizard is.
	second := newTab(t, browser)
	second.run(chromedp.Navigate(w.base + "/"))
	assert.Equal(t, "The wizard is already open in another tab or window. Close this one and use the other.", second.text("#message-text"))
	// The first still works.
	b.click(`#nav button[data-screen=tokens]`)
	b.run(chromedp.WaitVisible(chromedp.CSS(`#tokens li.token`)))
}

// TestWizardListsABanksProcedure: a procedure a bank adds to its scripts tree appears in the
// wizard, titled by its catalog, without a rebuild, and runs as tokenrun procedure NAME with
// the region's configuration.
func TestWizardListsABanksProcedure(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	tree := filepath.Join(t.TempDir(), "tree")
	require.Equal(t, 0, tokenrun(t, "", "scripts", "export", tree).code)
	writeFile(t, filepath.Join(tree, "renew_notice.lua"), `local ui = require("ui")
return {
  name = "renew_notice", version = "1.0.0", api = 1, description = "Say how renewal works",
  run = function(ctx)
    ui.say(ctx.config.messages.procedure_renew_notice)
    return { done = "yes" }
  end,
}
`)
	manifest := filepath.Join(tree, "manifest.yaml")
	m, err := os.ReadFile(manifest)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(manifest, []byte(strings.Replace(string(m), "procedures:\n", "procedures:\n  renew_notice: renew_notice.lua\n", 1)), 0o600))
	for lang, title := range map[string]string{"en": "Renewal: how it works", "ru": "Продление: как это работает", "kk": "Ұзарту: бұл қалай жұмыс істейді"} {
		f := filepath.Join(tree, "messages", lang+".yaml")
		c, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f, append(c, []byte("procedure_renew_notice: \""+title+"\"\n")...), 0o600))
	}
	dir := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.Mkdir(dir, 0o700))

	r := tokenrun(t, "", "procedure", "renew_notice", "--scripts", tree, "--soft", dir, "--lang", "ru")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.err, "Продление: как это работает")

	w := startWizard(t, "--soft", dir, "--scripts", tree, "--lang", "kk")
	b := newTab(t, newBrowser(t))
	b.run(chromedp.Navigate(w.url))
	assert.Equal(t, "Ұзарту: бұл қалай жұмыс істейді", b.text(`#procedures button[data-procedure=renew_notice]`))
	b.startProcedure("renew_notice")
	outcome, code := b.converse(map[string][]string{}, nil)
	require.Equal(t, "ok", outcome, code)
	assert.Contains(t, b.text("#run-log"), "Ұзарту: бұл қалай жұмыс істейді")
}
