package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/wizard"
)

// The wizard (tokenrun ui) runs every procedure as the CLI does, in this process, with the
// JSON front-end on pipes its page answers: what is checked, journalled and recorded is
// the same as on the command line.

func uiCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "the client's wizard: a local web page for every procedure, the tokens, signing, and support",
		Flags: append(append(append(tokenFlags(), regionFlags()...),
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "loopback `ADDR` to serve on (port 0: a free one)"},
			&cli.BoolFlag{Name: "no-browser", Usage: "print the address instead of opening the default browser"},
			&cli.DurationFlag{Name: "timeout", Usage: "stop each procedure after this long; 0 means no limit", Action: nonNegative("timeout")},
		), lockWaitFlag()),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return runner.UsageError{Err: fmt.Errorf("ui takes no arguments (got %q)", c.Args().First())}
			}
			return serveWizard(c, io)
		},
	}
}

func serveWizard(c *cli.Context, io stdio) error {
	p, _, err := openSource(c) // a missing module is said now, not on the page
	if err != nil {
		return err
	}
	p.Close()
	w, err := newWizardSource(c, io)
	if err != nil {
		return err
	}
	home, err := runner.Home()
	if err != nil {
		return err
	}
	work := filepath.Join(home, "wizard", fmt.Sprintf("%d", os.Getpid()))
	srv := wizard.New(w.options(work, io.err))
	ln, err := srv.Listen(c.String("listen"))
	if err != nil {
		return runner.UsageError{Err: err}
	}
	m, _ := w.catalog(w.lang)
	runner.SetStoppingNotice(m["cancel_stopping"]) // Ctrl-C's line, in the page's language
	fmt.Fprintln(io.out, region.Format(catalogOr(m, "wizard_cli_open", "Open {url} in your browser (this address works once). Ctrl-C stops the wizard."), map[string]any{"url": srv.URL()}))
	if !c.Bool("no-browser") {
		if err := openBrowser(srv.URL()); err != nil {
			fmt.Fprintf(io.err, "tokenrun ui: %s (%v)\n", catalogOr(m, "wizard_cli_no_browser", "The browser could not be opened: open the address above yourself."), err)
		}
	}
	return srv.Serve(c.Context, ln)
}

func catalogOr(m map[string]string, key, def string) string {
	if m[key] != "" {
		return m[key]
	}
	return def
}

// openBrowser opens url in the person's default browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch goruntime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	return cmd.Start()
}

// wizardSource is what the page's server asks the CLI: catalogs, procedures, runs.
type wizardSource struct {
	c    *cli.Context
	io   stdio
	set  *scripts.Set
	lang string // the region's language, or --lang

	mu       sync.Mutex
	catalogs map[string]map[string]string
	roots    []byte
}

func newWizardSource(c *cli.Context, io stdio) (*wizardSource, error) {
	set, err := runner.LoadSet(c.String("scripts"), io.err)
	if err != nil {
		return nil, err
	}
	w := &wizardSource{c: c, io: io, set: set, catalogs: map[string]map[string]string{}}
	_, _, r, err := runner.RegionConfig(set, c.String("region"), c.StringSlice("set"), c.String("lang"))
	if err != nil {
		return nil, err
	}
	w.lang, w.roots = r.Language, r.CA.RootsPEM
	if l := c.String("lang"); l != "" {
		w.lang = l
	}
	if _, err := w.catalog(w.lang); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wizardSource) catalog(lang string) (map[string]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m, ok := w.catalogs[lang]; ok {
		return m, nil
	}
	_, _, r, err := runner.RegionConfig(w.set, w.c.String("region"), w.c.StringSlice("set"), lang)
	if err != nil {
		return nil, err
	}
	_, m, err := runner.RegionMap(r, lang)
	if err != nil {
		return nil, err
	}
	w.catalogs[lang] = m
	return m, nil
}

