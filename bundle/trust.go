package bundle

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tokenrun/tokenrun/internal/readfile"
)

// SystemTrustPath is the trust file an administrator keeps: one public key a line. It is
// /etc/tokenrun/trusted-keys on Unix and under %ProgramData% on Windows (trust_windows.go),
// never where an ordinary user could create it (on Windows any user may make C:\etc).
var SystemTrustPath = systemTrustFile()

// systemTrustEnv moves the system trust file for tests. It is read only in a test binary
// (testing.Testing), so a user cannot point a released tokenrun at a file they wrote and
// make it trust their own key.
const systemTrustEnv = "TOKENRUN_SYSTEM_TRUST"

// bankKeys are release keys built into the binary (lines in the public key format). A bank
// building its own tokenrun adds its key here; empty in the public build.
var bankKeys = []string{}

func systemTrustPath() string {
	if testing.Testing() {
		if p := os.Getenv(systemTrustEnv); p != "" {
			return p
		}
	}
	return SystemTrustPath
}

// SystemKeys are the keys built into the binary and those in the system trust file. A trust
// file that a non-administrator could have written is ignored, with a warning on warn: a
// key in it would let anyone who wrote it run their code as the bank's.
func SystemKeys(warn io.Writer) Keyring {
	var r Keyring
	for _, line := range bankKeys {
		keys, err := ParsePublicKeys([]byte(line))
		if err != nil {
			fmt.Fprintf(warn, "warning: built-in release key ignored: %v\n", err)
			continue
		}
		r.Add(keys...)
	}
	path := systemTrustPath()
	keys, err := readSystemTrust(path)
	if err != nil {
		fmt.Fprintf(warn, "warning: system trust file ignored: %v\n", err)
	}
	r.Add(keys...)
	return r
}

func readSystemTrust(path string) ([]PublicKey, error) {
	f, err := readfile.Open(path, readfile.Keys) // no FIFO or device, and at most 1 MiB
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	// Unix: mode bits and owner; Windows: the owner and the ACL (trust_*.go).
	if err := adminOnly(path, fi); err != nil {
		return nil, err
	}
	data, err := f.ReadAll()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, nil
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
