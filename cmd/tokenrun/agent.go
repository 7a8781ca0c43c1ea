package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
)

// agentRunFlags are the flags of the procedures that make sense without a person at the
// command line (the person is asked per request): the token source, the region (whose
// agent.origins are the pages allowed) and the transcript and lock options.
func agentRunFlags() []cli.Flag {
	return append(append(tokenFlags(), regionFlags()...), noTranscriptFlag(), lockWaitFlag())
}

func agentCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "sign for the bank's web page as NCALayer does: WebSocket on loopback, for the region's origins, with the client's consent",
		Flags: append(agentRunFlags(),
			&cli.StringFlag{Name: "listen", Value: agent.DefaultListen, Usage: "loopback `ADDRESS:PORT` to serve on (NCALayer's is 127.0.0.1:13579)"},
			&cli.StringFlag{Name: "tls", Value: "auto", Usage: "auto: wss:// with the agent's own certificate (tokenrun agent install-cert makes browsers trust it); off: ws://"},
			&cli.StringFlag{Name: "person", Value: "wizard",
				Usage: "who confirms each request and types the token password: wizard (the local wizard page, opened for a request), terminal (here), or json (the --ui json protocol on stdin/stdout, one run after another, for a GUI or a test harness)"},
			&cli.BoolFlag{Name: "no-browser", Usage: "with --person wizard: print the wizard's address for a request instead of opening the browser"},
		),
		Action: func(c *cli.Context) error { return runAgent(c, io) },
		Subcommands: []*cli.Command{
			trustCommand(io, "install-cert", "add the agent's certificate authority to this user's browsers' trust stores (NSS, Windows)", agent.Install),
			trustCommand(io, "uninstall-cert", "remove the agent's certificate authority from this user's trust stores", agent.Uninstall),
		},
	}
}

// agentRunner is the sign_request procedure over the token source the flags name, and the
// audit log under the data directory home.
func agentRunner(c *cli.Context, io stdio, home string) (*agent.Runner, *audit.Log, func(), error) {
	log, err := audit.Open(audit.Dir(home))
	if err != nil {
		return nil, nil, nil, err
	}
	prov, uri, err := openSource(c)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := agent.NewRunner(agent.RunnerOptions{Scripts: c.String("scripts"), Region: c.String("region"), Set: c.StringSlice("set"),
		Lang: c.String("lang"), Provider: prov, URI: uri, LockWait: c.Duration("lock-wait"), NoTranscript: c.Bool("no-transcript"),
		Begin: protocolRun, Out: io.err})
	if err != nil {
		prov.Close()
		return nil, nil, nil, err
	}
	return r, log, func() { prov.Close() }, nil
}

func runAgent(c *cli.Context, io stdio) error {
	if c.NArg() > 0 {
		return runner.UsageError{Err: fmt.Errorf("agent takes no arguments (got %q): did you mean tokenrun agent install-cert?", c.Args().First())}
	}
	listen := c.String("listen")
	if err := loopbackListen(listen); err != nil {
		return runner.UsageError{Err: err}
	}
	home, err := runner.Home()
	if err != nil {
		return err
	}
	var person agent.Person
	switch c.String("person") {
	case "terminal":
		person = agent.NewTerminalPerson(io.in, io.err)
	case "json":
		person = agent.NewStreamPerson(io.in, io.out)
	case "wizard":
		wp, err := startWizardPerson(c.Context, c, io)
		if err != nil {
			return err
		}
		person = wp
	default:
		return runner.UsageError{Err: fmt.Errorf("--person %q: want wizard, terminal or json", c.String("person"))}
	}
	var scheme string
	var tlsFiles agent.TLSFiles
	switch c.String("tls") {
	case "auto":
		scheme, tlsFiles = "wss", agent.TLSDir(home)
	case "off":
		scheme = "ws"
	default:
		return runner.UsageError{Err: fmt.Errorf("--tls %q: want auto or off", c.String("tls"))}
	}
	r, log, closeSource, err := agentRunner(c, io, home)
	if err != nil {
		return err
	}
	defer closeSource()
	srv, err := agent.New(agent.Options{Runner: r, Person: person, Audit: log, Log: io.err, Version: runtime.Version, Context: c.Context})
	if err != nil {
		return runner.UsageError{Err: err}
	}
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	if scheme == "wss" {
		cfg, made, err := tlsFiles.Ensure(time.Now())
		if err != nil {
			return err
		}
		for _, f := range made {
			fmt.Fprintf(io.err, "tokenrun agent: made %s\n", f)
		}
		if len(made) > 0 && strings.HasSuffix(made[0], "ca.pem") {
			fmt.Fprintf(io.err, "tokenrun agent: a new certificate authority: run tokenrun agent install-cert so that browsers trust wss://127.0.0.1\n")
		}
		hs.TLSConfig = cfg
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return runner.UsageError{Err: fmt.Errorf("--listen %s: %w (is NCALayer or another agent running?)", listen, err)}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	hs.Handler = srv.Handler(port)
	url := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	origins := srv.Origins()
	dir := audit.Dir(home)
	if err := audit.WriteState(dir, audit.State{PID: os.Getpid(), Started: time.Now().UTC(), URL: url, Region: r.RegionName(),
		Origins: origins, Person: c.String("person"), Version: runtime.Version}); err != nil {
		ln.Close()
		return err
	}
	defer audit.RemoveState(dir)
	if len(origins) == 0 {
		fmt.Fprintf(io.err, "tokenrun agent: warning: agent.origins of region %s is empty: every page will be refused\n", r.RegionName())
	}
	fmt.Fprintf(io.err, "tokenrun agent: listening on %s for %s (audit log %s)\n", url, strings.Join(origins, ", "), log.Path())
	errc := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-c.Context.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx) // no new connections; the open ones end with c.Context
	if !srv.Wait(10 * time.Second) {
		fmt.Fprintln(io.err, "tokenrun agent: a request was still running after 10 s: stopped without its end")
	}
	fmt.Fprintln(io.err, "tokenrun agent: stopped")
	return nil
}

