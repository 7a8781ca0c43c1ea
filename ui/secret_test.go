package ui

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// theSecret is distinctive so that any leak is found by a plain substring search. It
// fails validPIN (lower case), so it travels through every rejection path.
const theSecret = "zq7-Secret-PIN-xk9"

// assertNoSecret fails if the secret is in the output or anywhere in the error chain.
func assertNoSecret(t *testing.T, out string, err error) {
	t.Helper()
	assert.NotContains(t, out, theSecret, "output")
	for e := err; e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), theSecret, "error chain")
	}
	// Joined errors unwrap to several; walk them too.
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		for _, e := range multi.Unwrap() {
			assertNoSecret(t, "", e)
		}
	}
}

// secretPrompts are the ways a secret can be rejected: by a validator that minds its
// manners, by one that quotes its input, and by one that aborts quoting its input.
func secretPrompts() []Prompt {
	return []Prompt{
		{ID: "otp_pin", Kind: Secret, Label: "PIN", Help: "From the OTP card", Validate: validPIN},
		{ID: "otp_pin", Kind: Secret, Label: "PIN", Validate: leakyPIN},
		{ID: "otp_pin", Kind: Secret, Label: "PIN", Validate: func(s string) error {
			return Abort(errors.New("validate.lua:7: cannot check " + s))
		}},
		{ID: "otp_pin", Kind: Secret, Label: "PIN", HumanOnly: true, Validate: leakyPIN},
	}
}

func TestSecretNeverShownTerminal(t *testing.T) {
	inputs := map[string]string{
		"rejected then closed":    theSecret + "\n",
		"rejected until give-up":  strings.Repeat(theSecret+"\n", 5),
		"rejected then accepted":  theSecret + "\n" + "A1B2C3D4E5F\n",
		"without newline":         theSecret,
		"with surrounding spaces": "  " + theSecret + "  \n",
	}
	for name, input := range inputs {
		for i, p := range secretPrompts() {
			for _, opts := range []TerminalOptions{{}, {Interactive: true}} {
				term, out := newTestTerminal(strings.NewReader(input), opts)
				v, err := term.Ask(context.Background(), p)
				if err == nil {
					assert.Equal(t, "A1B2C3D4E5F", v)
				}
				t.Logf("%s/%d/interactive=%t: %v", name, i, opts.Interactive, err)
				assertNoSecret(t, out.String(), err)
			}
		}
	}
}

func TestSecretNeverShownAnswers(t *testing.T) {
	files := []string{
		"otp_pin: " + theSecret + "\n",
		"otp_pin: [" + theSecret + "]\n",
		"otp_pin: {" + theSecret + ": 1}\n",
		"otp_pin: \"" + theSecret + "\n",        // unterminated quote
		"otp_pin: " + theSecret + "\n\t x: 1\n", // bad indentation after it
		theSecret + "\n",                        // the whole file is the secret
		"otp_pin: " + theSecret + "\notp_pin: " + theSecret + "\n",
		"? " + theSecret + " x\n: 1\n", // a key that cannot be an id: a pasted value?
		theSecret + " x: 1\n",
	}
	for _, f := range files {
		out := &syncBuffer{}
		a, err := ParseAnswers([]byte(f), AnswersOptions{Out: out, AllowConfirm: true})
		if err != nil {
			t.Logf("parse: %v", err)
			assertNoSecret(t, "", err)
			continue
		}
		for _, p := range secretPrompts() {
			_, err := a.Ask(context.Background(), p)
			t.Logf("ask: %v", err)
			assertNoSecret(t, out.String(), err)
		}
	}
}

func TestSecretNeverShownJSON(t *testing.T) {
	lines := []string{
		`{"id":"otp_pin","value":"` + theSecret + `"`,    // cut short
		`{"id":"otp_pin","value":` + theSecret + `}`,     // unquoted
		`{"id":"otp_pin","value":["` + theSecret + `"]}`, // wrong type
		`{"id":"otp_pin2","value":"` + theSecret + `"}`,  // wrong prompt
		`{"value":"` + theSecret + `"}`,                  // no id
		`{"id":"otp_pin","cancel":"` + theSecret + `"}`,
		`["` + theSecret + `"]`,
		theSecret,
		strings.Repeat(theSecret, maxLine/len(theSecret)+1),
		`{"id":"otp_pin","value":"` + theSecret + `"}`, // last: an aborting validator stops here
	}
	for _, p := range secretPrompts() {
		out := &syncBuffer{}
		j := NewJSON(strings.NewReader(strings.Join(lines, "\n")+"\n"), out)
		_, err := j.Ask(context.Background(), p)
		t.Logf("%v", err)
		assert.Contains(t, out.String(), `"type":"error"`, "the bad lines were answered")
		assertNoSecret(t, out.String(), err)
	}
}

func TestSecretNeverShownProgressAndSay(t *testing.T) {
	// Nothing here carries a secret by design; this guards the front-ends' chrome, such
	// as an ask line that would repeat the last answer.
	out := &syncBuffer{}
	j := NewJSON(strings.NewReader(`{"id":"otp_pin","value":"`+theSecret+`"}`+"\n"), out)
	v, err := j.Ask(context.Background(), Prompt{ID: "otp_pin", Kind: Secret})
	require.NoError(t, err)
	assert.Equal(t, theSecret, v, "the answer itself is the one place the secret goes")
	require.NoError(t, j.Say(context.Background(), Info, "done"))
	assertNoSecret(t, out.String(), nil)

	term, tout := newTestTerminal(strings.NewReader(theSecret+"\n"), TerminalOptions{})
	v, err = term.Ask(context.Background(), Prompt{ID: "otp_pin", Kind: Secret})
	require.NoError(t, err)
	assert.Equal(t, theSecret, v)
	assertNoSecret(t, tout.String(), nil)
}
