package soft

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

// killEnv makes the test binary a kill helper (see killHelper): "OP:N:DIR". Only this
// package's TestMain reads it; the token code itself knows nothing of it.
const killEnv = "TOKENRUN_SOFT_TEST_KILL"

// newUserPIN is what the kill tests change the user PIN to.
const newUserPIN = "24681357"

// killOps are the operations the kill tests interrupt. Each runs on a token made by
// killSetup, from a fresh process that has opened the token; setup is what runs before the
// kill points are counted.
var killOps = map[string]struct {
	setup func(ctx context.Context, tk token.Token) error
	run   func(ctx context.Context, tk token.Token) error
}{
	"format": {
		run: func(ctx context.Context, tk token.Token) error {
			return token.FormatWithUserPIN(ctx, tk, soPIN, "NEW", newUserPIN)
		},
	},
	"set-pin": {
		setup: func(ctx context.Context, tk token.Token) error { return tk.Login(ctx, token.User, userPIN) },
		run:   func(ctx context.Context, tk token.Token) error { return tk.SetPIN(ctx, userPIN, newUserPIN) },
	},
}

// killHelper runs one operation on the token in DIR and kills its own process (SIGKILL on
// Unix, TerminateProcess on Windows: nothing runs after it, no defer, no flush) at the N-th
// kill point: each state write has two, once the new state sits synced in its temporary
// file (before the rename) and once it has replaced the state file. Run to the end, it
// prints how many points there were.
func killHelper(spec string) int {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad kill spec", spec)
		return 2
	}
	op, ok := killOps[parts[0]]
	n, err := strconv.Atoi(parts[1])
	if !ok || err != nil {
		fmt.Fprintln(os.Stderr, "bad kill spec", spec)
		return 2
	}
	dir := parts[2]
	ctx := context.Background()
	p, err := Open(Options{}, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	infos, err := p.Tokens(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tk, err := p.Open(ctx, infos[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if op.setup != nil {
		if err := op.setup(ctx, tk); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	points := 0
	point := func(where string) func(string) {
		return func(d string) {
			if d != dir {
				return
			}
			points++
			if points == n {
				fmt.Printf("killed at point %d (%s)\n", n, where)
				self, _ := os.FindProcess(os.Getpid())
				self.Kill()
				select {}
			}
		}
	}
	beforeStateRename, afterStateWrite = point("before rename"), point("after write")
	if err := op.run(ctx, tk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("points=%d\n", points)
	return 0
}

// killSetup is a blank token with a profile on it (a key and its certificate).
func killSetup(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "token")
	p, err := Open(Options{}, dir)
	require.NoError(t, err)
	defer p.Close()
	tk := openFirst(t, p)
	require.NoError(t, tk.Login(ctx, token.User, userPIN))
	k, s := genKey(t, tk, token.KeyRequest{Type: token.EC, Label: "profile"})
	_, err = tk.StoreCertificate(ctx, token.CertificateRequest{DER: selfSigned(t, s, "client"), ID: k.ID, Label: "profile"})
	require.NoError(t, err)
	return dir
}

// checkAfterKill opens a token a kill left behind, as the next run would, and reports
// which user PIN it opens with. It must open with exactly one of the two, and be either
// the old token whole (profile, old label) or the new one whole.
func checkAfterKill(t *testing.T, op, dir string) (isNew bool) {
	t.Helper()
	ctx := context.Background()
	p, err := Open(Options{}, dir)
	require.NoError(t, err, "the token opens after the kill")
	defer p.Close()
	tk := openFirst(t, p)
	i := info(t, tk)
	require.True(t, i.UserPINInitialized, "never a token without a user PIN")
	// At most the interrupted check's one try is gone: the SO's for a format, the user's
	// for a PIN change.
	user, so := 9, 10
	if op == "format" {
		user, so = 10, 9
	}
	assert.GreaterOrEqual(t, i.UserPIN.RetriesLeft, user)
	assert.GreaterOrEqual(t, i.SOPIN.RetriesLeft, so)

	errNew := tk.Login(ctx, token.User, newUserPIN)
	errOld := tk.Login(ctx, token.User, userPIN)
	require.True(t, (errNew == nil) != (errOld == nil), "exactly one of the old and new PINs opens it: new %v, old %v", errNew, errOld)
	isNew = errNew == nil
	if isNew {
		require.ErrorIs(t, errOld, token.ErrPINIncorrect)
		require.NoError(t, tk.Login(ctx, token.User, newUserPIN))
	} else {
		require.ErrorIs(t, errNew, token.ErrPINIncorrect)
	}
	keys, err := tk.Keys(ctx)
	require.NoError(t, err)
	certs, err := tk.Certificates(ctx)
	require.NoError(t, err)
	if op == "format" && isNew {
		assert.Equal(t, "NEW", info(t, tk).Label)
		assert.Empty(t, keys)
		assert.Empty(t, certs)
	} else {
		assert.Equal(t, "KAZTOKEN", info(t, tk).Label)
		require.Len(t, keys, 1, "the profile is whole")
		require.Len(t, certs, 1)
		assert.Equal(t, keys[0].ID, certs[0].ID)
		s, err := tk.Signer(ctx, keys[0])
		require.NoError(t, err)
		_, err = s.Sign(nil, make([]byte, 32), nil)
		require.NoError(t, err, "the key still opens")
	}
	require.NoError(t, tk.Login(ctx, token.SO, soPIN), "the SO PIN works whatever happened")
	// The next write clears what the killed writer left.
	assert.ElementsMatch(t, []string{stateName, lockName}, dirNames(t, dir))
	return isNew
}

// TestKill kills a real process during format and change-PIN at every state write, before
// and after each rename, and opens what is left as the next run would: always the old
// token or the new one, with the old PIN or the new, never a token without a user PIN.
func TestKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	killed := regexp.MustCompile(`killed at point (\d+) \(([a-z ]+)\)`)
	for _, op := range []string{"format", "set-pin"} {
		t.Run(op, func(t *testing.T) {
			var seen []string
			for n := 1; ; n++ {
				require.Less(t, n, 20, "the operation never finished")
				dir := killSetup(t)
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d:%s", killEnv, op, n, dir))
				out, err := cmd.Output()
				if m := killed.FindSubmatch(out); m != nil {
					require.Error(t, err, "a killed process does not exit 0")
					require.Equal(t, strconv.Itoa(n), string(m[1]))
					isNew := checkAfterKill(t, op, dir)
					seen = append(seen, fmt.Sprintf("%s:%v", m[2], isNew))
					continue
				}
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				require.NoError(t, err, "%s%s", out, stderr)
				require.Equal(t, fmt.Sprintf("points=%d\n", n-1), string(out))
				assert.True(t, checkAfterKill(t, op, dir), "run to the end, the change is made")
				break
			}
			// Two writes: the try (the old token, one SO/user try down), then the change in
			// one rename. Only once that rename is done is the token the new one.
			assert.Equal(t, []string{"before rename:false", "after write:false", "before rename:false", "after write:true"}, seen)
		})
	}
}