// loopbackListen refuses an address other machines could reach.
func loopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT such as %s: %w", addr, agent.DefaultListen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %s: the agent serves loopback only (127.0.0.1, ::1 or localhost), so that no other machine can ask it to sign", addr)
	}
	return nil
}

// trustCommand is install-cert or uninstall-cert: change the trust stores and say what was
// done and how to undo it.
func trustCommand(io stdio, name, usage string, change func(context.Context, string, []agent.Store, *x509.Certificate, string) []agent.Change) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: []cli.Flag{&cli.StringSliceFlag{Name: "nssdb", Usage: "change this NSS database `DIR` only, instead of the ones found (repeatable)"}},
		Action: func(c *cli.Context) error {
			home, err := runner.Home()
			if err != nil {
				return err
			}
			files := agent.TLSDir(home)
			ca, err := files.CA()
			if errors.Is(err, fs.ErrNotExist) {
				return runner.UsageError{Err: fmt.Errorf("no agent certificate authority in %s yet: run tokenrun agent (with --tls auto) once first", files.Dir)}
			}
			if err != nil {
				return err
			}
			bin, err := agent.FindCertutil()
			if err != nil {
				return runner.UsageError{Err: err}
			}
			userHome, err := os.UserHomeDir()
			if err != nil {
				return err
			}
			var failed []string
			for _, ch := range change(c.Context, bin, agent.Stores(userHome, c.StringSlice("nssdb")), ca, files.CAPath()) {
				if ch.Err != nil {
					fmt.Fprintf(io.err, "%s: %v\n", ch.Store, ch.Err)
					failed = append(failed, ch.Store.String())
					continue
				}
				fmt.Fprintf(io.out, "%s: %s %q\n  undo: %s\n", ch.Store, ch.Done, agent.Nickname(ca), ch.Undo)
			}
			fmt.Fprintln(io.out, "restart the browser for it to take effect")
			if len(failed) > 0 {
				return fmt.Errorf("%s: %d trust store(s) not changed: %s", name, len(failed), strings.Join(failed, "; "))
			}
			return nil
		},
	}
}

// signRequestCommand runs sign_request once for a request file, as the agent would for a
// page: for a bank trying its adapted procedure, and for the procedure's golden tests.
func signRequestCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "sign-request",
		Usage: "run the agent's sign_request procedure once for a page's request in a file (NCALayer's JSON), without a browser",
		Flags: append(procedureFlags(),
			&cli.StringFlag{Name: "request", Required: true, Usage: "the page's message: `FILE` holding {\"module\", \"method\", \"args\"} as NCALayer receives it"},
			&cli.StringFlag{Name: "origin", Value: "https://localhost", Usage: "the page the request stands for"},
			&cli.StringFlag{Name: "response", Usage: "write the agent's answer (JSON, with the signatures) to `FILE`"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return runner.UsageError{Err: fmt.Errorf("sign-request takes no arguments (got %q)", c.Args().First())}
			}
			msg, err := readfile.Read(c.String("request"), readfile.Signature)
			if err != nil {
				return runner.UsageError{Err: err}
			}
			home, err := runner.Home()
			if err != nil {
				return err
			}
			fe, err := frontend(c, io)
			if err != nil {
				return err
			}
			r, log, closeSource, err := agentRunner(c, io, home)
			if err != nil {
				return err
			}
			defer closeSource()
			msgs := r.Messages(c.String("lang"))
			answer, err := agent.Once(c.Context, agent.OnceOptions{Runner: r, Frontend: fe, Audit: log, Origin: c.String("origin"), Message: msg, Version: runtime.Version})
			if out := c.String("response"); out != "" && answer != nil {
				if werr := atomicfile.WriteFile(out, append(answer, '\n'), 0o600); werr != nil {
					return fmt.Errorf("--response: %w", werr)
				}
			}
			var refusal *agent.Refusal
			if errors.As(err, &refusal) {
				return &personError{err: err, line: refusal.Message, detail: refusal.Code + ": " + refusal.Details}
			}
			if err != nil {
				return forPerson(err, msgs)
			}
			fmt.Fprintln(io.err, region.Text(msgs, "command_done", map[string]any{"command": "tokenrun sign-request"}))
			return nil
		},
	}
}
