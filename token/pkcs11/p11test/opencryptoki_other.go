//go:build !unix

package p11test

import "testing"

// OpenCryptoki is unavailable off Unix: openCryptoki has no Windows port, and its software
// token lives at fixed Unix paths behind a slot daemon. Like a module that is not installed,
// the test is skipped, or failed under CI=true.
func OpenCryptoki(t testing.TB) Token {
	t.Helper()
	Unavailable(t, "openCryptoki runs only on Linux: its software token lives at fixed system paths behind the pkcsslotd daemon")
	return Token{}
}
