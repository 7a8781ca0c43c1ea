package ui

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var enrollDecl = []Declared{
	{ID: "validity", Kind: Choice, Choices: []string{"1y", "3y"}},
	{ID: "user_id", Kind: Text},
	{ID: "otp_pin", Kind: Secret},
	{ID: "pin_is_password", Kind: Choice, Choices: []string{"true", "false"}},
	{ID: "confirm", Kind: Confirm},
	{ID: "pin_unknown_go_on", Kind: Confirm, HumanOnly: true},
}

// TestAnswersCheck: every problem of an answers file is reported together, with its line,
// before the run; what fits passes.
func TestAnswersCheck(t *testing.T) {
	env := map[string]string{"OTP": "AB1CD0EFG2H"}
	tests := []struct {
		name, yaml string
		problems   []string // each a substring of one problem, in order
		warning    string
	}{
		{name: "fits", yaml: "validity: 1y\nuser_id: qq111111_qwertyui\notp_pin: {env: OTP}\npin_is_password: true\nconfirm: yes\n"},
		{name: "empty values take defaults", yaml: "validity:\nconfirm:\n"},
		{name: "everything wrong at once",
			yaml: "validity: 1\nuser_idd: qq111111_qwertyui\notp_pin: [A, B]\npin_is_password: maybe\nconfirm: perhaps\nregistration: x\n",
			problems: []string{
				`answers.yaml:1: answer for prompt 'validity' is "1", which is not one of the allowed values: 1y, 3y`,
				`answers.yaml:2: 'user_idd' is no prompt of enroll (did you mean 'user_id'?)`,
				`answers.yaml:3: answer for prompt 'otp_pin' must be a single value, not a list`,
				`answers.yaml:4: answer for prompt 'pin_is_password' is "maybe", which is not one of the allowed values: true, false`,
				`answers.yaml:5: answer for prompt 'confirm' is "perhaps": answer yes or no`,
				`answers.yaml:6: 'registration' is no prompt of enroll (its prompts: confirm, otp_pin, pin_is_password, pin_unknown_go_on, user_id, validity)`,
			}},
		{name: "source for a text prompt", yaml: "user_id: {file: /etc/hostname}\n",
			problems: []string{"answers.yaml:1: answer for prompt 'user_id' is a {file: ...} source, which only a secret prompt takes"}},
		{name: "unset variable", yaml: "otp_pin: {env: NO_SUCH_VAR}\n",
			problems: []string{"answers.yaml:1: answer for prompt 'otp_pin' names the environment variable NO_SUCH_VAR, which is not set"}},
		{name: "missing file", yaml: "otp_pin: {file: /no/such/pin}\n",
			problems: []string{"answers.yaml:1: answer for prompt 'otp_pin' names a file that cannot be read"}},
		{name: "other mapping for a secret", yaml: "otp_pin: {path: x}\n",
			problems: []string{"answers.yaml:1: answer for prompt 'otp_pin' must be a single value, {file: PATH} or {env: NAME}"}},
		{name: "human-only answered", yaml: "pin_unknown_go_on: yes\n", warning: "only by a person at a terminal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAnswers([]byte(tt.yaml), AnswersOptions{Name: "answers.yaml",
				Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
			require.NoError(t, err)
			warnings, err := a.Check("enroll", enrollDecl)
			if tt.warning != "" {
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0], tt.warning)
			} else {
				assert.Empty(t, warnings)
			}
			if len(tt.problems) == 0 {
				require.NoError(t, err)
				return
			}
			var ce *CheckError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, len(tt.problems), strings.Join(ce.Problems, "\n"))
			for i, p := range tt.problems {
				assert.Contains(t, ce.Problems[i], p)
			}
			assert.Contains(t, err.Error(), "the token was not touched")
			assert.NotContains(t, err.Error(), "AB1CD0EFG2H")
		})
	}
}

// TestAnswersSecretSources: {file: PATH} is the file's first line, {env: NAME} the variable.
func TestAnswersSecretSources(t *testing.T) {
	pinFile := filepath.Join(t.TempDir(), "otp")
	require.NoError(t, os.WriteFile(pinFile, []byte("AB1CD0EFG2H\n"), 0o600))
	t.Setenv("TOKENRUN_TEST_PIN", "Kx7mQ9pz")
	a, err := ParseAnswers([]byte("otp_pin: {file: "+pinFile+"}\nnew_pin: {env: TOKENRUN_TEST_PIN}\n"), AnswersOptions{})
	require.NoError(t, err)
	got, err := a.Ask(context.Background(), Prompt{ID: "otp_pin", Kind: Secret})
	require.NoError(t, err)
	assert.Equal(t, "AB1CD0EFG2H", got)
	got, err = a.Ask(context.Background(), Prompt{ID: "new_pin", Kind: Secret})
	require.NoError(t, err)
	assert.Equal(t, "Kx7mQ9pz", got)
	_, err = a.Ask(context.Background(), Prompt{ID: "otp_pin"})
	assert.ErrorIs(t, err, ErrNoAnswer)
	assert.Contains(t, err.Error(), "only a secret prompt takes")
}

// TestAnswersStdinAndMode: "-" reads standard input; a file holding inline secrets that others
// can read is warned about, one whose secrets come from elsewhere is not; declared ids a run
// skips are not reported unused.
func TestAnswersStdinAndMode(t *testing.T) {
	a, err := LoadAnswers("-", AnswersOptions{Stdin: strings.NewReader("user_id: qq111111_qwertyui\nvalidity: 3y\n")})
	require.NoError(t, err)
	got, err := a.Ask(context.Background(), Prompt{ID: "user_id"})
	require.NoError(t, err)
	assert.Equal(t, "qq111111_qwertyui", got)
	assert.Equal(t, []string{"validity"}, a.Unused())
	_, err = a.Check("enroll", enrollDecl)
	require.NoError(t, err)
	assert.Empty(t, a.Unused(), "a declared prompt the run skipped is no misspelt id")
	_, err = LoadAnswers("-", AnswersOptions{})
	assert.Error(t, err)

	if runtime.GOOS == "windows" {
		return
	}
	dir := t.TempDir()
	open := filepath.Join(dir, "open.yaml")
	require.NoError(t, os.WriteFile(open, []byte("otp_pin: AB1CD0EFG2H\n"), 0o644))
	require.NoError(t, os.Chmod(open, 0o644))
	a, err = LoadAnswers(open, AnswersOptions{})
	require.NoError(t, err)
	warnings, err := a.Check("enroll", enrollDecl)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "holds secrets (otp_pin) and can be read by other users (mode 0644)")

	sourced := filepath.Join(dir, "sourced.yaml")
	require.NoError(t, os.WriteFile(sourced, []byte("otp_pin: {env: HOME}\nuser_id: x\n"), 0o644))
	require.NoError(t, os.Chmod(sourced, 0o644))
	a, err = LoadAnswers(sourced, AnswersOptions{})
	require.NoError(t, err)
	warnings, err = a.Check("enroll", enrollDecl)
	require.NoError(t, err)
	assert.Empty(t, warnings)
}
