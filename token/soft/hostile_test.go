//go:build unix

package soft

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// TestHostileTokenDirectory: what others may put in a token's directory (a FIFO, a huge
// sparse file, links) is refused as damage at once, never read, followed, created or
// replaced.
func TestHostileTokenDirectory(t *testing.T) {
	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, dir string) (untouched string)
	}{
		{"state is a FIFO", func(t *testing.T, dir string) string {
			require.NoError(t, syscall.Mkfifo(filepath.Join(dir, stateName), 0o600))
			return ""
		}},
		{"state is a 3 GB sparse file", func(t *testing.T, dir string) string {
			f, err := os.Create(filepath.Join(dir, stateName))
			require.NoError(t, err)
			require.NoError(t, f.Truncate(3<<30))
			require.NoError(t, f.Close())
			return ""
		}},
		{"state is a directory", func(t *testing.T, dir string) string {
			require.NoError(t, os.Mkdir(filepath.Join(dir, stateName), 0o700))
			return ""
		}},
		{"state links to a real token", func(t *testing.T, dir string) string {
			other := filepath.Join(t.TempDir(), "real")
			require.NoError(t, Create(other, Options{}))
			require.NoError(t, os.Symlink(filepath.Join(other, stateName), filepath.Join(dir, stateName)))
			return ""
		}},
		{"state is a dangling link", func(t *testing.T, dir string) string {
			target := filepath.Join(t.TempDir(), "nothing-here.json")
			require.NoError(t, os.Symlink(target, filepath.Join(dir, stateName)))
			return target
		}},
		{"lock is a dangling link", func(t *testing.T, dir string) string {
			require.NoError(t, Create(dir, Options{}))
			target := filepath.Join(t.TempDir(), "created-by-lock")
			require.NoError(t, os.Remove(filepath.Join(dir, lockName)))
			require.NoError(t, os.Symlink(target, filepath.Join(dir, lockName)))
			return target
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tok")
			require.NoError(t, os.Mkdir(dir, 0o700))
			untouched := tt.prepare(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			p, err := Open(Options{}, dir)
			if err == nil {
				defer p.Close()
				_, err = p.Tokens(ctx)
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, token.ErrTokenDamaged)
			assert.Contains(t, err.Error(), dir, "the message names the token's directory")
			assert.Less(t, time.Since(start), 2*time.Second, "refused at once, not read")
			if untouched != "" {
				_, serr := os.Lstat(untouched)
				assert.ErrorIs(t, serr, os.ErrNotExist, "a link's target must not be created")
			}
		})
	}
}
