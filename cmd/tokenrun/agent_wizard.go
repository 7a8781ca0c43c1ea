package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/ui"
	"github.com/tokenrun/tokenrun/wizard"
)

// wizardPerson asks the person in the wizard's page (tokenrun ui), which the agent serves
// beside its WebSocket: each request opens the page (or reuses the one open) and runs its
// sign_request conversation there. The bank's page gets only the signatures.
type wizardPerson struct {
	srv       *wizard.Server
	noBrowser bool
	log       io.Writer
	catalog   func(string) (map[string]string, error)
	lang      string
	// wait bounds how long a request waits for a page to take it.
	wait time.Duration
}

// startWizardPerson serves the wizard for the agent's requests until ctx ends.
func startWizardPerson(ctx context.Context, c *cli.Context, io stdio) (*wizardPerson, error) {
	w, err := newWizardSource(c, io)
	if err != nil {
		return nil, err
	}
	home, err := runner.Home()
	if err != nil {
		return nil, err
	}
	o := w.options(filepath.Join(home, "wizard", fmt.Sprintf("agent-%d", os.Getpid())), io.err)
	o.Stay = true // the agent opens the page again for each request
	srv := wizard.New(o)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ctx, ln) }()
	return &wizardPerson{srv: srv, noBrowser: c.Bool("no-browser"), log: io.err, catalog: w.catalog, lang: w.lang, wait: 2 * time.Minute}, nil
}

// Attend opens the page when none is open, and waits until it takes the request.
func (p *wizardPerson) Attend(ctx context.Context, req agent.Request) (ui.Frontend, func(), error) {
	if !p.srv.Connected() {
		url := p.srv.Relaunch()
		m, _ := p.catalog(p.lang)
		fmt.Fprintln(p.log, "tokenrun agent: "+region.Format(catalogOr(m, "wizard_cli_open", "Open {url}"), map[string]any{"url": url}))
		if !p.noBrowser {
			if err := openBrowser(url); err != nil {
				fmt.Fprintf(p.log, "tokenrun agent: %s (%v)\n", catalogOr(m, "wizard_cli_no_browser", "The browser could not be opened: open the address above yourself."), err)
			}
		}
	}
	info := wizard.Consent{Title: req.Summary}
	for _, d := range req.Documents {
		info.Documents = append(info.Documents, wizard.ConsentDocument{Index: d.Index, Size: d.Size, SHA256: d.SHA256, Preview: d.Preview, Truncated: d.Truncated})
	}
	wctx, cancel := context.WithTimeout(ctx, p.wait)
	defer cancel()
	in, out, release, err := p.srv.Converse(wctx, info)
	if err != nil {
		return nil, nil, err
	}
	return ui.NewJSON(in, out), release, nil
}
