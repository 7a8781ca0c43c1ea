package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
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
				return runner.UsageError{Err: errors.New("run takes one script: tokenrun run [flags] FILE.lua")}
			}
			script, libs, err := runner.LoadScript(c.Args().First(), io.err)
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
			res, err := runner.Run(c.Context, runner.Spec{
				Script: script, Libraries: libs, Provider: p, URI: uri, Frontend: fe, Timeout: c.Duration("timeout"), Out: io.err,
				// A plain script keeps no transcript by default: only procedures are for clients.
				Transcript: &runner.TranscriptOptions{File: c.String("transcript"),
					Header: transcript.Header{Command: "run", Procedure: script.Name()}},
				Command: "tokenrun run " + c.Args().First(), LockWait: c.Duration("lock-wait"),
				Begin: protocolRun(fe, ui.RunInfo{Command: "tokenrun run " + c.Args().First(), Procedure: script.Name()}, nil),
			})
			if err != nil {
				return err
			}
			reportDone(io, res)
			return nil
		},
	}
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
			return runner.UsageError{Err: fmt.Errorf("--%s %s: a duration cannot be negative (0 means no limit)", name, d)}
		}
		return nil
	}
}
