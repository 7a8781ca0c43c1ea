//go:build windows

package soft

import (
	"os"
	"syscall"
	"unsafe"
)

var procLockFileEx = syscall.NewLazyDLL("kernel32.dll").NewProc("LockFileEx")

const (
	lockfileFailImmediately = 0x1
	lockfileExclusiveLock   = 0x2
	errorLockViolation      = syscall.Errno(33)
)

// tryLock is flock's counterpart on Windows: LockFileEx on the whole lock file.
func tryLock(f *os.File, exclusive bool) (ok bool, err error) {
	flags := uint32(lockfileFailImmediately)
	if exclusive {
		flags |= lockfileExclusiveLock
	}
	var ol syscall.Overlapped
	r, _, e := procLockFileEx.Call(f.Fd(), uintptr(flags), 0, 1, 0, uintptr(unsafe.Pointer(&ol)))
	if r != 0 {
		return true, nil
	}
	if e == errorLockViolation {
		return false, nil
	}
	return false, e
}

// syncDir does nothing: Windows has no directory sync. NTFS journals the rename, so a crash
// may lose the newest write but never leaves a torn state file.
func syncDir(string) error { return nil }
