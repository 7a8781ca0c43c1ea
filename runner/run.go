// Package runner runs one procedure against one token: the provider, the host's safety
// floor under it (token lock and tries ledger), the prompt front-end, the journal, the
// transcript, the region's configuration, the watch that tells a person where things stand
// when a signal stops the run, and the exit class of how it ended. The CLI is a thin caller
// of it; so are the sign batch (for the floor and the exit classes) and the golden tests.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	bindca "github.com/tokenrun/tokenrun/bindings/ca"
	bindjournal "github.com/tokenrun/tokenrun/bindings/journal"
	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	bindui "github.com/tokenrun/tokenrun/bindings/ui"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// Spec is one run of one procedure against one token.
type Spec struct {
	Script    *runtime.Script
	Libraries map[string]*runtime.Script // the set's lib/ for require("lib.NAME")
	Provider  token.Provider
	URI       *token.URI // narrows which token counts; nil for any
	Frontend  ui.Frontend
	Timeout   time.Duration  // 0: no limit
	Memory    int64          // the Lua heap's limit in bytes (runtime.RunOptions.MemoryLimit); 0: the runtime's default
	Config    map[string]any // ctx.config: the region's values; nil for none (run FILE.lua)
	Args      map[string]any // ctx.args
	// Documents are what the host hands the run to sign (the signing agent's request), which
	// sign.documents() lists; their content and signatures stay out of ctx.args and the
	// transcript.
	Documents []*bindsign.Document
	Journal   *journal.Store // nil: scripts get no journal module
	Extra     []runtime.Module
	Observer  runtime.Observer
	// Transcript records the run and writes it when it ends; nil records nothing.
	Transcript *TranscriptOptions
	// Command and LockWait are for the safety floor: what a run that finds the token held is
	// told ("tokenrun enroll"), and how long this one waits for a held token (0: the default).
	Command  string
	LockWait time.Duration
	// Out is where the script's print and the host's warnings go (the CLI's stderr); nil
	// discards them.
	Out io.Writer
	// Begin, when set, is called first with the run's context. It returns the context to run
	// under (a driver may cancel it at any moment), what to call with the procedure's
	// metadata once it is read, and end, told once how the run ended: the JSON protocol's
	// hello and result lines (ui.Lifecycle), which the CLI wires.
	Begin func(ctx context.Context) (context.Context, func(*runtime.Procedure), func(*runtime.Result, error))
}

// Run runs s.Script with the token, ui, ca, sign (and journal) modules, over the host's
// safety floor. A run a signal stopped ends with a *CancelledError saying what state the
// token is in; ExitCode classes every error.
func Run(ctx context.Context, s Spec) (res *runtime.Result, err error) {
	var onProcedure func(*runtime.Procedure)
	if s.Begin != nil {
		var end func(*runtime.Result, error)
		ctx, onProcedure, end = s.Begin(ctx)
		// After the transcript is written and every error is classed: the result line says
		// how the run ended, as the exit code will.
		defer func() { end(res, err) }()
	}
	return run(ctx, s, onProcedure)
}

