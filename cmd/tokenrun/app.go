package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	rdebug "runtime/debug"
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
//
// A panic that reaches here (in this goroutine) is a bug in tokenrun: it exits 1 (internal)
// with one line asking to report it, and the stack with --debug. Go's fatal errors (out of
// memory, stack overflow, concurrent map writes) and panics in other goroutines cannot be
// recovered in the process: the Go runtime prints them and exits 2. We decided against a
// supervisor process that would turn them into exit 1 (see "Exit codes" in the README): it
// would run every command as two processes sharing the terminal, forward signals, leave the
// child driving a token alone if the parent is killed, and need the child's own exit 2 told
// apart from the runtime's, all to change the code of a crash whose output already says
// "fatal error:". The sandbox's bounds (memory, output of one call, source size and depth,
// pattern work, file sizes, KDF iterations) exist so that no script or file reaches one.
func runMainContext(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = internalError(errOut, r, debug(args))
		}
	}()
	app := newApp(stdio{in: in, out: out, err: errOut})
	args, err := rewriteArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return runner.ExitOK
	}
	printFailure(errOut, err, debug(args)) // speak.go
	var se *runtime.ScriptError
	if debug(args) && errors.As(err, &se) && se.Traceback != "" {
		fmt.Fprintln(errOut, se.Traceback)
	}
	var bf batchFailedError
	if errors.As(err, &bf) {
		return exitBatchFailed // batch.go: a row failed or was left pending
	}
	return runner.ExitCode(err)
}

// internalError reports a recovered panic: one line, the stack only with --debug.
func internalError(errOut io.Writer, r any, withStack bool) int {
	msg := strings.Join(strings.Fields(fmt.Sprint(r)), " ")
	if !withStack {
		fmt.Fprintf(errOut, "tokenrun: internal error: %s (a bug in tokenrun: please report it with the output of 'tokenrun --version' and of the same command with --debug)\n", escapeText(msg, 500))
		return runner.ExitInternal
	}
	fmt.Fprintf(errOut, "tokenrun: internal error: %s (a bug in tokenrun: please report it with the output of 'tokenrun --version' and the stack below)\n", escapeText(msg, 500))
	_, _ = errOut.Write(rdebug.Stack())
	return runner.ExitInternal
}

// debug reports whether --debug was given, anywhere before "--".
func debug(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--debug", "-debug", "--debug=true", "-debug=true":
			return true
		}
	}
	return false
}

// testCommands adds hidden commands in tests (cli_test.go: one that panics); nil otherwise.
var testCommands func(stdio) []*cli.Command

func newApp(io stdio) *cli.App {
	app := &cli.App{
		Name:      "tokenrun",
		Usage:     "drive PKCS#11 tokens from sandboxed, versioned Lua procedures",
		Version:   versionString(),
		Reader:    io.in,
		Writer:    io.out,
		ErrWriter: io.err,
		// Errors are printed once, by runMain, with the right exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		// tokenrun --generate-bash-completion lists what may come next (completion.go).
		EnableBashCompletion: true,
		// A path may contain a comma: repeat --soft or --set instead of joining values.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "show the Lua traceback of a script error and the stack of an internal error (also after the command)"},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return runner.UsageError{Err: err} },
		// The client's procedures first, then signing, then the tools of bank IT and support.
		Commands: append(procedureCommands(io),
			signCommand(io), verifyCommand(io),
			agentCommand(io), signRequestCommand(io),
			tokensCommand(io),
			runCommand(io),
			demoCommand(io),
			caCommand(io),
			scriptsCommand(io),
			diagnoseCommand(io),
			replayCommand(io),
			transcriptCommand(io),
			batchCommand(io),
			completionCommand(io),
			uiCommand(io),
			namedProcedureCommand(io),
		),
	}
	if testCommands != nil {
		app.Commands = append(app.Commands, testCommands(io)...)
	}
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
	}
	return app
}
