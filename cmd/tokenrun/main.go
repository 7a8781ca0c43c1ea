// Command tokenrun drives PKCS#11 tokens from sandboxed Lua procedures.
package main

import (
	"context"
	"os"

	"github.com/tokenrun/tokenrun/runner"
)

func main() {
	// SIGINT, SIGTERM and Ctrl-C on Windows cancel the run through its context (runner/signals.go).
	ctx, stop := runner.SignalContext(context.Background(), os.Stderr)
	code := runMainContext(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
