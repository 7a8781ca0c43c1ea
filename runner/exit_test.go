package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
)

// TestCancellationDecidesTheExitCode: whatever layer met the cancellation and whatever class
// its error has otherwise, a cancelled run exits 6.
func TestCancellationDecidesTheExitCode(t *testing.T) {
	wrapped := fmt.Errorf("EST request: %w", context.Canceled)
	sig := &interrupted{syscall.SIGTERM}
	for name, err := range map[string]error{
		"token error":             &token.Error{Op: "generate key", Err: wrapped, RetriesLeft: -1},
		"CA error with a code":    CodedError{Code: "CA_UNAVAILABLE", Err: wrapped},
		"usage error":             UsageError{Err: wrapped},
		"script error":            &runtime.ScriptError{Code: "CA_UNAVAILABLE", Message: "x", Cause: context.Canceled},
		"deadline":                fmt.Errorf("keygen: %w", context.DeadlineExceeded),
		"signal, returned code":   &CancelledError{notice: "n", err: &runtime.ScriptError{Code: "PIN_INCORRECT"}, sig: sig},
		"signal, verify error":    &CancelledError{notice: "n", err: VerifyError{Err: errors.New("x")}, sig: sig},
		"signal's own cause only": sig,
	} {
		assert.Equal(t, ExitCancelled, ExitCode(err), name)
	}
	assert.Equal(t, errcode.Cancelled, ErrorCode(&CancelledError{notice: "n", err: CodedError{Code: "CA_UNAVAILABLE", Err: errors.New("x")}, sig: sig}))
}

// A relative --set ca.roots is recorded absolute, so the record says which file it was from
// any folder (its content is in ca_roots).
func TestRedactedSetsRecordRootsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	got := redactedSets([]string{"ca.roots=ca.pem", "ca.url=https://x", "token.default_user_pin=1234", "ca.roots=/abs/r.pem"})
	assert.Equal(t, []string{"ca.roots=" + filepath.Join(dir, "ca.pem"), "ca.url=https://x", "token.default_user_pin=<secret>", "ca.roots=/abs/r.pem"}, got)
}
