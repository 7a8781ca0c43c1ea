//go:build !unix

package audit

import "os"

// alive reports whether process pid exists: on Windows FindProcess opens it, and fails for
// one that is gone.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
