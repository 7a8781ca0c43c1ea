package region

import (
	"strings"
	"unicode/utf8"
)

// Problem is one rule an input breaks: the catalog key of the message that explains it and
// the values for that message's placeholders. Args never hold a secret, not even part of one:
// a password problem says which rule, never which characters.
type Problem struct {
	Key  string
	Args map[string]any
}

// Check checks a user ID against the region's format.
func (u UserID) Check(id string) []Problem {
	if u.Pattern.MatchString(id) {
		return nil
	}
	return []Problem{{Key: "user_id_invalid", Args: map[string]any{"value": id, "example": u.Example}}}
}

// Normalize prepares a typed OTP-card PIN: surrounding spaces dropped, upper-cased when the
// region says so (the card prints capitals, so lower case is a slip), then checked for
// length and characters. It returns the PIN to use and what is wrong with it.
func (o OTPPIN) Normalize(pin string) (string, []Problem) {
	pin = strings.TrimSpace(pin)
	if o.Uppercase {
		pin = strings.ToUpper(pin)
	}
	var out []Problem
	if n := utf8.RuneCountInString(pin); n != o.Length {
		out = append(out, Problem{Key: "otp_pin_length", Args: map[string]any{"length": o.Length, "got": n}})
	}
	if !o.Pattern.MatchString(pin) {
		out = append(out, Problem{Key: "otp_pin_charset", Args: map[string]any{}})
	}
	return pin, out
}

// Confusable lists the 1-based positions of the characters people mix up when copying an
// OTP-card PIN: the digit 1 and the letter I, the digit 0 and the letter O. When the initial
// key container does not open, these are the positions to check (otp_pin_confusable).
func Confusable(pin string) []int {
	var out []int
	i := 0
	for _, c := range pin {
		i++
		switch c {
		case '1', 'I', 'i', '0', 'O', 'o':
			out = append(out, i)
		}
	}
	return out
}

// Check checks a new password and its confirmation against the policy, in the order a person
// fixes them: length, characters, runs, then the confirmation.
func (p PasswordPolicy) Check(pw, confirm string) []Problem {
	var out []Problem
	n := utf8.RuneCountInString(pw)
	if n < p.MinLength {
		out = append(out, Problem{Key: "password_too_short", Args: map[string]any{"min": p.MinLength}})
	}
	if p.MaxLength > 0 && n > p.MaxLength {
		out = append(out, Problem{Key: "password_too_long", Args: map[string]any{"max": p.MaxLength}})
	}
	if !p.Pattern.MatchString(pw) {
		out = append(out, Problem{Key: "password_charset", Args: map[string]any{}})
	}
	if p.MaxSequence > 0 && LongestSequence(pw) > p.MaxSequence {
		out = append(out, Problem{Key: "password_sequence", Args: map[string]any{"max": p.MaxSequence}})
	}
	if pw != confirm {
		out = append(out, Problem{Key: "password_mismatch", Args: map[string]any{}})
	}
	return out
}

// LongestSequence is the length of the longest run of consecutive characters in s, going up
// or down by one ("123", "cba"), letters compared without case ("aBc" is a run: it is as easy
// to guess as "abc"). A string of one character has a run of 1; "" has 0.
func LongestSequence(s string) int {
	rs := []rune(strings.ToLower(s))
	best := min(len(rs), 1)
	up, down := 1, 1
	for i := 1; i < len(rs); i++ {
		switch rs[i] - rs[i-1] {
		case 1:
			up, down = up+1, 1
		case -1:
			up, down = 1, down+1
		default:
			up, down = 1, 1
		}
		best = max(best, up, down)
	}
	return best
}

// Rules are the rules of the policy that apply, as Problems (the catalog key of the rule's
// message and its arguments), in the order Check reports them: what a GUI shows before the
// password is typed. The confirmation's rule (password_mismatch) is not among them.
func (p PasswordPolicy) Rules() []Problem {
	var out []Problem
	if p.MinLength > 0 {
		out = append(out, Problem{Key: "password_too_short", Args: map[string]any{"min": p.MinLength}})
	}
	if p.MaxLength > 0 {
		out = append(out, Problem{Key: "password_too_long", Args: map[string]any{"max": p.MaxLength}})
	}
	if p.Pattern.String() != "" {
		out = append(out, Problem{Key: "password_charset", Args: map[string]any{}})
	}
	if p.MaxSequence > 0 {
		out = append(out, Problem{Key: "password_sequence", Args: map[string]any{"max": p.MaxSequence}})
	}
	return out
}

// CharClass is the character class of a pattern that only says which characters may appear,
// such as "A-Za-z0-9" for ^[A-Za-z0-9]+$, and "" for any other pattern.
func CharClass(p Pattern) string {
	s := p.String()
	for _, suffix := range []string{"]+$", "]*$"} {
		if strings.HasPrefix(s, "^[") && strings.HasSuffix(s, suffix) {
			class := s[2 : len(s)-len(suffix)]
			if class != "" && !strings.HasPrefix(class, "^") && !strings.ContainsAny(class, "[]\\") {
				return class
			}
		}
	}
	return ""
}
