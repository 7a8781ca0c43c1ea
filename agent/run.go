package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// Procedure is the name of the procedure every request runs.
const Procedure = "sign_request"

// Begin is runner.Spec.Begin for one run on fe: the CLI wires the JSON protocol's hello and
// result lines with it (they live with the command line's exit codes). nil: none.
type Begin func(fe ui.Frontend, info ui.RunInfo, messages map[string]string) func(context.Context) (context.Context, func(*runtime.Procedure), func(*runtime.Result, error))

// RunnerOptions are what Runner needs: the scripts tree, region and overrides a procedure
// command takes, the token source, and how a run is wired.
type RunnerOptions struct {
	Scripts  string   // --scripts DIR, "" for the installed or shipped set
	Region   string   // --region; "" is the default region
	Set      []string // --set
	Lang     string   // --lang: the language of requests whose page gives no locale; "" the region's
	Provider token.Provider
	URI      *token.URI
	LockWait time.Duration
	// NoTranscript turns off the transcripts every run keeps under TOKENRUN_HOME.
	NoTranscript bool
	Begin        Begin
	Out          io.Writer // the host's warnings (stderr); nil discards them
}

// Runner runs the sign_request procedure for each request with the safety floor, the token
// lock, the transcript and the exit classes of every procedure (runner.Run): the procedure
// and region are loaded once, a language's configuration the first time a page asks in it.
type Runner struct {
	o    RunnerOptions
	proc *runner.Procedure

	mu    sync.Mutex
	langs map[string]*langConfig
}

// langConfig is the region's configuration in one language: ctx.config and the policy module.
type langConfig struct {
	cfg    map[string]any
	policy runtime.Module
}

// NewRunner loads the procedure and the region; a mistake in either is a usage error.
func NewRunner(o RunnerOptions) (*Runner, error) {
	if o.Region == "" {
		o.Region = region.DefaultName
	}
	proc, err := runner.LoadProcedure(runner.ProcedureOptions{Name: Procedure, Scripts: o.Scripts, Region: o.Region, Set: o.Set, Lang: o.Lang, Warn: o.Out})
	if err != nil {
		return nil, err
	}
	r := &Runner{o: o, proc: proc, langs: map[string]*langConfig{}}
	r.langs[""] = &langConfig{cfg: proc.Config, policy: proc.Policy}
	return r, nil
}

// Policy is the region's agent section: origins, consent time limit, rate.
func (r *Runner) Policy() region.Agent { return r.proc.Region.Agent }

// RegionName is the region the runs use.
func (r *Runner) RegionName() string { return r.proc.Region.Name }

// Language is the language of a request in lang ("": the default one).
func (r *Runner) Language(lang string) string {
	c, err := r.config(lang)
	if err != nil {
		c = r.langs[""]
	}
	l, _ := c.cfg["language"].(string)
	return l
}

// Messages is the message catalog in lang ("": the default language).
func (r *Runner) Messages(lang string) map[string]string {
	c, err := r.config(lang)
	if err != nil {
		c = r.langs[""]
	}
	m, _ := c.cfg["messages"].(map[string]string)
	return m
}

func (r *Runner) config(lang string) (*langConfig, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.langs[lang]; ok {
		return c, nil
	}
	cfg, policy, _, err := runner.RegionConfig(r.proc.Set, r.proc.Region.Name, r.o.Set, lang)
	if err != nil {
		return nil, fmt.Errorf("region %s in %s: %w", r.proc.Region.Name, lang, err)
	}
	c := &langConfig{cfg: cfg, policy: policy}
	r.langs[lang] = c
	return c, nil
}

// Provider is the token source the runs use.
func (r *Runner) Provider() token.Provider { return r.o.Provider }

// run runs the procedure for sc, asking on the person's front-end fe, each question for at
// most the region's consent_timeout.
func (r *Runner) run(ctx context.Context, sc *signCall, person ui.Frontend) (*runtime.Result, error) {
	lc, err := r.config(sc.req.Language)
	if err != nil {
		return nil, err
	}
	msgs, _ := lc.cfg["messages"].(map[string]string)
	// The front-end's own words (a refused answer) in the request's language; set on the
	// person's front-end itself, which the time limit then wraps.
	ui.SetChrome(person, func(key string, args map[string]any) string {
		if _, ok := msgs[key]; ok {
			return region.Text(msgs, key, args)
		}
		return ""
	})
	fe := ui.NewTimed(person, r.proc.Region.Agent.ConsentTimeout)
	args := sc.req.args()
	set := r.proc.Set
	args["scripts"], args["scripts_version"] = set.Source, set.Manifest.Version
	spec := runner.Spec{
		Script: r.proc.Script, Libraries: set.Libraries, Provider: r.o.Provider, URI: r.o.URI, Frontend: fe,
		Transcript: &runner.TranscriptOptions{Keep: !r.o.NoTranscript, Header: r.proc.TranscriptHeader("agent", r.o.Set, args)},
		Config:     lc.cfg, Extra: []runtime.Module{lc.policy}, Args: args, Documents: sc.docs,
		Command: "tokenrun agent", LockWait: r.o.LockWait, Memory: r.memory(sc), Out: r.o.Out,
	}
	// The sandbox's memory limit is on the process's heap: an earlier request's garbage (a
	// large request refused, its message) must not count against this one.
	goruntime.GC()
	if r.o.Begin != nil {
		lang, _ := lc.cfg["language"].(string)
		spec.Begin = r.o.Begin(fe, ui.RunInfo{Command: "tokenrun agent", Procedure: r.proc.Script.Name(), Language: lang}, msgs)
	}
	return runner.Run(ctx, spec)
}

// memory is the run's heap limit: the region's sandbox limit (runtime.DefaultMemoryLimit
// unless it sets one) plus four times the request's documents, which the host holds during
// the run (the documents, their attached signatures, what is left of the page's message),
// up to runtime.MaxMemoryLimit.
func (r *Runner) memory(sc *signCall) int64 {
	base := int64(r.proc.Region.Sandbox.MemoryMiB) << 20
	if base == 0 {
		base = runtime.DefaultMemoryLimit
	}
	return min(base+4*int64(sc.req.TotalSize()), runtime.MaxMemoryLimit)
}

// personText is the message a failed run leaves for the person: the procedure's own words
// when it showed them, else the catalog's for the code (error_CODE, else error_other).
func personText(err error, msgs map[string]string) (code, message string) {
	code = runner.ErrorCode(err)
	var se *runtime.ScriptError
	if errors.As(err, &se) {
		if shown, _ := se.Fields["shown"].(bool); shown && se.Message != "" {
			return nonEmpty(code, CodeInternal), se.Message
		}
	}
	code = nonEmpty(code, CodeInternal)
	return code, catalogText(msgs, "error_"+strings.ToLower(code), "error_other", map[string]any{"code": code})
}

// catalogText is key's text in msgs, else fallback's.
func catalogText(msgs map[string]string, key, fallback string, args map[string]any) string {
	if _, ok := msgs[key]; !ok {
		key = fallback
	}
	return region.Text(msgs, key, args)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
