//go:build unix

package audit

import (
	"errors"
	"os"
	"syscall"
)

// alive reports whether process pid exists (one of another user's counts).
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
