//go:build unix

package floor

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileLedger: a FIFO or a link where the ledger belongs is refused at once (no hang,
// no link followed) and the login is not tried: a count that cannot be read is not zero.
func TestHostileLedger(t *testing.T) {
	for name, prepare := range map[string]func(path string){
		"fifo": func(path string) { require.NoError(t, syscall.Mkfifo(path, 0o600)) },
		"link": func(path string) {
			target := filepath.Join(t.TempDir(), "elsewhere.json")
			require.NoError(t, os.WriteFile(target, []byte(`{"failures":{}}`), 0o600))
			require.NoError(t, os.Symlink(target, path))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := &fake{reports: "flags", max: 3, pin: "right-pin"}
			path := filepath.Join(dir, "tries", Identify(fakeProvider{f}, mustInfo(t, f)).Key+".json")
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			prepare(path)
			err := run(t, dir, f, "right-pin", true)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "tries ledger")
			assert.Zero(t, f.logins, "nothing reached the token")
		})
	}
}
