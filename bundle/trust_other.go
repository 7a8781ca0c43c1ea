//go:build !unix && !windows

package bundle

import (
	"fmt"
	"io/fs"
	"runtime"
)

func systemTrustFile() string { return "/etc/tokenrun/trusted-keys" }

// adminOnly cannot tell who may write a file here, so no system trust file is trusted.
func adminOnly(path string, _ fs.FileInfo) error {
	return fmt.Errorf("%s: tokenrun cannot tell on %s who may write it, so it trusts no system trust file; give --trust", path, runtime.GOOS)
}
