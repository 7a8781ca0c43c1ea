package token

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepToken records the calls FormatWithUserPIN makes on a token without the one-step
// capability, and fails the one named in fail.
type stepToken struct {
	Token // unused methods panic
	calls []string
	fail  string
}

func (s *stepToken) step(name string) error {
	s.calls = append(s.calls, name)
	if name == s.fail {
		return NewError(name, CKR_GENERAL_ERROR)
	}
	return nil
}

func (s *stepToken) recorded() []string { return s.calls }

func (s *stepToken) Info(context.Context) (Info, error) {
	return Info{MinPINLen: 4, MaxPINLen: 8}, nil
}
func (s *stepToken) Format(context.Context, string, string) error { return s.step("format") }
func (s *stepToken) Login(_ context.Context, r Role, _ string) error {
	return s.step("login " + r.String())
}
func (s *stepToken) InitPIN(context.Context, string) error { return s.step("init PIN") }
func (s *stepToken) Logout(context.Context) error          { return s.step("logout") }

// oneStep has the capability: FormatWithUserPIN must use it and nothing else.
type oneStep struct{ stepToken }

func (o *oneStep) FormatWithUserPIN(context.Context, string, string, string) error {
	return o.step("format with user PIN")
}

func TestFormatWithUserPIN(t *testing.T) {
	all := []string{"format", "login so", "init PIN", "logout"}
	cases := []struct {
		name    string
		tok     interface{ recorded() []string }
		userPIN string
		calls   []string
		err     string // "" for none
	}{
		{"steps", &stepToken{}, "1234", all, ""},
		{"a PIN the token refuses is refused before the format", &stepToken{}, "123", nil, "has 3 characters, this token takes 4 to 8"},
		{"too long", &stepToken{}, "123456789", nil, "has 9 characters"},
		{"format fails: nothing else", &stepToken{fail: "format"}, "1234", all[:1], "format: PKCS#11 call failed"},
		{"init PIN fails: logged out, and the state named", &stepToken{fail: "init PIN"}, "1234", all, "formatted but has no user PIN yet"},
		{"SO login fails: the state named", &stepToken{fail: "login so"}, "1234", all[:2], "formatted but has no user PIN yet"},
		{"the capability is one call", &oneStep{}, "1", []string{"format with user PIN"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := FormatWithUserPIN(context.Background(), tc.tok.(Token), "so-pin", "L", tc.userPIN)
			if tc.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.err)
				assert.NotContains(t, err.Error(), "so-pin")
				if tc.calls == nil {
					require.ErrorIs(t, err, ErrPINInvalid)
				}
			}
			assert.Equal(t, tc.calls, tc.tok.recorded())
		})
	}
}
