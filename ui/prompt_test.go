package ui

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var pinRe = regexp.MustCompile(`^[A-Z0-9]{11}$`)

// validPIN is the OTP-card PIN rule from procedures.md; its message does not quote the
// answer, as a well-behaved validator's should not.
func validPIN(s string) error {
	if !pinRe.MatchString(s) {
		return errors.New("the PIN is 11 upper-case letters or digits")
	}
	return nil
}

// leakyPIN quotes its input, as a careless script's validator might.
func leakyPIN(s string) error {
	if !pinRe.MatchString(s) {
		return fmt.Errorf("PIN %q is not 11 upper-case letters or digits", s)
	}
	return nil
}

var periods = []Option{{Value: "1y", Label: "1 year"}, {Value: "3y", Label: "3 years"}}

func TestPromptCheck(t *testing.T) {
	tests := []struct {
		name string
		p    Prompt
		want string // "" = valid
	}{
		{"text", Prompt{ID: "user_id", Label: "User ID"}, ""},
		{"dotted id", Prompt{ID: "enroll.user-id_2"}, ""},
		{"no id", Prompt{Label: "x"}, "prompt has no id"},
		{"id with space", Prompt{ID: "user id"}, `prompt id "user id": only letters`},
		{"id non-ascii", Prompt{ID: "пин"}, "only letters"},
		{"secret default", Prompt{ID: "pin", Kind: Secret, Default: "12345678"}, "prompt 'pin': a secret prompt cannot have a default"},
		{"choices on text", Prompt{ID: "x", Choices: periods}, "only a choice prompt has choices"},
		{"choice without choices", Prompt{ID: "x", Kind: Choice}, "needs at least one choice"},
		{"choice empty value", Prompt{ID: "x", Kind: Choice, Choices: []Option{{Label: "a"}}}, "empty value"},
		{"choice duplicate", Prompt{ID: "x", Kind: Choice, Choices: []Option{{Value: "a"}, {Value: "a"}}}, `"a" appears twice`},
		{"choice bad default", Prompt{ID: "x", Kind: Choice, Choices: periods, Default: "5y"}, `default "5y" is not one of`},
		{"choice good default", Prompt{ID: "x", Kind: Choice, Choices: periods, Default: "3y"}, ""},
		{"confirm bad default", Prompt{ID: "x", Kind: Confirm, Default: "y"}, `must be "yes" or "no"`},
		{"confirm default", Prompt{ID: "x", Kind: Confirm, Default: "no"}, ""},
		{"unknown kind", Prompt{ID: "x", Kind: Kind(9)}, "unknown kind 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestResolve(t *testing.T) {
	numericPeriods := []Option{{Value: "3", Label: "3 years"}, {Value: "1", Label: "1 year"}}
	tests := []struct {
		name     string
		p        Prompt
		raw      string
		numbered bool
		want     string
		retry    string // expected retry message; "" = accepted
	}{
		{"text as typed", Prompt{ID: "a"}, "qq1", false, "qq1", ""},
		{"text trimmed", Prompt{ID: "a"}, "  qq1 \t", false, "qq1", ""},
		{"text default", Prompt{ID: "a", Default: "d"}, "", false, "d", ""},
		{"text empty allowed without validator", Prompt{ID: "a"}, "", false, "", ""},
		{"secret kept as typed", Prompt{ID: "a", Kind: Secret}, " p w ", false, " p w ", ""},
		{"choice by value", Prompt{ID: "a", Kind: Choice, Choices: periods}, "3y", false, "3y", ""},
		{"choice by value any case", Prompt{ID: "a", Kind: Choice, Choices: periods}, "3Y", false, "3y", ""},
		{"choice by number", Prompt{ID: "a", Kind: Choice, Choices: periods}, "2", true, "3y", ""},
		{"choice number not allowed", Prompt{ID: "a", Kind: Choice, Choices: periods}, "2", false, "", `"2" is not one of the options`},
		{"choice number out of range", Prompt{ID: "a", Kind: Choice, Choices: periods}, "3", true, "", `"3" is not one of the options`},
		{"choice default", Prompt{ID: "a", Kind: Choice, Choices: periods, Default: "1y"}, "", true, "1y", ""},
		{"choice empty no default", Prompt{ID: "a", Kind: Choice, Choices: periods}, "", true, "", "choose one of the options"},
		{"numeric values are keys", Prompt{ID: "a", Kind: Choice, Choices: numericPeriods}, "1", false, "1", ""},
		{"confirm y", Prompt{ID: "a", Kind: Confirm}, "y", false, "yes", ""},
		{"confirm YES", Prompt{ID: "a", Kind: Confirm}, "YES", false, "yes", ""},
		{"confirm n", Prompt{ID: "a", Kind: Confirm}, "n", false, "no", ""},
		{"confirm да", Prompt{ID: "a", Kind: Confirm}, "Да", false, "yes", ""},
		{"confirm нет", Prompt{ID: "a", Kind: Confirm}, "нет", false, "no", ""},
		{"confirm иә", Prompt{ID: "a", Kind: Confirm}, "иә", false, "yes", ""},
		{"confirm жоқ", Prompt{ID: "a", Kind: Confirm}, "ЖОҚ", false, "no", ""},
		{"confirm true", Prompt{ID: "a", Kind: Confirm}, "true", false, "yes", ""},
		{"confirm default", Prompt{ID: "a", Kind: Confirm, Default: "no"}, "", false, "no", ""},
		{"confirm empty no default", Prompt{ID: "a", Kind: Confirm}, "", false, "", "answer yes or no"},
		{"confirm junk", Prompt{ID: "a", Kind: Confirm}, "maybe", false, "", "answer yes or no"},
		{"validate ok", Prompt{ID: "a", Kind: Secret, Validate: validPIN}, "A1B2C3D4E5F", false, "A1B2C3D4E5F", ""},
		{"validate fails", Prompt{ID: "a", Kind: Secret, Validate: validPIN}, "short", false, "", "the PIN is 11 upper-case letters or digits"},
		{"validate sees default", Prompt{ID: "a", Default: "x", Validate: func(s string) error {
			if s != "x" {
				return errors.New("not x")
			}
			return nil
		}}, "", false, "x", ""},
		{"leaky validator redacted", Prompt{ID: "a", Kind: Secret, Validate: leakyPIN}, "abcdefgh", false, "", `PIN "***" is not 11`},
		{"short secret not redacted", Prompt{ID: "a", Kind: Secret, Validate: leakyPIN}, "abc", false, "", `PIN "abc" is not 11`},
		{"text not redacted", Prompt{ID: "a", Validate: leakyPIN}, "abcdefgh", false, "", `PIN "abcdefgh" is not 11`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.resolve(tt.raw, tt.numbered)
			if tt.retry == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			var retry *retryError
			require.ErrorAs(t, err, &retry)
			assert.Contains(t, retry.msg, tt.retry)
		})
	}
}

func TestNumbered(t *testing.T) {
	assert.True(t, Prompt{Choices: periods}.numbered())
	assert.False(t, Prompt{Choices: []Option{{Value: "3"}, {Value: "1"}}}.numbered(), "1 is a value and a position")
	assert.True(t, Prompt{Choices: []Option{{Value: "5"}, {Value: "7"}}}.numbered(), "5 and 7 are no positions")
}

func TestResolveAbort(t *testing.T) {
	broken := errors.New("validate.lua:3: attempt to index a nil value")
	p := Prompt{ID: "user_id", Validate: func(string) error { return Abort(broken) }}
	_, err := p.resolve("x", false)
	var retry *retryError
	assert.False(t, errors.As(err, &retry), "an aborted validation is not retried")
	err = promptErr(p.ID, err)
	assert.EqualError(t, err, "prompt 'user_id': validate: validate.lua:3: attempt to index a nil value")
	assert.ErrorIs(t, err, broken)

	// A leaky message is redacted, and the original cannot be reached through the chain.
	const secret = "S3CRET-PIN-77"
	p = Prompt{ID: "pin", Kind: Secret, Validate: func(s string) error { return Abort(fmt.Errorf("bad %s", s)) }}
	_, err = p.resolve(secret, false)
	err = promptErr(p.ID, err)
	assert.EqualError(t, err, "prompt 'pin': validate: bad ***")
	for e := err; e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), secret)
	}
	assert.NoError(t, Abort(nil))
}

func TestStrings(t *testing.T) {
	assert.Equal(t, []string{"text", "secret", "choice", "confirm", "Kind(7)"},
		[]string{Text.String(), Secret.String(), Choice.String(), Confirm.String(), Kind(7).String()})
	assert.Equal(t, []string{"info", "warn", "error", "Level(-1)"},
		[]string{Info.String(), Warn.String(), Error.String(), Level(-1).String()})
}

func TestSentinels(t *testing.T) {
	err := noAnswerf("no answer for prompt '%s': input closed", "user_id")
	assert.ErrorIs(t, err, ErrNoAnswer)
	assert.NotErrorIs(t, err, ErrCancelled)
	assert.EqualError(t, err, "no answer for prompt 'user_id': input closed")
	err = fmt.Errorf("run: %w", cancelledf("prompt '%s': cancelled", "x"))
	assert.ErrorIs(t, err, ErrCancelled)
	assert.NotErrorIs(t, err, ErrNoAnswer)
}
