//go:build unix

package readfile

import (
	"os"
	"syscall"
)

// openNonblock opens path read-only with O_NONBLOCK, so that opening a FIFO with no writer
// returns at once instead of waiting for one. O_NONBLOCK changes nothing for a regular file.
// With kind.NoLinks, O_NOFOLLOW makes a symbolic link fail to open (ELOOP).
func openNonblock(path string, kind Kind) (*os.File, error) {
	flag := os.O_RDONLY | syscall.O_NONBLOCK
	if kind.NoLinks {
		flag |= syscall.O_NOFOLLOW
	}
	return os.OpenFile(path, flag, 0)
}
