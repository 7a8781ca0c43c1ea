//go:build unix

package readfile

import (
	"os"
	"syscall"
)

// openNonblock opens path read-only with O_NONBLOCK, so that opening a FIFO with no writer
// returns at once instead of waiting for one. O_NONBLOCK changes nothing for a regular file.
func openNonblock(path string, _ Kind) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
