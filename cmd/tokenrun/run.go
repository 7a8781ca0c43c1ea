package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	bindca "github.com/tokenrun/tokenrun/bindings/ca"
	bindjournal "github.com/tokenrun/tokenrun/bindings/journal"
	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	bindui "github.com/tokenrun/tokenrun/bindings/ui"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/transcript"
	"github.com/tokenrun/tokenrun/ui"
)

func runFlags() []cli.Flag {
	return append(tokenFlags(),
		&cli.StringFlag{Name: "answers", EnvVars: []string{"TOKENRUN_ANSWERS"},
			Usage: "answer prompts from the YAML `FILE` (keys are prompt ids; - reads standard input)"},
		&cli.StringFlag{Name: "ui", EnvVars: []string{"TOKENRUN_UI"},
			Usage: "front-end: terminal, answers (with --answers) or json (JSON lines on stdin/stdout)"},
		&cli.BoolFlag{Name: "yes", EnvVars: []string{"TOKENRUN_YES"},
			Usage: "let the answers file give confirmations (never the ones that need a person)"},
		&cli.DurationFlag{Name: "timeout", EnvVars: []string{"TOKENRUN_TIMEOUT"},
			Usage: "stop the procedure after this long (e.g. 5m); 0 means no limit", Action: nonNegative("timeout")},
		transcriptFlag(),
		lockWaitFlag(),
	)
}

func runCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a procedure script against a token",
		ArgsUsage: "FILE.lua | NAME (a shipped procedure)",
		Flags:     runFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{errors.New("run takes one script: tokenrun run [flags] FILE.lua")}
			}
			script, libs, err := loadScript(c.Args().First(), io)
			if err != nil {
				return err
			}
			p, uri, err := openSource(c)
			if err != nil {
				return err
			}
			defer p.Close()
			fe, err := frontend(c, io)
			if err != nil {
				return err
			}
			// A plain script keeps no transcript by default: only procedures are for clients.
			tr, err := newTranscript(c, "run", false, transcript.Header{Procedure: script.Name()})
			if err != nil {
				return err
			}
			res, err := execute(c.Context, runSpec{
				script: script, libs: libs, provider: p, uri: uri, frontend: fe, timeout: c.Duration("timeout"), stdio: io,
				transcript: tr, command: "tokenrun run " + c.Args().First(), lockWait: c.Duration("lock-wait"),
			})
			if err != nil {
				return err
			}
			reportDone(io, res)
			return nil
		},
	}
}

// loadScript reads FILE.lua, or a procedure by name from the verified installed bundle or the
// shipped set, with that set's libraries.
func loadScript(arg string, io stdio) (*runtime.Script, map[string]*runtime.Script, error) {
	src, err := readfile.Read(arg, readfile.Script)
	if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(arg, "/\\") {
		set, serr := installedOrEmbedded(io)
		if serr != nil {
			return nil, nil, serr
		}
		name := strings.TrimSuffix(arg, ".lua")
		if sc, ok := set.Procedures[name]; ok {
			return sc, set.Libraries, nil
		}
		if b, e := readfile.ReadFS(set.FS, name+".lua", readfile.Script); e == nil {
			sc, err := runtime.Compile(name+".lua", b)
			return sc, set.Libraries, err
		}
	}
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("script %s: %w", arg, err)}
	}
	sc, err := runtime.Compile(arg, src)
	return sc, nil, err
}

// terminalOptions are the terminal front-end's; tests set Interactive to feed a person's
// typing through a pipe.
var terminalOptions ui.TerminalOptions

// frontend builds the prompt front-end the flags ask for.
func frontend(c *cli.Context, io stdio) (ui.Frontend, error) {
	mode := c.String("ui")
	answers := c.String("answers")
	if mode == "" {
		mode = "terminal"
		if answers != "" {
			mode = "answers"
		}
	}
	switch mode {
	case "terminal":
		if answers != "" {
			return nil, usageError{errors.New("--answers goes with --ui answers (or leave --ui out)")}
		}
		return ui.NewTerminal(io.in, io.err, terminalOptions), nil
	case "answers":
		if answers == "" {
			return nil, usageError{errors.New("--ui answers needs --answers FILE")}
		}
		a, err := ui.LoadAnswers(answers, ui.AnswersOptions{Out: io.err, AllowConfirm: c.Bool("yes"), Stdin: io.in})
		if err != nil {
			return nil, usageError{err}
		}
		return a, nil
	case "json":
		return ui.NewJSON(io.in, io.out), nil
	}
	return nil, usageError{fmt.Errorf("--ui %q: want terminal, answers or json", mode)}
}

