//go:build unix

package runtime

import (
	"os"
	goruntime "runtime"
	"syscall"
)

// peakRSS is a finished child's peak resident set, from getrusage(2).
func peakRSS(ps *os.ProcessState) (uint64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	// ru_maxrss is in kilobytes on Linux and the BSDs, in bytes on macOS.
	if goruntime.GOOS == "darwin" || goruntime.GOOS == "ios" {
		return uint64(ru.Maxrss), true
	}
	return uint64(ru.Maxrss) << 10, true
}
