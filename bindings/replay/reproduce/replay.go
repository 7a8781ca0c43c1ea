package reproduce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/bindings/replay"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/transcript"
	"github.com/tokenrun/tokenrun/ui"
)

// Options are one `tokenrun replay`.
type Options struct {
	File     string        // the transcript
	Scripts  string        // replay the procedure from this scripts tree; "" for the installed or shipped one
	Timeout  time.Duration // stop each replay after this long
	Soft     string        // reproduce on software tokens set up in this directory (new or empty); "" replays from the record alone
	MaxTries int           // with Soft: the tries the client's token allows before it locks, when its module gave only flags
	// Frontend asks support for the reproduction's PINs and stand-in secrets (with Soft only;
	// called once the record and its region are loaded).
	Frontend func() (ui.Frontend, error)
	Notes    io.Writer // notes on where the replay is not exact, and what a divergence left
}

// Outcome is a replay that reproduced its record.
type Outcome struct {
	Header  transcript.Header
	Calls   int      // the recorded calls
	Outcome string   // "ok", or the recorded error with its exit code and class
	Targets []string // with Soft: the reproduction tokens, as the run left them
}

// Replay re-runs the procedure a transcript records against the record (the CA, the
// client's answers, the journal and the token all answer from it; with Soft, the token is
// a reproduction and its module runs for real), and returns a *replay.Divergence at the
// first call or outcome that differs.
func Replay(ctx context.Context, o Options) (*Outcome, error) {
	file := o.File
	f, err := readfile.Open(file, readfile.Transcript)
	if err != nil {
		return nil, runner.UsageError{Err: fmt.Errorf("replay: %w", err)}
	}
	rec, err := replay.Read(f)
	f.Close()
	if err != nil {
		return nil, runner.UsageError{Err: fmt.Errorf("replay %s: %w", file, err)}
	}
	h := rec.Header
	dir := o.Scripts
	var set *scripts.Set
	if dir != "" {
		if set, err = scripts.Load(os.DirFS(dir), dir); err != nil {
			return nil, runner.UsageError{Err: err}
		}
	} else if set, err = runner.InstalledOrEmbedded(o.Notes); err != nil {
		return nil, err
	}
	script, ok := set.Procedures[h.Procedure]
	if !ok || h.Command == "run" {
		return nil, runner.UsageError{Err: fmt.Errorf("replay %s: %q is no procedure of the scripts tree %s (only procedure runs replay)", file, h.Procedure, set.Source)}
	}
	if v := set.Manifest.ProcedureVersions[h.Procedure].Version; dir == "" && v != "" && v != h.Version {
		return nil, runner.UsageError{Err: versionMismatch(h.Procedure, h.Version, v, set.Source)}
	}
	if dir == "" && h.ScriptsDigest != "" && h.ScriptsDigest != set.Digest {
		fmt.Fprintf(o.Notes, "note: the scripts (%s, digest %.12s) are not those of the recorded run (%s, digest %.12s), though the procedure version is the same\n",
			set.Source, set.Digest, h.ScriptsSource, h.ScriptsDigest)
	}
	cfg, notes, err := replayConfig(set, h)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		fmt.Fprintf(o.Notes, "note: %s\n", n)
	}
	args := h.Args
	if args == nil { // transcripts written before the header kept ctx.args
		args = map[string]any{"support_override": false, "scripts": h.ScriptsSource, "scripts_version": h.ScriptsVersion}
	}

	var repro *Reproduction
	var live *replay.Live
	if o.Soft != "" {
		fe, err := o.Frontend()
		if err != nil {
			return nil, err
		}
		if repro, err = Setup(ctx, o.Soft, rec, cfg, fe, o.MaxTries); err != nil {
			return nil, err
		}
		defer repro.Close()
		for _, n := range repro.Notes {
			fmt.Fprintf(o.Notes, "note: %s\n", n)
		}
		live = &replay.Live{Ask: AskSupport(ctx, fe), StandIn: repro.StandIn}
	}
	var runErr error
	play := func(player *replay.Player) error {
		if repro != nil {
			// Every replay starts from the client's state, with the token module real.
			if err := repro.Reset(); err != nil {
				return err
			}
			p, err := repro.Provider()
			if err != nil {
				return err
			}
			defer p.Close()
			tb := bindtoken.New(bindtoken.Config{Provider: p})
			defer tb.Close()
			live.Modules = []runtime.Module{tb.Module()}
			player.SetLive(live)
		}
		reg := runtime.NewRegistry()
		for _, m := range player.Modules() {
			if err := reg.Add(m); err != nil {
				return err
			}
		}
		var res *runtime.Result
		res, runErr = runtime.Run(ctx, script, runtime.RunOptions{
			Registry: reg, Observer: player, Timeout: o.Timeout, Print: io.Discard,
			Config: cfg, Args: args, Libraries: set.Libraries,
		})
		version := ""
		var se *runtime.ScriptError
		switch {
		case res != nil && res.Procedure != nil:
			version = res.Procedure.Version
		case errors.As(runErr, &se):
			version = se.Version
		}
		if dir == "" && version != "" && version != h.Version {
			return runner.UsageError{Err: versionMismatch(h.Procedure, h.Version, version, set.Source)}
		}
		code := runner.ErrorCode(runErr)
		if code == "" {
			code = replay.RaisedCode(runErr)
		}
		return player.Finish(runErr, code)
	}
	if err := replay.Search(rec, secretGuesses(cfg), maxReplays, play); err != nil {
		var d *replay.Divergence
		if repro != nil && errors.As(err, &d) {
			fmt.Fprintf(o.Notes, "the reproduction token is left as the diverging replay left it: tokenrun tokens --soft %s\n", strings.Join(repro.Targets, " --soft "))
		}
		return nil, err
	}
	out := &Outcome{Header: h, Calls: len(rec.Calls), Outcome: "ok"}
	if runErr != nil {
		out.Outcome = fmt.Sprintf("error %s (exit %d %s)", rec.Footer.Code, rec.Footer.Exit, rec.Footer.ExitClass)
	}
	if repro != nil {
		out.Targets = repro.Targets
	}
	return out, nil
}

