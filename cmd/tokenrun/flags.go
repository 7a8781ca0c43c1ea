package main

import (
	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/floor"
	"github.com/tokenrun/tokenrun/ui"
)

// The flags several commands share, and what they select in package runner.

// tokenFlags select where tokens come from: one PKCS#11 module, or software tokens.
func tokenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "module", Aliases: []string{"m"}, EnvVars: []string{"TOKENRUN_MODULE"},
			Usage: "PKCS#11 library of the token (the bank's KAZTOKEN driver, SoftHSM2, openCryptoki, OpenSC)"},
		&cli.StringSliceFlag{Name: "soft", EnvVars: []string{"TOKENRUN_SOFT"},
			Usage: "use the software token in `DIR` (a blank one is created in an empty DIR); repeat for several"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"TOKENRUN_TOKEN"},
			Usage: "PKCS#11 `URI` narrowing which token counts, e.g. pkcs11:token=KAZTOKEN;serial=0123"},
	}
}

// openSource opens the token provider the flags name, and the --token URI.
func openSource(c *cli.Context) (token.Provider, *token.URI, error) {
	return runner.OpenSource(runner.Source{Module: c.String("module"), Soft: c.StringSlice("soft"), URI: c.String("token")})
}

// terminalOptions are the terminal front-end's; tests set Interactive to feed a person's
// typing through a pipe.
var terminalOptions ui.TerminalOptions

// frontend builds the prompt front-end the flags ask for.
func frontend(c *cli.Context, io stdio) (ui.Frontend, error) {
	return runner.Frontend(runner.FrontendOptions{UI: c.String("ui"), Answers: c.String("answers"), Yes: c.Bool("yes"),
		Terminal: terminalOptions, In: io.in, Out: io.out, Err: io.err})
}

func lockWaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", EnvVars: []string{"TOKENRUN_LOCK_WAIT"}, Value: floor.DefaultLockWait,
		Usage: "how long to wait for a token another tokenrun run is using, before giving up (exit 4)"}
}

// transcriptFlag is on every command that runs a script.
func transcriptFlag() cli.Flag {
	return &cli.StringFlag{Name: "transcript", EnvVars: []string{"TOKENRUN_TRANSCRIPT"},
		Usage: "write the run's transcript (JSON lines: every call, prompt and answer, secrets redacted) to `FILE`"}
}

// noTranscriptFlag is on the procedures, which keep their latest transcripts by default.
func noTranscriptFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-transcript", EnvVars: []string{"TOKENRUN_NO_TRANSCRIPT"},
		Usage: "do not keep this run's transcript under the data directory (--transcript FILE still writes one)"}
}
