package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bindings/replay"
	"github.com/tokenrun/tokenrun/bindings/replay/reproduce"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/transcript/show"
	"github.com/tokenrun/tokenrun/ui"
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
			&cli.StringFlag{Name: "lang", Usage: "on a divergence, show the client's screens up to it in `LANG` (kk, ru or en; default: the language of the run)"},
			&cli.BoolFlag{Name: "yes", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return runner.UsageError{Err: errors.New("replay takes one transcript: tokenrun replay [--scripts DIR] [--soft DIR] FILE")}
			}
			if c.String("soft") == "" && (c.String("answers") != "" || c.String("ui") != "" || c.IsSet("max-tries")) {
				return runner.UsageError{Err: errors.New("--answers, --ui and --max-tries are for a reproduction: they go with --soft DIR")}
			}
			return runReplay(c, io, c.Args().First())
		},
	}
}

func runReplay(c *cli.Context, std stdio, file string) error {
	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	o, err := reproduce.Replay(ctx, reproduce.Options{
		File: file, Scripts: c.String("scripts"), Timeout: c.Duration("timeout"),
		Soft: c.String("soft"), MaxTries: c.Int("max-tries"),
		Frontend: func() (ui.Frontend, error) { return frontend(c, std) },
		Notes:    std.err,
	})
	var d *replay.Divergence
	if errors.As(err, &d) {
		showDivergence(std, file, c.String("lang"), d)
	}
	if err != nil {
		return err
	}
	h := o.Header
	if len(o.Targets) > 0 {
		fmt.Fprintf(std.out, "reproduced on the software token in %s: %s %s, %d calls, outcome %s\n",
			strings.Join(o.Targets, ", "), h.Procedure, h.Version, o.Calls, o.Outcome)
		fmt.Fprintf(std.out, "the token is left as the run left it: tokenrun tokens --soft %s\n", strings.Join(o.Targets, " --soft "))
		return nil
	}
	fmt.Fprintf(std.out, "reproduced: %s %s, %d calls, outcome %s\n", h.Procedure, h.Version, o.Calls, o.Outcome)
	return nil
}

// showDivergence prints, on stdout, the client's screens up to a divergence and then the
// recorded and the new call side by side (transcript/show); the divergence itself is the
// command's error. A transcript that cannot be shown shows nothing more.
func showDivergence(std stdio, file, lang string, d *replay.Divergence) {
	f, err := readfile.Open(file, readfile.Transcript)
	if err != nil {
		return
	}
	defer f.Close()
	rec, err := show.Read(f)
	if err != nil {
		return
	}
	o, err := show.ForLang(scripts.FS, rec.Header, lang)
	if err != nil {
		o = show.Options{}
	}
	sd := show.Diverged{Seq: d.Seq, Reason: d.Reason}
	if d.Want != nil {
		sd.Recorded = d.Want.String()
	}
	if d.Got != nil {
		sd.New = d.Got.String()
	}
	_ = show.RenderDivergence(std.out, rec, o, sd)
}
