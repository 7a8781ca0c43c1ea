package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/transcript/show"
)

func transcriptCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "transcript",
		Usage: "read a run's transcript",
		Subcommands: []*cli.Command{{
			Name:      "show",
			Usage:     "show a transcript as the conversation the client had: screens in a language, answers (secrets as ●●●), token and CA outcomes, journal steps, verdict",
			ArgsUsage: "FILE (a transcript)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "lang", Usage: "show the client's screens in `LANG` (kk, ru or en; default: the language of the run)"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return runner.UsageError{Err: errors.New("transcript show takes one transcript: tokenrun transcript show [--lang kk|ru|en] FILE")}
				}
				f, err := readfile.Open(c.Args().First(), readfile.Transcript)
				if err != nil {
					return runner.UsageError{Err: fmt.Errorf("transcript show: %w", err)}
				}
				defer f.Close()
				rec, err := show.Read(f)
				if err != nil {
					return runner.UsageError{Err: fmt.Errorf("transcript show %s: %w", c.Args().First(), err)}
				}
				o, err := show.ForLang(scripts.FS, rec.Header, c.String("lang"))
				if err != nil {
					return runner.UsageError{Err: err}
				}
				return show.RenderRecord(io.out, rec, o, len(rec.Calls))
			},
		}},
	}
}
