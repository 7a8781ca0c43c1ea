package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleAnswers = "testdata/answers.yaml"

func loadSample(t *testing.T, opts AnswersOptions) *Answers {
	t.Helper()
	a, err := LoadAnswers(sampleAnswers, opts)
	require.NoError(t, err)
	return a
}

func TestAnswersAsk(t *testing.T) {
	tests := []struct {
		name string
		p    Prompt
		want string
	}{
		{"choice by value", Prompt{ID: "registration_type", Kind: Choice, Choices: periods}, "3y"},
		{"text", Prompt{ID: "user_id"}, "qq111111_qwertyui"},
		{"secret", Prompt{ID: "otp_pin", Kind: Secret, Validate: validPIN}, "A1B2C3D4E5F"},
		{"leading zero kept", Prompt{ID: "token_label"}, "012345"},
		{"hex kept as written", Prompt{ID: "serial_hex"}, "0x1F"},
		{"bool as text", Prompt{ID: "password_matches_pin"}, "true"},
		{"bool as confirm", Prompt{ID: "password_matches_pin", Kind: Confirm}, "yes"},
		{"word as confirm", Prompt{ID: "confirm_summary", Kind: Confirm}, "yes"},
		{"empty takes default", Prompt{ID: "empty_label", Default: "MyToken"}, "MyToken"},
		{"empty without default", Prompt{ID: "empty_label"}, ""},
		{"null takes default", Prompt{ID: "null_label", Default: "MyToken"}, "MyToken"},
		{"missing takes default", Prompt{ID: "not_in_file", Default: "d"}, "d"},
		{"missing choice takes default", Prompt{ID: "not_in_file", Kind: Choice, Choices: periods, Default: "1y"}, "1y"},
		{"alias", Prompt{ID: "aliased", Kind: Secret, Validate: validPIN}, "B1B2C3D4E5F"},
		{"missing confirm with --yes", Prompt{ID: "confirm_format", Kind: Confirm}, "yes"},
	}
	a := loadSample(t, AnswersOptions{AllowConfirm: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Ask(context.Background(), tt.p)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	assert.False(t, a.Interactive())
}

func TestAnswersAskErrors(t *testing.T) {
	tests := []struct {
		name         string
		p            Prompt
		allowConfirm bool
		want         string
		sentinel     error
	}{
		{"missing", Prompt{ID: "otp_pin2", Kind: Secret},
			false, "testdata/answers.yaml has no answer for prompt 'otp_pin2'", ErrNoAnswer},
		{"invalid", Prompt{ID: "bad_pin", Kind: Secret, Validate: validPIN},
			false, "testdata/answers.yaml:11: answer for prompt 'bad_pin' is not valid: the PIN is 11 upper-case letters or digits", ErrNoAnswer},
		{"not a choice", Prompt{ID: "user_id", Kind: Choice, Choices: periods},
			false, `testdata/answers.yaml:3: answer for prompt 'user_id' is not valid: "qq111111_qwertyui" is not one of the options (allowed values: 1y, 3y)`, ErrNoAnswer},
		{"choice number is not a value", Prompt{ID: "token_label", Kind: Choice, Choices: []Option{{Value: "a"}}},
			false, `testdata/answers.yaml:5: answer for prompt 'token_label' is not valid: "012345" is not one of the options (allowed values: a)`, ErrNoAnswer},
		{"not yes or no", Prompt{ID: "user_id", Kind: Confirm},
			true, "testdata/answers.yaml:3: answer for prompt 'user_id' is not valid: answer yes or no", ErrNoAnswer},
		{"list", Prompt{ID: "key_files"},
			false, "testdata/answers.yaml:14: answer for prompt 'key_files' must be a single value, not a list", ErrNoAnswer},
		{"mapping", Prompt{ID: "subject"},
			false, "testdata/answers.yaml:17: answer for prompt 'subject' must be a single value, not a mapping", ErrNoAnswer},
		{"human only", Prompt{ID: "otp_pin", Kind: Secret, HumanOnly: true},
			true, "prompt 'otp_pin' needs a person at a terminal; testdata/answers.yaml cannot answer it", ErrNoAnswer},
		{"confirm needs --yes", Prompt{ID: "confirm_summary", Kind: Confirm},
			false, "prompt 'confirm_summary' asks for a confirmation, which testdata/answers.yaml can give only with --yes", ErrNoAnswer},
		{"bad prompt", Prompt{ID: "x y"},
			false, `prompt id "x y": only letters, digits, '_', '.' and '-' are allowed`, nil},
		{"aborted validation", Prompt{ID: "user_id", Validate: func(string) error { return Abort(errors.New("lua: boom")) }},
			false, "prompt 'user_id': validate: lua: boom", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := loadSample(t, AnswersOptions{AllowConfirm: tt.allowConfirm})
			_, err := a.Ask(context.Background(), tt.p)
			require.EqualError(t, err, tt.want)
			if tt.sentinel != nil {
				assert.ErrorIs(t, err, tt.sentinel)
			}
		})
	}
}

func TestAnswersContext(t *testing.T) {
	a := loadSample(t, AnswersOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.Ask(ctx, Prompt{ID: "user_id"})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestAnswersUnused(t *testing.T) {
	a := loadSample(t, AnswersOptions{})
	ctx := context.Background()
	for _, id := range []string{"registration_type", "user_id", "otp_pin", "token_label", "serial_hex",
		"password_matches_pin", "empty_label", "null_label", "anchored", "aliased", "key_files", "subject"} {
		_, _ = a.Ask(ctx, Prompt{ID: id})
	}
	// A refused or invalid prompt was still asked: its id is no typo.
	_, err := a.Ask(ctx, Prompt{ID: "confirm_summary", Kind: Confirm})
	require.Error(t, err)
	_, err = a.Ask(ctx, Prompt{ID: "bad_pin", Validate: validPIN})
	require.Error(t, err)
	assert.Equal(t, []string{"typo_id"}, a.Unused())

	fresh := loadSample(t, AnswersOptions{})
	assert.Equal(t, []string{"registration_type", "user_id", "otp_pin", "token_label", "serial_hex",
		"password_matches_pin", "confirm_summary", "empty_label", "null_label", "bad_pin", "anchored",
		"aliased", "key_files", "subject", "typo_id"}, fresh.Unused(), "file order")
}

func TestParseAnswersErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"not a mapping", "- a\n- b\n", "batch.yaml:1: answers must be a mapping of prompt id to answer"},
		{"scalar", "hello\n", "batch.yaml:1: answers must be a mapping of prompt id to answer"},
		{"duplicate", "user_id: a\nother: b\nuser_id: c\n", "batch.yaml:3: prompt 'user_id' is answered twice (first on line 1)"},
		{"bad id", "user id: a\n", `batch.yaml:1: a prompt id has only letters, digits, '_', '.' and '-'`},
		{"complex key", "? [a, b]\n: c\n", "batch.yaml:1: a prompt id must be a plain name"},
		{"two documents", "a: 1\n---\nb: 2\n", "batch.yaml:2: more than one YAML document; answers must be one mapping"},
		{"syntax", "a: 1\n b: [\n", "batch.yaml:2: mapping values are not allowed in this context"},
		{"tab", "a: b\n\tc: d\n", "batch.yaml:2: found a tab character that violates indentation"},
		{"unknown anchor", "a: *x\n", "batch.yaml: yaml: unknown anchor 'x' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAnswers([]byte(tt.yaml), AnswersOptions{Name: "batch.yaml"})
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got %q", err.Error())
		})
	}
}

func TestParseAnswersEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "~\n"} {
		a, err := ParseAnswers([]byte(src), AnswersOptions{})
		require.NoError(t, err, "%q", src)
		assert.Empty(t, a.Unused())
		_, err = a.Ask(context.Background(), Prompt{ID: "user_id"})
		assert.EqualError(t, err, "the answers file has no answer for prompt 'user_id'")
	}
}

func TestLoadAnswersMissingFile(t *testing.T) {
	_, err := LoadAnswers(filepath.Join(t.TempDir(), "nope.yaml"), AnswersOptions{})
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "read answers: ")
}

func TestNewAnswers(t *testing.T) {
	a := NewAnswers(map[string]string{"user_id": "qq1", "go": "да", "typo": "x"}, AnswersOptions{AllowConfirm: true})
	ctx := context.Background()
	got, err := a.Ask(ctx, Prompt{ID: "user_id"})
	require.NoError(t, err)
	assert.Equal(t, "qq1", got)
	got, err = a.Ask(ctx, Prompt{ID: "go", Kind: Confirm})
	require.NoError(t, err)
	assert.Equal(t, "yes", got)
	_, err = a.Ask(ctx, Prompt{ID: "otp_pin", Kind: Secret})
	assert.EqualError(t, err, "the answer set has no answer for prompt 'otp_pin'")
	_, err = a.Ask(ctx, Prompt{ID: "user_id", Validate: func(string) error { return errors.New("wrong format") }})
	assert.EqualError(t, err, "the answer set: answer for prompt 'user_id' is not valid: wrong format")
	assert.Equal(t, []string{"typo"}, a.Unused())

	a = NewAnswers(nil, AnswersOptions{Name: "--answer flags"})
	_, err = a.Ask(ctx, Prompt{ID: "user_id"})
	assert.EqualError(t, err, "--answer flags has no answer for prompt 'user_id'")
}

func TestAnswersSayProgress(t *testing.T) {
	out := &syncBuffer{}
	a := NewAnswers(nil, AnswersOptions{Out: out})
	ctx := context.Background()
	require.NoError(t, a.Say(ctx, Info, "Plug in the token."))
	require.NoError(t, a.Say(ctx, Warn, "Careful."))
	assert.Error(t, a.Say(ctx, Level(9), "x"))
	p, err := a.Progress(ctx, "generate", "Generating")
	require.NoError(t, err)
	p.Update(0.5, "")
	p.Done(true, "")
	assert.Equal(t, "Plug in the token.\nWarning: Careful.\nGenerating...\nGenerating: 50%\nGenerating: done\n", out.String())

	// Without Out, messages are dropped rather than failing the run.
	a = NewAnswers(nil, AnswersOptions{})
	require.NoError(t, a.Say(ctx, Info, "x"))
	p, err = a.Progress(ctx, "g", "")
	require.NoError(t, err)
	p.Done(true, "")
}
