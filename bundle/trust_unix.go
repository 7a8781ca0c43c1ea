//go:build unix

package bundle

import (
	"fmt"
	"io/fs"
	"syscall"
)

func systemTrustFile() string { return "/etc/tokenrun/trusted-keys" }

// adminOnly refuses a trust file that someone other than root could have written: group or
// others may write it, or root does not own it.
func adminOnly(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %v): make it writable only by root (chmod 644)", path, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root: only an administrator may list trusted keys (chown root)", path, st.Uid)
	}
	return nil
}