type runSpec struct {
	script   *runtime.Script
	provider token.Provider
	uri      *token.URI
	frontend ui.Frontend
	timeout  time.Duration
	memory   int64 // RunOptions.MemoryLimit: 0 is the runtime's default
	config   map[string]any
	args     map[string]any
	libs     map[string]*runtime.Script
	journal  *journal.Store // nil: scripts get no journal module
	extra    []runtime.Module
	observer runtime.Observer
	stdio    stdio
	// transcript records the run and writes it when it ends; nil records nothing.
	transcript *transcriptRun
	// command and lockWait are for the safety floor: what a run that finds the token held is
	// told, and how long this one waits for a held token.
	command  string
	lockWait time.Duration
}

// execute runs one procedure with the token and ui modules, over the host's safety floor.
func execute(ctx context.Context, s runSpec) (res *runtime.Result, err error) {
	lang, _ := s.config["language"].(string)
	ctx, onProcedure, end := beginRun(ctx, s.frontend, ui.RunInfo{Command: s.command, Procedure: scriptName(s.script), Language: lang}, runMessages(s.config))
	defer func() { end(resultTable(res), err) }()
	witness := ui.NewWitness(s.frontend)
	messages, _ := s.config["messages"].(map[string]string)
	guarded, err := guard(s.provider, guardSpec{command: s.command, lockWait: s.lockWait, witness: witness, messages: messages})
	if err != nil {
		return nil, err
	}
	var provider token.Provider = guarded
	var fe ui.Frontend = witness
	observer := s.observer
	if tr := s.transcript; tr != nil {
		// Every secret typed or passed to the token is collected, to search the transcript
		// for before it is written.
		// The header records the tokens as their modules report them, before the floor's view.
		tr.begin(ctx, s.provider, s.uri, s.script)
		provider, fe = tr.secrets.Provider(provider), tr.secrets.Frontend(fe)
		observer = bothObservers(observer, tr.rec)
	}
	watch := newRunWatch() // what the run changed, for the notice when a signal stops it
	observer = bothObservers(observer, watch)
	tb := bindtoken.New(bindtoken.Config{Provider: provider, URI: s.uri})
	defer tb.Close()
	reg := runtime.NewRegistry()
	mods := []runtime.Module{tb.Module(), bindui.Module(fe), bindca.Module(), bindsign.Module()}
	if s.journal != nil {
		name := ""
		if s.script != nil {
			name = strings.TrimSuffix(s.script.Name(), ".lua")
		}
		mods = append(mods, bindjournal.Module(s.journal, name))
	}
	mods = append(mods, s.extra...)
	for _, m := range mods {
		if err := reg.Add(m); err != nil {
			return nil, err
		}
	}
	res, err = runtime.Run(ctx, s.script, runtime.RunOptions{
		Registry:    reg,
		Observer:    observer,
		Timeout:     s.timeout,
		Print:       s.stdio.err,
		Config:      s.config,
		Args:        s.args,
		Libraries:   s.libs,
		OnProcedure: onProcedure,
		MemoryLimit: s.memory,
		BeforeRun:   answersCheck(s.frontend, s.config, s.stdio.err),
	})
	if a, ok := s.frontend.(*ui.Answers); ok {
		if unused := a.Unused(); len(unused) > 0 && err == nil {
			fmt.Fprintf(s.stdio.err, "warning: the answers file has answers no prompt asked for: %s (misspelt id?)\n", strings.Join(unused, ", "))
		}
	}
	err = watch.cancelled(ctx, s, err)
	if s.transcript != nil {
		err = s.transcript.finish(res, err)
	}
	return res, err
}

// bothObservers is a and b, either of which may be nil.
func bothObservers(a, b runtime.Observer) runtime.Observer {
	if a == nil {
		return b
	}
	return runtime.ObserverFunc(func(e runtime.CallEvent) { a.Call(e); b.Call(e) })
}

func reportDone(io stdio, res *runtime.Result) {
	if res.Procedure != nil {
		fmt.Fprintf(io.err, "%s %s: done\n", res.Procedure.Name, res.Procedure.Version)
	}
}

// nonNegative refuses a negative duration flag: Run reads any timeout <= 0
// as no limit, so "--timeout -5s" would have meant the opposite of a short one.
func nonNegative(name string) func(*cli.Context, time.Duration) error {
	return func(_ *cli.Context, d time.Duration) error {
		if d < 0 {
			return usageError{fmt.Errorf("--%s %s: a duration cannot be negative (0 means no limit)", name, d)}
		}
		return nil
	}
}
