package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
)

// typoUser is well formed (it passes the region's pattern) but is not the user the bank's
// initial key belongs to: the CA refuses it.
const typoUser = "qq111111_qwertyuu"

// enrollFile runs enroll from an answers file (with --yes unless noYes) on the software token
// in dir.
func enrollFile(t *testing.T, dir string, ca *enrollCA, ans map[string]any, noYes bool) result {
	t.Helper()
	args := append([]string{"enroll", "--soft", dir, "--lang", "en", "--answers", writeAnswers(t, ans)}, ca.args()...)
	if !noYes {
		args = append(args, "--yes")
	}
	r := tokenrun(t, "", args...)
	assertNoSecrets(t, ans, r.stdout+r.err)
	return r
}

func withAnswer(ans map[string]any, id string, v any) map[string]any {
	out := map[string]any{}
	for k, x := range ans {
		out[k] = x
	}
	out[id] = v
	return out
}

// TestEnrollTypoUserIDCorrectedByRerun: a well-formed but wrong user ID is refused by the dev
// CA (403, "the initial key belongs to user ..."); the journal forgets it, the rerun asks for it
// again, takes the corrected answer, reuses the key and ends with one key and one certificate.
func TestEnrollTypoUserIDCorrectedByRerun(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, serial := softToken(t)

	r := enrollFile(t, dir, ca, withAnswer(enrollAnswers(ca), "user_id", typoUser), false)
	require.Equal(t, exitCA, r.code, r.err)
	assert.Contains(t, r.err, "refused the user ID "+typoUser)
	assert.Contains(t, r.err, "belongs to user")
	assert.Contains(t, r.err, "asks for the user ID again")
	j, err := os.ReadFile(filepath.Join(os.Getenv("TOKENRUN_HOME"), "journal", serial+".json"))
	require.NoError(t, err)
	assert.NotContains(t, string(j), `"user_id":`)
	assert.Contains(t, string(j), `"user_id_refused": "`+typoUser+`"`)

	r = enrollFile(t, dir, ca, enrollAnswers(ca), false)
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "refused the user ID "+typoUser+" last time")
	assert.Contains(t, r.err, "no new key is made")
	assert.NotContains(t, r.err, "misspelt id")
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestEnrollOtherUserOnHalfDoneToken: user A's registration stopped (CA down); answers naming
// user B are told whose registration the token holds and what to do, and change nothing; A's
// answers then finish it.
func TestEnrollOtherUserOnHalfDoneToken(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	addr := ca.ln.Addr().String()
	ca.down(t)
	dir, _ := softToken(t)
	r := enrollFile(t, dir, ca, enrollAnswers(ca), false)
	require.Equal(t, exitCA, r.code, r.err)

	var err error
	ca.ln, err = netListen(addr)
	require.NoError(t, err)
	ca.start(t, devca.ServerOptions{})
	const userB = "qq222222_someonex"
	r = enrollFile(t, dir, ca, withAnswer(enrollAnswers(ca), "user_id", userB), true)
	require.Equal(t, exitUsage, r.code, r.err)
	assert.Contains(t, r.err, "for the user "+enrollUser)
	assert.Contains(t, r.err, "now the user "+userB+" is named")
	assert.Contains(t, r.err, "run it again with that user's answers")
	assert.Contains(t, r.err, "--yes")
	assert.NotContains(t, r.err, "support")
	keys, certs := objects(t, dir, "12345678")
	assert.Equal(t, 1, keys)
	assert.Equal(t, 0, certs)

	r = enrollFile(t, dir, ca, enrollAnswers(ca), false)
	require.Equal(t, exitOK, r.code, r.err)
	keys, certs = objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestEnrollEnrolledTokenOtherUser: an enrolled token says whose profile it holds; answers
// naming another user exit 7 (REFUSED), the same user's exit 0.
func TestEnrollEnrolledTokenOtherUser(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	r := enrollFile(t, dir, ca, enrollAnswers(ca), false)
	require.Equal(t, exitOK, r.code, r.err)

	r = enrollFile(t, dir, ca, enrollAnswers(ca), false)
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "registered profile of the user "+enrollUser)
	assert.NotContains(t, r.err, "misspelt id")

	r = enrollFile(t, dir, ca, withAnswer(enrollAnswers(ca), "user_id", "qq222222_someonex"), false)
	require.Equal(t, exitRefused, r.code, r.err)
	assert.Contains(t, r.err, "name the user qq222222_someonex, but this token holds the registered profile of the user "+enrollUser)
}

