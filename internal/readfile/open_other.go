//go:build !unix

package readfile

import "os"

// openNonblock checks path before opening it where the system has no non-blocking open
// (Windows has no FIFOs in the file system; devices are refused by the check).
func openNonblock(path string, kind Kind) (*os.File, error) {
	if kind.NoLinks {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, &Error{Path: path, Kind: kind, Err: ErrNotRegular, What: "a symbolic link"}
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check(path, kind, fi); err != nil {
		return nil, err
	}
	return os.Open(path)
}
