//go:build !unix

package runtime

import "os"

// peakRSS is unknown off Unix: Windows reports a process's peak working set only while its
// handle is open, and os/exec closes it in Wait. The heap peak the child reports still
// bounds the attack there.
func peakRSS(*os.ProcessState) (uint64, bool) { return 0, false }
