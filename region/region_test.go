package region

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadShippedDefault(t *testing.T) {
	r, err := Load(shipped, "default")
	require.NoError(t, err)

	assert.Equal(t, "default", r.Name)
	assert.Equal(t, "regions/default.yaml", r.Source)
	assert.Equal(t, "ru", r.Language)
	assert.Equal(t, Token{Wait: 60 * time.Second, DefaultUserPIN: "12345678", DefaultSOPIN: "87654321", Label: "KAZTOKEN"}, r.Token)
	assert.Equal(t, "qq111111_qwertyui", r.UserID.Example)
	assert.Equal(t, 11, r.OTPPIN.Length)
	assert.True(t, r.OTPPIN.Uppercase)
	assert.Equal(t, 8, r.Password.MinLength)
	assert.Equal(t, 16, r.Password.MaxLength)
	assert.Equal(t, 2, r.Password.MaxSequence)
	require.Len(t, r.Validity, 2)
	assert.Equal(t, "3y", r.Validity[1].ID)
	assert.Equal(t, "3 жыл", r.Validity[1].Text("kk"))
	assert.Equal(t, KeySpec{Type: "rsa", Bits: 2048}, r.Key)
	assert.Equal(t, map[string]string{"C": "KZ"}, r.Subject)
	assert.Equal(t, "https://127.0.0.1:8443", r.CA.URL)
	assert.Equal(t, 5*time.Minute, r.CA.Timeout)
	assert.Empty(t, r.CA.RootsPEM, "the shipped default has no roots: enrollment must say so")
}

// TestDefaultIsComplete: default.yaml is the base of every region and the template bank IT
// copies, so it writes every key; only the key fields of the other key types are left to
// its comments.
func TestDefaultIsComplete(t *testing.T) {
	r, err := Load(shipped, "default")
	require.NoError(t, err)
	for _, k := range Keys() {
		if strings.ContainsAny(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			continue // NAME, LANG, KEY: free-form
		}
		if i := slices.IndexFunc(keyFields, func(f struct{ name, owner string }) bool { return "key."+f.name == k }); i >= 0 && keyFields[i].owner != r.Key.Type {
			continue
		}
		assert.Equal(t, "regions/default.yaml", r.pos[k].file, "default.yaml does not write %s", k)
	}
}

