package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
)

// BenchmarkReplay is what support waits for with a client's transcript: a recorded
// enrollment (software token, P-256 key, development CA on loopback) replayed with no
// token, CA or person ("record"), and reproduced on a software token set up in the
// recorded starting state ("soft": set-up, the procedure on the token, stand-in
// certificates). Both run the CLI in process, as `tokenrun replay` does.
func BenchmarkReplay(b *testing.B) {
	dir, url, keyFile := devCA(b, devca.ServerOptions{})
	b.Setenv("TOKENRUN_HOME", b.TempDir())
	run := func(args ...string) {
		var out, errOut bytes.Buffer
		if code := runMain(append([]string{"tokenrun"}, args...), strings.NewReader(""), &out, &errOut); code != runner.ExitOK {
			b.Fatalf("tokenrun %s: exit %d: %s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
	}
	ans, err := golden.WriteAnswers(b.TempDir(), map[string]any{
		"validity": "1y", "user_id": userID, "otp_pin": otpPIN, "key_file": keyFile, "pin_is_password": true,
		"profile_name": "Bench", "new_pin": "Kz7mWq9x", "new_pin_confirm": "Kz7mWq9x", "confirm": true})
	require.NoError(b, err)
	file := filepath.Join(b.TempDir(), "enroll.jsonl")
	run("enroll", "--soft", filepath.Join(b.TempDir(), "tok"), "--answers", ans, "--yes", "--lang", "en", "--transcript", file,
		"--set", "ca.url="+url, "--set", "ca.roots="+filepath.Join(dir, devca.RootCertFile), "--set", "key.type=ec", "--set", "key.curve=P-256")

	b.Run("record", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run("replay", file)
		}
	})
	b.Run("soft", func(b *testing.B) {
		standIns, err := golden.WriteAnswers(b.TempDir(), map[string]any{"new_pin": "Qw2eR4ty"})
		require.NoError(b, err)
		base := b.TempDir()
		for i := 0; i < b.N; i++ {
			run("replay", "--soft", filepath.Join(base, strconv.Itoa(i)), "--answers", standIns, file)
		}
	})
}