// procedures are the active set's, in the guide's order for the shipped ones, then the
// bank's own by name. The tour is for trying tokenrun in a terminal, not for clients.
func (w *wizardSource) procedures(lang string) ([]wizard.Procedure, error) {
	m, err := w.catalog(lang)
	if err != nil {
		return nil, err
	}
	var out []wizard.Procedure
	// sign_request is the signing agent's: it runs for a page's request (tokenrun agent), with
	// the documents the page sent, never by itself.
	seen := map[string]bool{"tour": true, "sign_request": true}
	for _, p := range procedures {
		if _, ok := w.set.Procedures[p.name]; ok {
			out = append(out, wizard.Procedure{Name: p.name, Title: catalogOr(m, "procedure_"+p.name, p.name), Argv: []string{p.command}})
		}
		seen[p.name] = true
	}
	var names []string
	for name := range w.set.Procedures {
		if !seen[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, wizard.Procedure{Name: name, Title: catalogOr(m, "procedure_"+name, name), Argv: []string{"procedure", name}})
	}
	return out, nil
}

// run runs one tokenrun command line for the page, with the wizard's token, scripts and
// region flags after the command's name.
func (w *wizardSource) run(ctx context.Context, argv []string, in io.Reader, out, stderr io.Writer) int {
	args := append([]string{"tokenrun", argv[0]}, w.sourceArgs()...)
	if t := w.c.String("token"); t != "" {
		args = append(args, "--token", t)
	}
	if w.c.IsSet("lock-wait") {
		args = append(args, "--lock-wait", w.c.Duration("lock-wait").String())
	}
	if argv[0] != "sign" {
		args = append(args, "--region", w.c.String("region"))
		for _, s := range w.c.StringSlice("set") {
			args = append(args, "--set", s)
		}
		if s := w.c.String("scripts"); s != "" {
			args = append(args, "--scripts", s)
		}
		if w.c.Duration("timeout") > 0 {
			args = append(args, "--timeout", w.c.Duration("timeout").String())
		}
	}
	if argv[0] == "sign" && w.c.String("token") == "" {
		uri, key := w.profileKey(ctx)
		if uri == "" {
			l := flagValue(argv, "--lang")
			if l == "" {
				l = w.lang
			}
			m, _ := w.catalog(l)
			line, _ := json.Marshal(map[string]any{"type": "result", "outcome": "error", "exit": runner.ExitToken,
				"code": "NO_CERTIFICATE", "message": catalogOr(m, key, key)})
			_, _ = out.Write(append(line, '\n'))
			return runner.ExitToken
		}
		args = append(args, "--token", uri)
	}
	return runMainContext(ctx, append(args, argv[1:]...), in, out, stderr)
}

// flagValue is the value after flag in argv, "" for none.
func flagValue(argv []string, flag string) string {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag {
			return argv[i+1]
		}
	}
	return ""
}

// profileKey is the URI of the key the page signs with: the one profile on the tokens
// present that is still valid (the latest, when a renewal left two). Without one, uri is ""
// and key the catalog message that says why.
func (w *wizardSource) profileKey(ctx context.Context) (uri, key string) {
	toks, err := w.tokens(ctx)
	if err != nil {
		return "", "wizard_error_tokens"
	}
	var best *wizard.Profile
	var on wizard.Token
	for _, t := range toks {
		for i, p := range t.Profiles {
			if !p.Expired && (best == nil || p.NotAfter.After(best.NotAfter)) {
				best, on = &t.Profiles[i], t
			}
		}
	}
	if best == nil {
		return "", "wizard_sign_no_profile"
	}
	u := token.URI{Token: on.Label, Serial: on.Serial, ID: best.KeyID}
	return u.String(), ""
}

// options are the wizard server's, its work files under work.
func (w *wizardSource) options(work string, log io.Writer) wizard.Options {
	return wizard.Options{
		Lang: w.lang, Languages: []string{"kk", "ru", "en"}, Catalog: w.catalog, Procedures: w.procedures,
		Run: w.run, Tokens: w.tokens, Verify: w.verify, Support: w.support, WorkDir: work, Log: log,
	}
}

// sourceArgs are the wizard's token source flags, for the commands it runs.
func (w *wizardSource) sourceArgs() []string {
	var args []string
	if m := w.c.String("module"); m != "" {
		args = append(args, "--module", m)
	}
	for _, s := range w.c.StringSlice("soft") {
		args = append(args, "--soft", s)
	}
	return args
}