func TestLoadErrors(t *testing.T) {
	fsys := fixtureTree(t)
	tests := []struct {
		region string
		want   []string
	}{
		{"unknown_keys", []string{
			`regions/unknown_keys.yaml:2: langauge: unknown key "langauge": did you mean "language"? (known: language, token, user_id, otp_pin, password, validity, key, subject, ca, profile, messages, sandbox, agent)`,
			`regions/unknown_keys.yaml:4: ca.ulr: unknown key "ulr": did you mean "url"? (known in ca: protocol, url, roots, timeout, label_from_validity)`,
			`regions/unknown_keys.yaml:5: ca.roots_file: unknown key "roots_file" (known in ca: protocol, url, roots, timeout, label_from_validity)`,
		}},
		{"wrong_types", []string{
			`regions/wrong_types.yaml:2: token.wait: expected a duration such as 90s, 5m or 1h30m, got "soon"`,
			`regions/wrong_types.yaml:3: token.label: expected text, got a list`,
			`regions/wrong_types.yaml:5: password.min_length: expected a whole number, got "eight"`,
			`regions/wrong_types.yaml:6: password.max_length: expected a whole number, got "16.5"`,
			`regions/wrong_types.yaml:8: otp_pin.uppercase: expected true or false, got "maybe"`,
			`regions/wrong_types.yaml:9: validity: expected a list (lines starting with -), got a section (key: value lines)`,
			`regions/wrong_types.yaml:10: profile: expected a section of key: value lines, got "none"`,
		}},
		{"not_mapping", []string{
			`regions/not_mapping.yaml:1: expected key: value lines at the top of the file, got a list`,
		}},
		{"syntax", []string{
			`regions/syntax.yaml:3: mapping values are not allowed in this context (the file is not valid YAML)`,
		}},
		{"duplicate", []string{
			`regions/duplicate.yaml:3: ca.url: given twice (first on line 2): keep one`,
		}},
		{"patterns", []string{
			"regions/patterns.yaml:2: user_id.pattern: the regular expression \"^[a-z{2}$\" does not compile: missing closing ]: `[a-z{2}$` (the syntax is RE2: https://github.com/google/re2/wiki/Syntax)",
			"regions/patterns.yaml:4: otp_pin.pattern: the regular expression \"(unclosed\" does not compile: missing closing ): `(unclosed` (the syntax is RE2: https://github.com/google/re2/wiki/Syntax)",
		}},
		{"example_mismatch", []string{
			`regions/example_mismatch.yaml:3: user_id.example: the example "QQ111111_QWERTYUI" does not match user_id.pattern "^[a-z]{2}[0-9]{6}_[a-z]{8}$": fix one of them`,
		}},
		{"ranges", []string{
			`regions/ranges.yaml:1: language: "de" is not a language the procedures speak: use kk, ru or en`,
			`regions/ranges.yaml:3: token.wait: must be longer than 0s, e.g. 60s`,
			`regions/ranges.yaml:4: token.default_user_pin: is empty: write the user password a blank token is delivered with, e.g. "12345678"`,
			`regions/ranges.yaml:5: token.label: "A token name that is much longer than thirty-two bytes" is 54 bytes long; a token name holds at most 32 (a PKCS#11 limit)`,
			`regions/ranges.yaml:7: otp_pin.length: must be at least 1 (the OTP card's PIN has 11 characters)`,
			`regions/ranges.yaml:9: password.min_length: password.min_length (20) is greater than password.max_length (16): no password could be chosen`,
			`regions/ranges.yaml:10: password.max_sequence: must be 0 (no limit) or more, e.g. 2 to refuse 123 and abc`,
			`regions/ranges.yaml:12: ca.protocol: "scep" is not a protocol tokenrun speaks: use est (RFC 7030)`,
			`regions/ranges.yaml:13: ca.url: "http://127.0.0.1:8443": use https: EST runs over TLS, a development CA on 127.0.0.1 included (give its root certificate with ca.roots)`,
			`regions/ranges.yaml:14: ca.timeout: must be longer than 0s, e.g. 5m`,
		}},
		{"validity", []string{
			`regions/validity.yaml:4: validity[1].label.de: "de" is not a language: use kk, ru or en`,
			`regions/validity.yaml:5: validity[2].id: "1y" is already the id of validity[1]: ids must be unique`,
			`regions/validity.yaml:6: validity[2].years: must be at least 1`,
			`regions/validity.yaml:7: validity[3].id: "one year" cannot be an EST label, which ca.label_from_validity makes it: use letters, digits, '-', '.', '_' and '~'`,
			`regions/validity.yaml:9: validity[3].label.ru: is empty: write what the client reads, or remove the line to fall back to en`,
			`regions/validity.yaml:10: validity[4].id: is empty: give the registration type an id such as 1y (answers files name it)`,
		}},
		{"validity_empty", []string{
			`regions/validity_empty.yaml:1: validity: is empty: list at least one registration type, e.g. - {id: 1y, years: 1}`,
		}},
		{"key_rsa", []string{
			`regions/key_rsa.yaml:3: key.bits: RSA keys are 2048, 3072 or 4096 bits, not 1024: set key.bits`,
			`regions/key_rsa.yaml:4: key.curve: goes with key type ec, not rsa: remove it`,
		}},
		// The key section is replaced whole, so default.yaml's bits neither satisfies nor
		// upsets an ec key.
		{"key_ec", []string{
			`regions/key_ec.yaml:3: key.type: EC keys use curve P-256 or P-384, not "": set key.curve`,
		}},
		{"key_unknown", []string{
			`regions/key_unknown.yaml:2: key.type: "gost" is not a key type: use rsa, ec, ed25519 or vendor`,
		}},
		{"key_vendor", []string{
			`regions/key_vendor.yaml:2: key.type: a vendor key needs key.mechanism: the number of the vendor's key-pair generation mechanism, from the token vendor's documentation`,
			`regions/key_vendor.yaml:4: key.public_template[1]: needs value: write {type: CKA_ number, value: true|false|number|"hex"}`,
			`regions/key_vendor.yaml:6: key.private_template[1]: needs type: write {type: CKA_ number, value: true|false|number|"hex"}`,
		}},
		{"key_vendor_values", []string{
			`regions/key_vendor_values.yaml:5: key.public_template[1].value: a text value must be hex-encoded bytes such as "06082a", got "not hex"`,
			`regions/key_vendor_values.yaml:6: key.public_template[2].value: expected a number from 0 to 2^53, got "9007199254740993"`,
			`regions/key_vendor_values.yaml:7: key.public_template[3].type: expected a number from 0 to 2^53 (hex like 0x80000001 is fine), got "-1"`,
		}},
		{"subject", []string{
			`regions/subject.yaml:1: subject: C must be a two-letter country code such as KZ, not "Kazakhstan"`,
		}},
		{"url", []string{
			`regions/url.yaml:2: ca.url: the URL must not carry a user name or password: the client authenticates with the initial key`,
		}},
		{"roots_missing", []string{
			`regions/roots_missing.yaml:2: ca.roots: cannot read the root certificates: open regions/missing.pem: file does not exist: give a PEM file (relative paths are relative to the region file's folder)`,
		}},
		{"roots_outside", []string{
			`regions/roots_outside.yaml:2: ca.roots: "../../roots.pem" is outside the scripts tree: put the file beside the region file, or give an absolute path`,
		}},
		{"roots_not_pem", []string{
			`regions/roots_not_pem.yaml:2: ca.roots: regions/not-pem.txt holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
		}},
		{"origins", []string{
			`regions/origins.yaml:4: agent.origins[2]: "http://ib.bank.kz": a page served over plain http can be anybody's on the network; give its https origin (http only for localhost and 127.0.0.1)`,
			`regions/origins.yaml:5: agent.origins[3]: "https://ib.bank.kz/login" is not an origin: only scheme://host[:port], with no user, path, query or fragment (a browser sends no more)`,
			`regions/origins.yaml:6: agent.origins[4]: "ib.bank.kz" is not an origin: write scheme://host[:port], e.g. https://ib.bank.kz`,
			`regions/origins.yaml:7: agent.consent_timeout: must be longer than 0s, e.g. 2m`,
			`regions/origins.yaml:8: agent.requests_per_minute: must be at least 1, e.g. 20`,
		}},
		{"messages", []string{
			`regions/messages.yaml:6: messages.de: "de" is not a language: use kk, ru or en`,
			`regions/messages.yaml:5: messages.ru.cancelled: is empty: write the text, or remove the line to keep the catalog's`,
			`regions/messages.yaml:3: messages.ru.enroll_dnoe: unknown message key "enroll_dnoe": did you mean "enroll_done"? (the keys are those of messages/en.yaml)`,
			`regions/messages.yaml:4: messages.ru.enroll_done: {user} is not filled in by the procedure for this message: use {token_name}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			r, err := Load(fsys, tt.region)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Equal(t, tt.want, errorLines(err))
			var e *Error
			require.ErrorAs(t, err, &e, "each problem is an *Error callers can inspect")
			assert.Equal(t, "regions/"+tt.region+".yaml", e.File)
		})
	}
}

// TestFixturesCovered keeps the table above honest: every fixture is loaded by a test.
func TestFixturesCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/regions/*.yaml")
	require.NoError(t, err)
	ok := []string{"almaty", "key_vendor_ok"} // loaded by TestLoadOverlay and TestMapVendorKey
	fsys := fixtureTree(t)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		_, err := Load(fsys, name)
		if slices.Contains(ok, name) {
			assert.NoError(t, err, name)
		} else {
			assert.Error(t, err, "%s is a fixture for an error but loads", name)
		}
	}
}

func TestLoadOverlay(t *testing.T) {
	fsys := fixtureTree(t)
	r, err := Load(fsys, "almaty")
	require.NoError(t, err)

	assert.Equal(t, "regions/almaty.yaml", r.Source)
	assert.Equal(t, "kk", r.Language, "set by almaty.yaml")
	assert.Equal(t, "https://ca.almaty.example.kz/.well-known/est", r.CA.URL)
	assert.Equal(t, 5*time.Minute, r.CA.Timeout, "kept from default.yaml: sections merge key by key")
	assert.Equal(t, "12345678", r.Token.DefaultUserPIN, "kept from default.yaml")
	require.Len(t, r.Validity, 1, "a list replaces default.yaml's whole")
	assert.Equal(t, "2y", r.Validity[0].ID)
	assert.Equal(t, map[string]string{"C": "KZ", "O": "Almaty branch"}, r.Subject)
	assert.Equal(t, fsys["regions/almaty-roots.pem"].Data, r.CA.RootsPEM, "ca.roots is relative to the region file's folder")

	// A mistake inherited from default.yaml is reported there, not in the region's file.
	assert.Equal(t, "regions/default.yaml", r.pos["token.wait"].file)
	assert.Equal(t, "regions/almaty.yaml", r.pos["ca.url"].file)
}

func TestLoadUnknownRegion(t *testing.T) {
	_, err := Load(fixtureTree(t), "astana")
	require.ErrorIs(t, err, ErrUnknownRegion)
	assert.Contains(t, err.Error(), `unknown region "astana": there is no regions/astana.yaml in the scripts tree (regions: almaty, default, duplicate,`)

	for _, name := range []string{"../default", "Default", "", "a/b", "default.yaml"} {
		_, err := Load(shipped, name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "a region name is lower-case letters, digits, '-' and '_'")
	}
}

func TestLoadNeedsCatalog(t *testing.T) {
	fsys := tree(t, nil)
	delete(fsys, "messages/en.yaml")
	_, err := Load(fsys, "default")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "region default: the en message catalog: message catalog: open messages/en.yaml: file does not exist")
}

func TestLoadEmptyRegionFile(t *testing.T) {
	fsys := tree(t, map[string][]byte{"regions/same.yaml": []byte("# nothing differs\n")})
	r, err := Load(fsys, "same")
	require.NoError(t, err)
	d, err := Load(fsys, "default")
	require.NoError(t, err)
	d.Name = "same"
	assert.Equal(t, d.Map(), r.Map())
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "regions/a.yaml", Line: 3, Key: "ca.url", Msg: "bad"}, "regions/a.yaml:3: ca.url: bad"},
		{Error{File: "regions/a.yaml", Key: "validity", Msg: "is empty"}, "regions/a.yaml: validity: is empty"},
		{Error{File: "regions/a.yaml", Msg: "unreadable"}, "regions/a.yaml: unreadable"},
		{Error{File: "--set", Key: "ca.url", Msg: "bad"}, "--set ca.url: bad"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
	es := Errors{&tests[0].err, &tests[3].err}
	assert.Equal(t, "regions/a.yaml:3: ca.url: bad\n--set ca.url: bad", es.Error())
	var e *Error
	require.True(t, errors.As(error(es), &e))
	assert.Equal(t, "ca.url", e.Key)
}

func TestSandboxMemory(t *testing.T) {
	r, err := Load(shipped, "default")
	require.NoError(t, err)
	assert.Equal(t, 128, r.Sandbox.MemoryMiB)
	assert.NotContains(t, r.Map(), "sandbox", "the host's setting, not the script's")
	require.NoError(t, r.Set("sandbox.memory_mib=512"))
	assert.Equal(t, 512, r.Sandbox.MemoryMiB)
	for _, v := range []string{"2048", "-1"} {
		err := r.Set("sandbox.memory_mib=" + v)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "sandbox.memory_mib: "+v+" is out of range: give 1 to 1024 MiB")
	}
}

// Origins are compared as browsers send them: normalised, and the shipped default allows none.
func TestAgentOrigins(t *testing.T) {
	r := loadDefault(t)
	assert.Empty(t, r.Agent.Origins, "the shipped region lets no page connect")
	assert.NotContains(t, r.Map(), "agent", "the agent's policy is the host's")
	require.NoError(t, r.Set("agent.origins=[https://IB.Bank.kz:443, 'http://localhost:8080', 'https://[::1]:9443']"))
	for i, want := range []string{"https://ib.bank.kz", "http://localhost:8080", "https://[::1]:9443"} {
		got, err := NormalizeOrigin(r.Agent.Origins[i])
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"", "null", "https://", "ftp://ib.bank.kz", "https://user@ib.bank.kz", "https://ib.bank.kz?x=1", "http://10.0.0.5"} {
		_, err := NormalizeOrigin(bad)
		assert.Error(t, err, "%q", bad)
	}
}