func run(ctx context.Context, s Spec, onProcedure func(*runtime.Procedure)) (*runtime.Result, error) {
	out := s.Out
	if out == nil {
		out = io.Discard
	}
	var tr *transcriptRun
	if s.Transcript != nil {
		var err error
		if tr, err = newTranscript(*s.Transcript); err != nil {
			return nil, err
		}
	}
	witness := ui.NewWitness(s.Frontend)
	if fs, ok := ui.Find[ui.FileSource](s.Frontend); ok {
		ctx = ui.WithFiles(ctx, fs) // a key file the wizard's page sent, for ca.load_pkcs12
	}
	messages, _ := s.Config["messages"].(map[string]string)
	guarded, err := Guard(s.Provider, GuardOptions{Command: s.Command, LockWait: s.LockWait, Witness: witness, Messages: messages})
	if err != nil {
		return nil, err
	}
	var provider token.Provider = guarded
	var fe ui.Frontend = witness
	observer := s.Observer
	if tr != nil {
		// Every secret typed or passed to the token is collected, to search the transcript
		// for before it is written; so are the region's default PINs.
		// The header records the tokens as their modules report them, before the floor's view.
		tr.addRegionPINs(s.Config)
		tr.begin(ctx, s.Provider, s.URI, s.Script)
		provider, fe = tr.secrets.Provider(provider), tr.secrets.Frontend(fe)
		observer = bothObservers(observer, tr.rec)
	}
	watch := newRunWatch() // what the run changed, for the notice when a signal stops it
	observer = bothObservers(observer, watch)
	tb := bindtoken.New(bindtoken.Config{Provider: provider, URI: s.URI})
	defer tb.Close()
	reg := runtime.NewRegistry()
	mods := []runtime.Module{tb.Module(), bindui.Module(fe), bindca.Module(), bindsign.ModuleFor(s.Documents)}
	if s.Journal != nil {
		name := ""
		if s.Script != nil {
			name = strings.TrimSuffix(s.Script.Name(), ".lua")
		}
		mods = append(mods, bindjournal.Module(s.Journal, name))
	}
	mods = append(mods, s.Extra...)
	for _, m := range mods {
		if err := reg.Add(m); err != nil {
			return nil, err
		}
	}
	res, err := runtime.Run(ctx, s.Script, runtime.RunOptions{
		Registry:    reg,
		Observer:    observer,
		Timeout:     s.Timeout,
		Print:       out,
		Config:      s.Config,
		Args:        s.Args,
		Libraries:   s.Libraries,
		MemoryLimit: s.Memory,
		BeforeRun:   answersCheck(s.Frontend, s.Config, out),
		OnProcedure: onProcedure,
	})
	if a, ok := s.Frontend.(*ui.Answers); ok {
		if unused := a.Unused(); len(unused) > 0 && err == nil {
			fmt.Fprintf(out, "warning: the answers file has answers no prompt asked for: %s (misspelt id?)\n", strings.Join(unused, ", "))
		}
	}
	err = watch.cancelled(ctx, s, err)
	if tr != nil {
		err = tr.finish(res, err)
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

// FrontendOptions choose the prompt front-end (--ui, --answers, --yes) and its streams.
type FrontendOptions struct {
	UI      string // terminal, answers or json; "": answers with an answers file, else terminal
	Answers string // the answers file
	Yes     bool   // the answers file may give confirmations
	// Terminal are the terminal front-end's options (tests set Interactive to feed a
	// person's typing through a pipe).
	Terminal ui.TerminalOptions
	In       io.Reader // the terminal's input, the JSON front-end's, and --answers -
	Out      io.Writer // the JSON front-end's output (stdout)
	Err      io.Writer // the terminal's prompts and the answers file's warnings (stderr)
}

// Frontend builds the prompt front-end o asks for.
func Frontend(o FrontendOptions) (ui.Frontend, error) {
	mode := o.UI
	if mode == "" {
		mode = "terminal"
		if o.Answers != "" {
			mode = "answers"
		}
	}
	switch mode {
	case "terminal":
		if o.Answers != "" {
			return nil, UsageError{errors.New("--answers goes with --ui answers (or leave --ui out)")}
		}
		return ui.NewTerminal(o.In, o.Err, o.Terminal), nil
	case "answers":
		if o.Answers == "" {
			return nil, UsageError{errors.New("--ui answers needs --answers FILE")}
		}
		a, err := ui.LoadAnswers(o.Answers, ui.AnswersOptions{Out: o.Err, AllowConfirm: o.Yes, Stdin: o.In})
		if err != nil {
			return nil, UsageError{err}
		}
		return a, nil
	case "json":
		return ui.NewJSON(o.In, o.Out), nil
	}
	return nil, UsageError{fmt.Errorf("--ui %q: want terminal, answers or json", mode)}
}
