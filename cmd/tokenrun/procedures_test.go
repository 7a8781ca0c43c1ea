package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/ui/protocoltest"
)

var update = flag.Bool("update", false, "rewrite the procedures' expected.golden files")

const goldenTree = "../../scripts/tests"

// enrollCA is a development CA with one user whose initial key opens with golden.EnrollOTP,
// served on loopback once started; its listener closed, it is down.
type enrollCA struct{ *golden.CA }

func newEnrollCA(t *testing.T) *enrollCA {
	t.Helper()
	c, err := golden.NewCA(t.TempDir(), runMain)
	require.NoError(t, err)
	return &enrollCA{c}
}

// start serves the CA on its listener until the test ends.
func (c *enrollCA) start(t *testing.T, opts devca.ServerOptions) {
	c.CA.Start(opts)
	t.Cleanup(c.Stop)
}

// down closes the listener of a CA that was never started: connections are refused.
func (c *enrollCA) down(t *testing.T) {
	require.NoError(t, c.Listener.Close())
}

// TestProcedureGoldens walks scripts/tests/<procedure>/<case>/ and runs each case on the
// software token and on SoftHSM2, comparing the normalised transcript with expected.golden.
// The runner is package golden's, the one `tokenrun scripts check DIR` uses.
func TestProcedureGoldens(t *testing.T) {
	cases, err := golden.LoadCases(os.DirFS(goldenTree))
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	for _, c := range cases {
		t.Run(c.Path(), func(t *testing.T) {
			for _, be := range []string{golden.BackendSoft, golden.BackendSoftHSM2} {
				t.Run(be, func(t *testing.T) {
					if why := c.Skip(be); why != "" {
						t.Skip(why)
					}
					got, err := golden.Run(context.Background(), c, golden.Options{
						Backend: be, TempDir: t.TempDir(), Plug: softHSMBackend(t), Main: runMain, CheckJSON: protocoltest.Session})
					require.NoError(t, err)
					if *update {
						updateGolden(t, c, be, got)
					}
					want, err := c.Expected(be)
					require.NoError(t, err, "run with -update to create it")
					assert.Equal(t, want, got, "transcript on %s", be)
				})
			}
		})
	}
}

// updateGolden writes got as the case's golden: expected.golden from the software token
// (or from SoftHSM2 for a case only it runs), expected.softhsm2.golden only where SoftHSM2
// truly differs.
func updateGolden(t *testing.T, c golden.Case, be, got string) {
	dir := filepath.Join(goldenTree, filepath.FromSlash(c.Path()))
	base := filepath.Join(dir, "expected.golden")
	own := filepath.Join(dir, "expected."+be+".golden")
	if be == golden.BackendSoft || c.Setup.NoToken {
		require.NoError(t, os.WriteFile(base, []byte(got), 0o644))
	} else if b, err := os.ReadFile(base); err == nil && string(b) != got {
		require.NoError(t, os.WriteFile(own, []byte(got), 0o644))
	} else {
		_ = os.Remove(own)
	}
}

// softHSMBackend plugs in a case's SoftHSM2 token: only SoftHSM2's spare uninitialised
// slot for a case without a token.
func softHSMBackend(t *testing.T) func(st golden.Setup) (golden.Backend, error) {
	return func(st golden.Setup) (golden.Backend, error) {
		module := p11test.SoftHSM(t)
		if st.NoToken {
			return golden.Backend{Name: golden.BackendSoftHSM2, Source: []string{"--module", module}}, nil
		}
		tk := p11test.SoftHSMToken(t, "KAZTOKEN", "87654321", "12345678")
		return golden.Backend{Name: golden.BackendSoftHSM2, Source: []string{"--module", tk.Module}, Serial: tk.Serial}, nil
	}
}

func writeAnswers(t *testing.T, ans map[string]any) string {
	t.Helper()
	f, err := golden.WriteAnswers(t.TempDir(), ans)
	require.NoError(t, err)
	return f
}

// driveJSON is golden.DriveJSON failing the test on a line that is not JSON.
func driveJSON(t *testing.T, args []string, ans map[string]any) (tr []string, code int, stdout, stderr string) {
	t.Helper()
	tr, code, stdout, stderr, err := golden.DriveJSON(runMain, args, ans)
	require.NoError(t, err)
	require.NoError(t, protocoltest.Session(stdout))
	return tr, code, stdout, stderr
}

// assertNoSecrets fails when any secret typed (as typed or upper-cased) shows in out.
func assertNoSecrets(t *testing.T, ans map[string]any, out string) {
	t.Helper()
	assert.NoError(t, golden.NoSecrets(ans, out))
}
