package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
)

// recordFailedEnroll records, with --transcript, an enrollment by a person at a terminal (in
// English) who mistypes on the way (a malformed user ID, a missing key file, a wrong OTP PIN,
// a password mismatch, a wrong token password) and ends with a well-formed but wrong user ID
// the dev CA refuses: exit 5.
func recordFailedEnroll(t *testing.T) (file, serial string) {
	t.Helper()
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	terminalOptions.Interactive = true
	t.Cleanup(func() { terminalOptions.Interactive = false })
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, serial := softToken(t)
	home := t.TempDir()
	b, err := os.ReadFile(ca.KeyFile)
	require.NoError(t, err)
	writeFile(t, filepath.Join(home, "Key.pfx"), string(b))
	t.Setenv("HOME", home)
	typed := []string{
		"1y",
		"qq1",    // user_id: malformed, asked again
		typoUser, // well formed, not the initial key's user: the CA refuses it
		"~/tokenrun-no-such-dir/Key.pfx",
		"ZZZZZZZZZZZ", // otp_pin: wrong
		"",
		"~/Key.pfx",
		golden.EnrollOTP,
		"",
		newPIN, "Kx7mQ9pzz", // a mismatch
		newPIN, newPIN,
		"yes",
		"Wrong1234", // current_pin: wrong
		"",
	}
	file = filepath.Join(t.TempDir(), "enroll.jsonl")
	r := tokenrun(t, strings.Join(typed, "\n")+"\n", append([]string{"enroll", "--soft", dir, "--lang", "en", "--transcript", file}, ca.Args()...)...)
	require.Equal(t, runner.ExitCA, r.code, r.err)
	return file, serial
}

// screen matches a line of the client's screens in transcript show's output.
var screen = regexp.MustCompile(`^ {9}|^ *\+T  (   |\?|>|✗) `)

var showVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\+\d+\.\d{3}s`), "+T"},
	{regexp.MustCompile(`(<1 ms|\d+ ms|\d+\.\d s)`), "D"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( UTC|Z)`), "TIME"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`\b[0-9a-f]{40}\b`), "KEYID"},
	{regexp.MustCompile(` on [a-z0-9]+/[a-z0-9]+,`), " on OS/ARCH,"},
}

// TestTranscriptShowFailedEnroll: `transcript show --lang kk|ru` of the failed enrollment
// reads as the client's screens in that language (golden, -update rewrites it): every
// message and prompt re-rendered from its catalog key, the answers with secrets as ●●●, the
// refused attempts, the token's and the CA's outcomes, the journal's steps and the verdict.
func TestTranscriptShowFailedEnroll(t *testing.T) {
	// Dates in messages are local: the goldens are in UTC.
	local := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = local })
	file, serial := recordFailedEnroll(t)
	for _, lang := range []string{"kk", "ru"} {
		t.Run(lang, func(t *testing.T) {
			r := tokenrun(t, "", "transcript", "show", "--lang", lang, file)
			require.Equal(t, runner.ExitOK, r.code, r.err)
			got := strings.ReplaceAll(r.stdout, serial, "SERIAL")
			got = regexp.MustCompile(regexp.QuoteMeta(os.TempDir())+`/[^ :]*/`).ReplaceAllString(got, "TMP/")
			for _, v := range showVolatile {
				got = v.re.ReplaceAllString(got, v.with)
			}
			assert.NotContains(t, got, newPIN)
			assert.NotContains(t, got, golden.EnrollOTP)
			assert.NotContains(t, got, "Wrong1234")
			// The client's screens (no mark, ?, > or ✗) hold no English.
			english := regexp.MustCompile(`\b(the|The|and|not|accepted|Warning|Error|done|failed|Yes|No)\b`)
			for _, l := range strings.Split(got, "\n") {
				if screen.MatchString(l) {
					assert.NotRegexp(t, english, l)
				}
			}
			path := filepath.Join("testdata", "transcript-show", "enroll-user-id-refused."+lang+".golden")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}
