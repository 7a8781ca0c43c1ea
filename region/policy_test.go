package region

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keys(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

func TestPasswordCheck(t *testing.T) {
	p := loadDefault(t).Password // 8..16, Latin letters and digits, runs of at most 2
	tests := []struct {
		pw, confirm string
		want        []string
	}{
		{"Kz7mQ2xR", "Kz7mQ2xR", nil},
		{"a1b2c3d4e5f6g7h8", "a1b2c3d4e5f6g7h8", nil}, // 16: the longest allowed
		{"Kz7mQ2x", "Kz7mQ2x", []string{"password_too_short"}},
		{"a1b2c3d4e5f6g7h8x", "a1b2c3d4e5f6g7h8x", []string{"password_too_long"}},
		{"Kz7mQ2x!", "Kz7mQ2x!", []string{"password_charset"}},
		{"Kz7mQ2хR", "Kz7mQ2хR", []string{"password_charset"}}, // a Cyrillic х
		{"Kz7mQ123", "Kz7mQ123", []string{"password_sequence"}},
		{"Kz7mQcba", "Kz7mQcba", []string{"password_sequence"}},
		{"Kz7maBcQ", "Kz7maBcQ", []string{"password_sequence"}},
		{"Kz12mQab", "Kz12mQab", nil}, // runs of two are allowed
		{"Kz7mQ2xR", "Kz7mQ2xr", []string{"password_mismatch"}},
		{"123", "1234", []string{"password_too_short", "password_sequence", "password_mismatch"}},
		{"", "", []string{"password_too_short", "password_charset"}},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			assert.Equal(t, tt.want, keys(p.Check(tt.pw, tt.confirm)))
		})
	}

	p.MaxSequence = 0
	assert.Empty(t, p.Check("abcdefgh", "abcdefgh"), "max_sequence 0: no limit")
}

func TestLongestSequence(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"", 0}, {"a", 1}, {"aa", 1}, {"ab", 2}, {"ba", 2}, {"abc", 3}, {"cba", 3},
		{"aBcD", 4}, {"x1234y", 4}, {"9876", 4}, {"abcba", 3}, {"acegi", 1}, {"z9a", 1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, LongestSequence(tt.s), tt.s)
	}
}

func TestOTPPINNormalize(t *testing.T) {
	o := loadDefault(t).OTPPIN // 11 characters, A-Z 0-9, upper-cased
	tests := []struct {
		in, out string
		want    []string
	}{
		{"AB12CD34EF5", "AB12CD34EF5", nil},
		{"ab12cd34ef5", "AB12CD34EF5", nil},
		{" AB12CD34EF5\n", "AB12CD34EF5", nil},
		{"AB12CD34EF", "AB12CD34EF", []string{"otp_pin_length"}},
		{"AB12-D34EF5", "AB12-D34EF5", []string{"otp_pin_charset"}},
		{"АВ12CD34EF5", "АВ12CD34EF5", []string{"otp_pin_charset"}}, // Cyrillic А and В
	}
	for _, tt := range tests {
		got, problems := o.Normalize(tt.in)
		assert.Equal(t, tt.out, got, tt.in)
		assert.Equal(t, tt.want, keys(problems), tt.in)
	}
	_, problems := o.Normalize("ABC")
	require.Len(t, problems, 1)
	assert.Equal(t, map[string]any{"length": 11, "got": 3}, problems[0].Args)

	o.Uppercase = false
	_, problems = o.Normalize("ab12cd34ef5")
	assert.Equal(t, []string{"otp_pin_charset"}, keys(problems))
}

func TestConfusable(t *testing.T) {
	assert.Equal(t, []int{1, 3, 5, 8}, Confusable("1AIB0CDO"))
	assert.Empty(t, Confusable("ABCDEFGH234"))
}

func TestUserIDCheck(t *testing.T) {
	u := loadDefault(t).UserID
	assert.Empty(t, u.Check("qq111111_qwertyui"))
	assert.Equal(t, []Problem{{Key: "user_id_invalid", Args: map[string]any{"value": "QQ111111_qwertyui", "example": "qq111111_qwertyui"}}},
		u.Check("QQ111111_qwertyui"))
	assert.NotEmpty(t, u.Check(" qq111111_qwertyui"), "the whole ID must match")
}

// TestProblemsMatchCatalog: every problem the checks report names an en message and fills
// exactly its placeholders, so what a script shows is complete.
func TestProblemsMatchCatalog(t *testing.T) {
	en, err := Catalog(shipped, "en", nil)
	require.NoError(t, err)
	r := loadDefault(t)
	var all []Problem
	all = append(all, r.Password.Check("123!", "x")...)
	all = append(all, r.Password.Check("a1b2c3d4e5f6g7h8x", "")...)
	_, ps := r.OTPPIN.Normalize("a-")
	all = append(all, ps...)
	all = append(all, r.UserID.Check("x")...)
	seen := map[string]bool{}
	for _, p := range all {
		seen[p.Key] = true
		text, ok := en[p.Key]
		if !assert.True(t, ok, "%s is not in messages/en.yaml", p.Key) {
			continue
		}
		var args []string
		for k := range p.Args {
			args = append(args, k)
		}
		assert.ElementsMatch(t, placeholders(text), args, p.Key)
	}
	assert.Len(t, seen, 8, "every kind of problem was produced: %v", seen)
}

func TestPolicyRulesAndCharClass(t *testing.T) {
	pat := func(s string) Pattern {
		p, err := NewPattern(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for in, want := range map[string]string{"^[A-Za-z0-9]+$": "A-Za-z0-9", "^[A-Z0-9]*$": "A-Z0-9", "^[^a]+$": "", "^[a-z]{2}[0-9]{6}$": "", "": ""} {
		if got := CharClass(pat(in)); got != want {
			t.Errorf("CharClass(%q) = %q, want %q", in, got, want)
		}
	}
	p := PasswordPolicy{MinLength: 8, MaxSequence: 2}
	rules := p.Rules()
	if len(rules) != 2 || rules[0].Key != "password_too_short" || rules[1].Key != "password_sequence" {
		t.Errorf("Rules() = %v", rules)
	}
}
