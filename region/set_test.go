package region

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadDefault(t *testing.T) *Region {
	t.Helper()
	r, err := Load(shipped, "default")
	require.NoError(t, err)
	return r
}

func TestSet(t *testing.T) {
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, r *Region)
	}{
		{"text", []string{"ca.url=https://127.0.0.1:9443"}, func(t *testing.T, r *Region) {
			assert.Equal(t, "https://127.0.0.1:9443", r.CA.URL)
		}},
		{"text is taken as typed", []string{"token.default_user_pin=0012", "profile.default_name="}, func(t *testing.T, r *Region) {
			assert.Equal(t, "0012", r.Token.DefaultUserPIN)
			assert.Equal(t, "", r.Profile.DefaultName)
		}},
		{"text with =", []string{"messages.en.cancelled=a=b"}, func(t *testing.T, r *Region) {
			assert.Equal(t, "a=b", r.Messages["en"]["cancelled"])
		}},
		{"whole number", []string{"password.min_length=10"}, func(t *testing.T, r *Region) {
			assert.Equal(t, 10, r.Password.MinLength)
		}},
		{"boolean", []string{"otp_pin.uppercase=false"}, func(t *testing.T, r *Region) {
			assert.False(t, r.OTPPIN.Uppercase)
		}},
		{"duration", []string{"ca.timeout=90s", "token.wait=2m"}, func(t *testing.T, r *Region) {
			assert.Equal(t, 90*time.Second, r.CA.Timeout)
			assert.Equal(t, 2*time.Minute, r.Token.Wait)
		}},
		{"pattern", []string{"user_id.pattern=[a-z]{2}[0-9]{6}", "user_id.example=ab123456"}, func(t *testing.T, r *Region) {
			assert.True(t, r.UserID.Pattern.MatchString("ab123456"))
			assert.False(t, r.UserID.Pattern.MatchString("xab123456"), "patterns match the whole input")
		}},
		{"language, as --lang does", []string{"language=kk"}, func(t *testing.T, r *Region) {
			assert.Equal(t, "kk", r.Language)
		}},
		{"map entry", []string{"subject.O=ACME"}, func(t *testing.T, r *Region) {
			assert.Equal(t, map[string]string{"C": "KZ", "O": "ACME"}, r.Subject)
		}},
		{"whole map", []string{"subject={CN: test, C: KZ}"}, func(t *testing.T, r *Region) {
			assert.Equal(t, map[string]string{"C": "KZ", "CN": "test"}, r.Subject)
		}},
		{"message override", []string{"messages.ru.enroll_done=Готово: {token_name}."}, func(t *testing.T, r *Region) {
			assert.Equal(t, "Готово: {token_name}.", r.Messages["ru"]["enroll_done"])
		}},
		{"list in flow style", []string{"validity=[{id: 2y, years: 2}]"}, func(t *testing.T, r *Region) {
			assert.Equal(t, []Validity{{ID: "2y", Years: 2}}, r.Validity)
		}},
		{"section in flow style merges", []string{"ca={url: 'https://ca.example.kz', timeout: 1m}"}, func(t *testing.T, r *Region) {
			assert.Equal(t, "https://ca.example.kz", r.CA.URL)
			assert.Equal(t, time.Minute, r.CA.Timeout)
			assert.Equal(t, "est", r.CA.Protocol)
		}},
		{"key type and its field, field first", []string{"key.curve=P-384", "key.type=ec"}, func(t *testing.T, r *Region) {
			assert.Equal(t, "ec", r.Key.Type)
			assert.Equal(t, "P-384", r.Key.Curve)
		}},
		{"number, for a vendor key", []string{"key.type=vendor", "key.mechanism=0x80000001"}, func(t *testing.T, r *Region) {
			assert.Equal(t, uint64(0x80000001), r.Key.Mechanism)
		}},
		{"whole key section replaces", []string{"key={type: ed25519}"}, func(t *testing.T, r *Region) {
			assert.Equal(t, KeySpec{Type: "ed25519"}, r.Key)
		}},
		{"nothing", nil, func(t *testing.T, r *Region) {
			assert.Equal(t, loadDefault(t).Map(), r.Map())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadDefault(t)
			require.NoError(t, r.Set(tt.set...))
			tt.check(t, r)
		})
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want []string
	}{
		{"unknown key", []string{"ca.ulr=https://x"}, []string{
			`--set ca.ulr: unknown key "ulr": did you mean "url"? (known in ca: protocol, url, roots, timeout, label_from_validity)`}},
		{"unknown section", []string{"cert.url=x"}, []string{
			`--set cert: unknown key "cert" (known: language, token, user_id, otp_pin, password, validity, key, subject, ca, profile, messages, sandbox, agent)`}},
		{"not a key=value", []string{"ca.url"}, []string{
			`--set: expected KEY=VALUE, such as ca.url=https://127.0.0.1:8443, got "ca.url"`}},
		{"empty part", []string{"ca..url=x"}, []string{
			`--set ca: a key has no empty parts: write it like ca.url`}},
		{"below a value", []string{"ca.url.host=x"}, []string{
			`--set ca.url: is a single value: it has no "host" under it`}},
		{"into a list", []string{"validity.1.years=2"}, []string{
			`--set validity: is a list: give it whole in YAML flow style, e.g. --set 'validity=[{...}, {...}]'`}},
		{"whole number", []string{"password.min_length=eight"}, []string{
			`--set password.min_length: expected a whole number, got "eight"`}},
		{"missing number", []string{"password.min_length="}, []string{
			`--set password.min_length: expected a whole number, got nothing`}},
		{"boolean", []string{"otp_pin.uppercase=yes"}, []string{
			`--set otp_pin.uppercase: expected true or false, got "yes"`}},
		{"duration", []string{"ca.timeout=5"}, []string{
			`--set ca.timeout: expected a duration such as 90s, 5m or 1h30m, got "5"`}},
		{"pattern", []string{"password.pattern=[a-z"}, []string{
			"--set password.pattern: the regular expression \"[a-z\" does not compile: missing closing ]: `[a-z` (the syntax is RE2: https://github.com/google/re2/wiki/Syntax)"}},
		{"list", []string{"validity=1y"}, []string{
			`--set validity: expected a list (lines starting with -), got "1y"`}},
		{"bad flow YAML", []string{"validity=[{id: 1y"}, []string{
			`--set validity: "[{id: 1y" cannot be read: did not find expected ',' or '}'`}},
		{"checked as a whole", []string{"password.max_length=6"}, []string{
			`--set password.max_length: password.min_length (8) is greater than password.max_length (6): no password could be chosen`}},
		{"http", []string{"ca.url=http://127.0.0.1:8443"}, []string{
			`--set ca.url: "http://127.0.0.1:8443": use https: EST runs over TLS, a development CA on 127.0.0.1 included (give its root certificate with ca.roots)`}},
		{"language", []string{"language=de"}, []string{
			`--set language: "de" is not a language the procedures speak: use kk, ru or en`}},
		{"message override", []string{"messages.ru.enroll_done=Готово, {name}."}, []string{
			`--set messages.ru.enroll_done: {name} is not filled in by the procedure for this message: use {token_name}`}},
		{"field of another key type written with it", []string{"key.type=ec", "key.curve=P-256", "key.bits=256"}, []string{
			`--set key.bits: goes with key type rsa, not ec: remove it`}},
		{"roots missing", []string{"ca.roots=/nonexistent/roots.pem"}, []string{
			`--set ca.roots: cannot read the root certificates: open /nonexistent/roots.pem: no such file or directory: give a PEM file (relative paths are relative to the region file's folder)`}},
		{"every mistake at once", []string{"ca.ulr=x", "ca.timeout=five"}, []string{
			`--set ca.ulr: unknown key "ulr": did you mean "url"? (known in ca: protocol, url, roots, timeout, label_from_validity)`,
			`--set ca.timeout: expected a duration such as 90s, 5m or 1h30m, got "five"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadDefault(t)
			before := r.Map()
			err := r.Set(tt.set...)
			require.Error(t, err)
			assert.Equal(t, tt.want, errorLines(err))
			assert.Equal(t, before, r.Map(), "a failed Set leaves the region as it was")
		})
	}
}

// TestSetLeavesNothingShared: Set works on a copy, so a failed Set cannot have changed maps
// or lists the region still holds.
func TestSetLeavesNothingShared(t *testing.T) {
	r := loadDefault(t)
	err := r.Set("subject.O=ACME", "messages.ru.cancelled=Стоп.", "validity=[{id: x, years: 0}]")
	require.Error(t, err)
	assert.Equal(t, map[string]string{"C": "KZ"}, r.Subject)
	assert.Empty(t, r.Messages["ru"])
	assert.Len(t, r.Validity, 2)
}

func TestSetRootsRelativeToCurrentFolder(t *testing.T) {
	dir := t.TempDir()
	pemData := rootPEM(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "roots.pem"), pemData, 0o600))
	t.Chdir(dir)

	r := loadDefault(t)
	require.NoError(t, r.Set("ca.url=https://127.0.0.1:8443", "ca.roots=roots.pem"))
	assert.Equal(t, filepath.Join(dir, "roots.pem"), r.CA.Roots, "made absolute, so a later chdir does not change it")
	assert.Equal(t, pemData, r.CA.RootsPEM)
	assert.Equal(t, string(pemData), r.Map()["ca"].(map[string]any)["roots"])

	require.NoError(t, r.Set("ca.roots="), "empty: not configured")
	assert.Nil(t, r.CA.RootsPEM)
}

func TestKeys(t *testing.T) {
	keys := Keys()
	for _, k := range []string{"language", "token.wait", "ca.url", "ca.roots", "password.max_sequence", "validity", "key.mechanism", "subject.NAME", "messages.LANG.KEY"} {
		assert.Contains(t, keys, k)
	}
	// Every key listed is one Set knows (free-form parts filled in).
	for _, k := range keys {
		r := loadDefault(t)
		err := r.Set(k + "=")
		if err != nil {
			assert.NotContains(t, err.Error(), "unknown key", k)
		}
	}
}