// tokens describes the tokens present: their PINs and the profiles (certificates) on them.
func (w *wizardSource) tokens(ctx context.Context) ([]wizard.Token, error) {
	p, uri, err := openSource(w.c)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	infos, err := p.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	var out []wizard.Token
	for _, info := range infos {
		if !uri.MatchToken(info) {
			continue
		}
		t := wizard.Token{Profiles: []wizard.Profile{}, Label: info.Label, Serial: info.Serial, Manufacturer: info.Manufacturer, Model: info.Model,
			Initialized: info.Initialized, UserPIN: pinState(info.UserPIN, info.UserPINInitialized), SOPIN: pinState(info.SOPIN, info.Initialized)}
		if info.Initialized {
			if tok, err := p.Open(ctx, info); err == nil {
				certs, _ := tok.Certificates(ctx)
				for _, cert := range certs {
					if cert.X509 == nil {
						continue
					}
					t.Profiles = append(t.Profiles, wizard.Profile{KeyID: cert.ID, Label: cert.Label, Holder: cert.X509.Subject.CommonName,
						Issuer: cert.X509.Issuer.CommonName, Serial: fmt.Sprintf("%X", cert.X509.SerialNumber),
						NotAfter: cert.X509.NotAfter, Expired: time.Now().After(cert.X509.NotAfter)})
				}
				_ = tok.Close()
			}
		}
		t.Blank = len(t.Profiles) == 0
		out = append(out, t)
	}
	return out, nil
}

func pinState(s token.PINStatus, set bool) wizard.PINState {
	return wizard.PINState{Set: set, Locked: s.Locked, FinalTry: s.FinalTry, CountLow: s.CountLow, RetriesLeft: s.RetriesLeft}
}

// verify checks a signature the page sent against the region's CA roots. The verdict's
// problems are catalog keys: the page says them in the person's language.
func (w *wizardSource) verify(_ context.Context, sigPath, contentPath string) (any, error) {
	roots, err := bindsign.ParseRoots(w.roots)
	if err != nil && len(w.roots) > 0 {
		return nil, err
	}
	sig, err := readfile.Open(sigPath, readfile.Signature)
	if err != nil {
		return nil, err
	}
	defer sig.Close()
	var content *readfile.File
	if contentPath != "" {
		if content, err = readfile.Open(contentPath, readfile.Document); err != nil {
			return nil, err
		}
		defer content.Close()
	}
	v, err := verifyStream(sig, content, cms.VerifyOptions{Roots: roots})
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, p := range []struct {
		ok  bool
		key string
	}{
		{v.SignatureValid, "wizard_verify_problem_signature"},
		{v.ContentMatches || (v.Detached && content == nil), "wizard_verify_problem_content"},
		{!v.Detached || content != nil, "wizard_verify_problem_no_document"},
		{v.ChainTrusted, "wizard_verify_problem_chain"},
		{v.CertValidAtSigningTime, "wizard_verify_problem_time"},
	} {
		if !p.ok {
			problems = append(problems, p.key)
		}
	}
	out := map[string]any{"ok": v.OK() && len(problems) == 0, "subject": v.Subject, "serial": v.Serial, "detached": v.Detached, "problem_keys": problems}
	if v.HasSigningTime {
		out["signing_time"] = v.SigningTime.UTC().Format(time.RFC3339)
	}
	return out, nil
}

// support writes the support bundle: the diagnosis and the latest transcripts (which hold
// no secret: the recorder redacts them).
func (w *wizardSource) support(ctx context.Context, out io.Writer) error {
	z := zip.NewWriter(out)
	f, err := z.Create("diagnose.json")
	if err != nil {
		return err
	}
	args := append([]string{"tokenrun", "diagnose"}, w.sourceArgs()...)
	var stderr strings.Builder
	runMainContext(ctx, args, strings.NewReader(""), f, &stderr)
	home, err := runner.Home()
	if err == nil {
		dir := filepath.Join(home, "transcripts")
		entries, _ := os.ReadDir(dir)
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() > entries[j].Name() })
		n := 0
		for _, e := range entries {
			if n == 10 || !e.Type().IsRegular() {
				continue
			}
			data, err := readfile.Read(filepath.Join(dir, e.Name()), readfile.Transcript)
			if err != nil {
				continue
			}
			if f, err := z.Create("transcripts/" + e.Name()); err == nil {
				_, _ = f.Write(data)
				n++
			}
		}
	}
	meta, _ := json.Marshal(map[string]any{"created": time.Now().UTC().Format(time.RFC3339), "os": goruntime.GOOS + "/" + goruntime.GOARCH})
	if f, err := z.Create("about.json"); err == nil {
		_, _ = f.Write(meta)
	}
	return z.Close()
}
