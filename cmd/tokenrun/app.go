package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
)

// stdio is where a command reads and writes; tests pass buffers.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// runMain runs the CLI with no signal handling (tests call it in process).
func runMain(args []string, in io.Reader, out, errOut io.Writer) int {
	return runMainContext(context.Background(), args, in, out, errOut)
}

// runMainContext runs the CLI and returns the process exit code. Actions return errors; only
// here are they printed and turned into exit codes. ctx is every action's c.Context: main
// cancels it on SIGINT/SIGTERM.
func runMainContext(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	app := newApp(stdio{in: in, out: out, err: errOut})
	err := app.RunContext(ctx, permuteCommandArgs(app, args))
	if err == nil {
		return runner.ExitOK
	}
	fmt.Fprintf(errOut, "tokenrun: %s\n", err)
	var se *runtime.ScriptError
	if debug(args) && errors.As(err, &se) && se.Traceback != "" {
		fmt.Fprintln(errOut, se.Traceback)
	}
	return runner.ExitCode(err)
}

func debug(args []string) bool {
	for _, a := range args {
		if a == "--debug" {
			return true
		}
	}
	return false
}

func newApp(io stdio) *cli.App {
	app := &cli.App{
		Name:      "tokenrun",
		Usage:     "drive PKCS#11 tokens from sandboxed, versioned Lua procedures",
		Version:   fmt.Sprintf("%s (script API %d)", runtime.Version, runtime.APILevel),
		Reader:    io.in,
		Writer:    io.out,
		ErrWriter: io.err,
		// Errors are printed once, by runMain, with the right exit code.
		ExitErrHandler:  func(*cli.Context, error) {},
		HideHelpCommand: true,
		// A path may contain a comma: repeat --soft or --set instead of joining values.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "show the Lua traceback of a script error"},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return runner.UsageError{Err: err} },
		// The client's procedures first, then signing, then the tools of bank IT and support.
		Commands: append(procedureCommands(io),
			signCommand(io), verifyCommand(io),
			tokensCommand(io),
			runCommand(io),
			demoCommand(io),
			caCommand(io),
			scriptsCommand(io),
			diagnoseCommand(io),
			replayCommand(io),
		),
	}
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
	}
	return app
}

// permuteCommandArgs lets flags follow positional arguments of a command or subcommand.
func permuteCommandArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Global flags come first; find the command name.
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	for cmd != nil && len(cmd.Subcommands) > 0 && i+1 < len(args) {
		sub := cmd.Command(args[i+1])
		if sub == nil {
			break
		}
		cmd, i = sub, i+1
	}
	if cmd == nil {
		return args
	}
	out := append([]string{}, args[:i+1]...)
	return append(out, permuteArgs(cmd.Flags, args[i+1:])...)
}