// dirDigest is every file under dir with its contents, to see that nothing changed.
func dirDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	}))
	return out
}

// TestEnrollAnswersCheckedUpFront: an answers file that does not fit the procedure's declared
// prompts is refused before the token is touched, with every problem in one message (exit 2).
func TestEnrollAnswersCheckedUpFront(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, serial := softToken(t)
	before := dirDigest(t, dir)
	tests := []struct {
		name string
		ans  map[string]any
		want []string
	}{
		{"validity out of range", withAnswer(enrollAnswers(ca), "validity", 1),
			[]string{"answer for prompt 'validity' is \"1\", which is not one of the allowed values: 1y, 3y"}},
		{"misspelt id", withAnswer(enrollAnswers(ca), "user_idd", enrollUser),
			[]string{"'user_idd' is no prompt of enroll (did you mean 'user_id'?)"}},
		{"all at once", withAnswer(withAnswer(withAnswer(enrollAnswers(ca), "validity", "2y"), "confirm", "perhaps"), "otp_pin", []string{"A"}),
			[]string{"'validity' is \"2y\"", "'confirm' is \"perhaps\"", "'otp_pin' must be a single value"}},
		{"secret from an unset variable", withAnswer(enrollAnswers(ca), "new_pin", map[string]any{"env": "TOKENRUN_NO_SUCH_VAR"}),
			[]string{"names the environment variable TOKENRUN_NO_SUCH_VAR, which is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := enrollFile(t, dir, ca, tt.ans, false)
			require.Equal(t, exitUsage, r.code, r.err)
			assert.Contains(t, r.err, "does not fit the procedure enroll")
			for _, w := range tt.want {
				assert.Contains(t, r.err, w)
			}
			assert.NotContains(t, r.err, "Plug in", "checked before the token is looked for")
			assert.Equal(t, before, dirDigest(t, dir), "the token is unchanged")
			_, err := os.Stat(filepath.Join(os.Getenv("TOKENRUN_HOME"), "journal", serial+".json"))
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

// TestEnrollAnswersFromStdinWithSources: --answers - reads the answers from standard input, the
// secrets given as {file: PATH} and {env: NAME}.
func TestEnrollAnswersFromStdinWithSources(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	otpFile := writeFile(t, filepath.Join(t.TempDir(), "otp"), enrollOTP+"\n")
	require.NoError(t, os.Chmod(otpFile, 0o600))
	t.Setenv("TOKENRUN_TEST_NEW_PIN", newPIN)
	yaml := "validity: 1y\nuser_id: " + enrollUser + "\notp_pin: {file: " + otpFile + "}\nkey_file: " + ca.keyFile +
		"\npin_is_password: true\nprofile_name: Main\nnew_pin: {env: TOKENRUN_TEST_NEW_PIN}\nnew_pin_confirm: {env: TOKENRUN_TEST_NEW_PIN}\nconfirm: yes\n"
	r := tokenrun(t, yaml, append([]string{"enroll", "--soft", dir, "--lang", "en", "--answers", "-", "--yes"}, ca.args()...)...)
	require.Equal(t, exitOK, r.code, r.err)
	assert.NotContains(t, r.err, newPIN)
	assert.NotContains(t, r.err, "can be read by other users")
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestEnrollTerminalAsksAgain: a person at a terminal (the terminal front-end, Interactive, fed
// through a pipe) is asked again for a missing key file, a wrong OTP PIN, both passwords after a
// mismatch and a token password the token refused; the password rules come before the password,
// and "does not accept the default password" does not appear for a password the person typed.
func TestEnrollTerminalAsksAgain(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	terminalOptions.Interactive = true
	t.Cleanup(func() { terminalOptions.Interactive = false })
	ca := newEnrollCA(t)
	ca.start(t, devca.ServerOptions{})
	dir, _ := softToken(t)
	home := t.TempDir() // where "~/Key.pfx" is
	b, err := os.ReadFile(ca.keyFile)
	require.NoError(t, err)
	writeFile(t, filepath.Join(home, "Key.pfx"), string(b))
	t.Setenv("HOME", home)
	typed := []string{
		"1y", enrollUser,
		"~/tokenrun-no-such-dir/Key.pfx", // key_file: missing
		"ZZZZZZZZZZZ",                    // otp_pin: wrong
		"",                               // pin_is_password: the default, yes
		"~/Key.pfx",                      // key_file again: under the home directory
		enrollOTP,                        // otp_pin again
		"",                               // profile_name: the default
		newPIN, "Kx7mQ9pzz",              // a mismatch
		newPIN, newPIN, // both again
		"yes",
		"Wrong1234", // current_pin: typed, wrong
		"",          // current_pin again: the blank token's
	}
	r := tokenrun(t, strings.Join(typed, "\n")+"\n", append([]string{"enroll", "--soft", dir, "--lang", "en"}, ca.args()...)...)
	require.Equal(t, exitOK, r.code, r.err)
	out := r.err
	for _, want := range []string{
		"tokenrun-no-such-dir/Key.pfx cannot be found",
		"cannot be opened: the password or the key container is wrong",
		"The passwords do not match",
		"Wrong token password",
		"Try again.",
		"Registration is complete",
	} {
		assert.Contains(t, out, want)
	}
	assert.Contains(t, out, "key container ~/Key.pfx cannot be opened", "the file as typed, found under the home directory")
	assert.NotContains(t, out, "damaged")
	assert.NotContains(t, out, "does not accept the default password")
	assert.Equal(t, 3, strings.Count(out, "Try again."))
	assert.Equal(t, 2, strings.Count(out, "Repeat the new token password"), "the mismatch asks both again")
	rules := strings.Index(out, "The new token password: 8 to 16")
	require.GreaterOrEqual(t, rules, 0)
	assert.Less(t, rules, strings.Index(out, "New token password"), "the rules come before the password is asked")
	assertNoSecrets(t, map[string]any{"otp_pin": enrollOTP, "new_pin": newPIN}, out)
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)
}

// TestEnrollSwitchUserWithYes: bank IT started user A on a token, then meant it for user B:
// with --yes (switch_user confirmed) the registration continues for B with the key already
// generated, and the token ends holding B's profile.
func TestEnrollSwitchUserWithYes(t *testing.T) {
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	ca := newEnrollCA(t)
	const userB = "qq222222_someonex"
	keyB := filepath.Join(t.TempDir(), "KeyB.pfx")
	require.NoError(t, ca.a.AddUser(userB, enrollOTP, keyB))
	addr := ca.ln.Addr().String()
	ca.down(t)
	dir, _ := softToken(t)
	r := enrollFile(t, dir, ca, enrollAnswers(ca), false)
	require.Equal(t, exitCA, r.code, r.err)

	var err error
	ca.ln, err = netListen(addr)
	require.NoError(t, err)
	ca.start(t, devca.ServerOptions{})
	b := withAnswer(withAnswer(enrollAnswers(ca), "user_id", userB), "key_file", keyB)
	r = enrollFile(t, dir, ca, b, false)
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "now the user "+userB+" is named")
	assert.Contains(t, r.err, "no new key is made")
	keys, certs := objects(t, dir, newPIN)
	assert.Equal(t, 1, keys)
	assert.Equal(t, 1, certs)

	r = enrollFile(t, dir, ca, b, false)
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "registered profile of the user "+userB)
}
