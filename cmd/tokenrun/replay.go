package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bindings/replay"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/transcript"
)

func replayCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "re-run a procedure against its transcript (no token, CA or person needed) and report the first divergence",
		ArgsUsage: "FILE (a transcript)",
		Description: "With --soft DIR the token is real: a software token set up in DIR as the client's was at the start\n" +
			"(label, serial, PIN tries, keys and certificates, re-issued for new keys), on which the procedure runs\n" +
			"while the CA, the client's answers and the journal come from the record. Where a secret the client\n" +
			"typed reaches the token, you are asked for a stand-in, told what the client's token did with it.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scripts", Usage: "replay the procedure from the scripts tree in `DIR` (e.g. a changed one) instead of the installed or shipped one"},
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "stop the replay after this long", Action: nonNegative("timeout")},
			&cli.StringFlag{Name: "soft", Usage: "reproduce on a software token set up in `DIR` (new or empty) in the recorded starting state; it stays there as the run left it"},
			&cli.StringFlag{Name: "answers", Usage: "with --soft: answer the reproduction's questions (its PINs, stand-in secrets) from the YAML `FILE`"},
			&cli.StringFlag{Name: "ui", Usage: "with --soft: front-end for those questions: terminal, answers (with --answers) or json"},
			&cli.IntFlag{Name: "max-tries", Usage: "with --soft: how many password tries the client's token allows before it locks, when its module gave only flags", Value: 10},
			&cli.BoolFlag{Name: "yes", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{errors.New("replay takes one transcript: tokenrun replay [--scripts DIR] [--soft DIR] FILE")}
			}
			if c.String("soft") == "" && (c.String("answers") != "" || c.String("ui") != "" || c.IsSet("max-tries")) {
				return usageError{errors.New("--answers, --ui and --max-tries are for a reproduction: they go with --soft DIR")}
			}
			return runReplay(c, io, c.Args().First())
		},
	}
}

func runReplay(c *cli.Context, std stdio, file string) error {
	f, err := readfile.Open(file, readfile.Transcript)
	if err != nil {
		return usageError{fmt.Errorf("replay: %w", err)}
	}
	rec, err := replay.Read(f)
	f.Close()
	if err != nil {
		return usageError{fmt.Errorf("replay %s: %w", file, err)}
	}
	h := rec.Header
	dir := c.String("scripts")
	var set *scripts.Set
	if dir != "" {
		if set, err = scripts.Load(os.DirFS(dir), dir); err != nil {
			return usageError{err}
		}
	} else if set, err = installedOrEmbedded(std); err != nil {
		return err
	}
	script, ok := set.Procedures[h.Procedure]
	if !ok || h.Command == "run" {
		return usageError{fmt.Errorf("replay %s: %q is no procedure of the scripts tree %s (only procedure runs replay)", file, h.Procedure, set.Source)}
	}
	if v := set.Manifest.ProcedureVersions[h.Procedure].Version; dir == "" && v != "" && v != h.Version {
		return usageError{versionMismatch(h.Procedure, h.Version, v, set.Source)}
	}
	if dir == "" && h.ScriptsDigest != "" && h.ScriptsDigest != set.Digest {
		fmt.Fprintf(std.err, "note: the scripts (%s, digest %.12s) are not those of the recorded run (%s, digest %.12s), though the procedure version is the same\n",
			set.Source, set.Digest, h.ScriptsSource, h.ScriptsDigest)
	}
	cfg, notes, err := replayConfig(set, h)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(std.err, "note: %s\n", n)
	}
	args := h.Args
	if args == nil { // transcripts written before the header kept ctx.args
		args = map[string]any{"support_override": false, "scripts": h.ScriptsSource, "scripts_version": h.ScriptsVersion}
	}

	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	var repro *reproduction
	var live *replay.Live
	if softDir := c.String("soft"); softDir != "" {
		fe, err := frontend(c, std)
		if err != nil {
			return err
		}
		if repro, err = setupReproduction(ctx, softDir, rec, cfg, fe, c.Int("max-tries")); err != nil {
			return err
		}
		defer repro.Close()
		for _, n := range repro.notes {
			fmt.Fprintf(std.err, "note: %s\n", n)
		}
		live = &replay.Live{Ask: askSupport(ctx, fe), StandIn: repro.standIn}
	}
	var runErr error
	play := func(player *replay.Player) error {
		if repro != nil {
			// Every replay starts from the client's state, with the token module real.
			if err := repro.reset(); err != nil {
				return err
			}
			p, err := repro.provider()
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
			Registry: reg, Observer: player, Timeout: c.Duration("timeout"), Print: io.Discard,
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
			return usageError{versionMismatch(h.Procedure, h.Version, version, set.Source)}
		}
		code := errorCode(runErr)
		if code == "" {
			code = replay.RaisedCode(runErr)
		}
		return player.Finish(runErr, code)
	}
	if err := replay.Search(rec, secretGuesses(cfg), maxReplays, play); err != nil {
		var d *replay.Divergence
		if repro != nil && errors.As(err, &d) {
			fmt.Fprintf(std.err, "the reproduction token is left as the diverging replay left it: tokenrun tokens --soft %s\n", strings.Join(repro.targets, " --soft "))
		}
		return err
	}
	outcome := "ok"
	if runErr != nil {
		outcome = fmt.Sprintf("error %s (exit %d %s)", rec.Footer.Code, rec.Footer.Exit, rec.Footer.ExitClass)
	}
	if repro != nil {
		fmt.Fprintf(std.out, "reproduced on the software token in %s: %s %s, %d calls, outcome %s\n",
			strings.Join(repro.targets, ", "), h.Procedure, h.Version, len(rec.Calls), outcome)
		fmt.Fprintf(std.out, "the token is left as the run left it: tokenrun tokens --soft %s\n", strings.Join(repro.targets, " --soft "))
		return nil
	}
	fmt.Fprintf(std.out, "reproduced: %s %s, %d calls, outcome %s\n", h.Procedure, h.Version, len(rec.Calls), outcome)
	return nil
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
		return nil, nil, usageError{fmt.Errorf("replay: %w", err)}
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
		return nil, nil, usageError{fmt.Errorf("replay: %w", err)}
	}
	if h.CARoots != "" {
		if err := r.SetRootsPEM("the transcript's ca_roots", []byte(h.CARoots)); err != nil {
			return nil, nil, usageError{fmt.Errorf("replay: %w", err)}
		}
	}
	lang := h.Language
	if lang == "" {
		lang = r.Language
	}
	messages, err := r.Catalog(lang)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("replay: %w", err)}
	}
	cfg := r.Map()
	cfg["language"] = lang
	cfg["messages"] = messages
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