func versionMismatch(name, recorded, available, source string) error {
	return fmt.Errorf("the transcript records %s %s, but the scripts tree %s has %s %s: give --scripts DIR with the recorded version to replay it",
		name, recorded, source, name, available)
}

// replayConfig is the ctx.config of the recorded run: its region with its --set overrides,
// in its language, with the CA roots the transcript carries. No file the transcript names is
// opened: a ca.roots override is left out (the header's ca_roots has its content), since a
// transcript is outside input and its author, not the person replaying it, chose the path.
func replayConfig(set *scripts.Set, h transcript.Header) (map[string]any, []string, error) {
	name := h.Region
	if name == "" {
		name = region.DefaultName
	}
	r, err := region.Load(set.FS, name)
	if err != nil {
		return nil, nil, runner.UsageError{Err: fmt.Errorf("replay: %w", err)}
	}
	var kept, notes []string
	for _, kv := range h.Set {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasSuffix(kv, "="+runtime.Redacted): // a default PIN the transcript does not keep
		case strings.TrimSpace(k) == "ca.roots":
			if h.CARoots == "" {
				notes = append(notes, fmt.Sprintf("the transcript names --set %s but does not hold the roots' content (an older transcript): the replay runs without them and does not open that file", termtext.Escape(kv)))
			}
		default:
			kept = append(kept, kv)
		}
	}
	if err := r.Set(kept...); err != nil {
		return nil, nil, runner.UsageError{Err: fmt.Errorf("replay: %w", err)}
	}
	if h.CARoots != "" {
		if err := r.SetRootsPEM("the transcript's ca_roots", []byte(h.CARoots)); err != nil {
			return nil, nil, runner.UsageError{Err: fmt.Errorf("replay: %w", err)}
		}
	}
	cfg, _, err := runner.RegionMap(r, h.Language)
	if err != nil {
		return nil, nil, runner.UsageError{Err: fmt.Errorf("replay: %w", err)}
	}
	return cfg, notes, nil
}

// maxReplays bounds the replays one command tries while guessing secrets (replay.Search).
const maxReplays = 32

// secretGuesses are the values a recorded secret may have had that a script can tell from
// others: an optional answer left empty, the region's default PINs.
func secretGuesses(cfg map[string]any) []string {
	guesses := []string{""}
	tok, _ := cfg["token"].(map[string]any)
	for _, k := range []string{"default_user_pin", "default_so_pin"} {
		if v, ok := tok[k].(string); ok && v != "" {
			guesses = append(guesses, v)
		}
	}
	return guesses
}
