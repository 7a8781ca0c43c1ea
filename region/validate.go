package region

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tokenrun/tokenrun/ca"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// languages are the languages the procedures speak; en is the reference catalog.
var languages = []string{"kk", "ru", "en"}

// Languages lists the languages a region and --lang may name.
func Languages() []string { return slices.Clone(languages) }

// keyFields are the key's fields that depend on its type, and the type each goes with.
var keyFields = []struct{ name, owner string }{
	{"bits", "rsa"}, {"curve", "ec"},
	{"mechanism", "vendor"}, {"public_template", "vendor"}, {"private_template", "vendor"},
}

// validate checks what the types cannot: values in range, patterns that agree with their
// examples, keys that need each other, files that must exist.
func (r *Region) validate() Errors {
	var errs Errors
	add := func(key, format string, args ...any) {
		errs = append(errs, r.errAt(key, format, args...))
	}

	if !slices.Contains(languages, r.Language) {
		add("language", "%q is not a language the procedures speak: use kk, ru or en", r.Language)
	}

	t := r.Token
	if t.Wait <= 0 {
		add("token.wait", "must be longer than 0s, e.g. 60s")
	}
	if t.DefaultUserPIN == "" {
		add("token.default_user_pin", "is empty: write the user password a blank token is delivered with, e.g. \"12345678\"")
	}
	if t.DefaultSOPIN == "" {
		add("token.default_so_pin", "is empty: write the administrator password a blank token is delivered with, e.g. \"87654321\"")
	}
	if len(t.Label) > 32 {
		add("token.label", "%q is %d bytes long; a token name holds at most 32 (a PKCS#11 limit)", t.Label, len(t.Label))
	}

	if m := r.Sandbox.MemoryMiB; m < 0 || m > MaxSandboxMemoryMiB {
		add("sandbox.memory_mib", "%d is out of range: give 1 to %d MiB, or 0 for tokenrun's default", m, MaxSandboxMemoryMiB)
	}

	errs = append(errs, r.validateAgent()...)

	u := r.UserID
	switch {
	case u.Pattern.src == "":
		add("user_id.pattern", "is empty: write the user-ID format, e.g. '^[a-z]{2}[0-9]{6}_[a-z]{8}$'")
	case u.Example == "":
		add("user_id.example", "is empty: write an ID in the format, to show the client when theirs does not match")
	case !u.Pattern.MatchString(u.Example):
		add(r.latest("user_id.example", "user_id.pattern"), "the example %q does not match user_id.pattern %q: fix one of them", u.Example, u.Pattern.src)
	}

	o := r.OTPPIN
	if o.Length < 1 {
		add("otp_pin.length", "must be at least 1 (the OTP card's PIN has 11 characters)")
	}
	if o.Pattern.src == "" {
		add("otp_pin.pattern", "is empty: write which characters the PIN holds, e.g. '^[A-Z0-9]+$'")
	}

	p := r.Password
	if p.MinLength < 1 {
		add("password.min_length", "must be at least 1")
	}
	if p.MaxLength < p.MinLength {
		add(r.latest("password.min_length", "password.max_length"), "password.min_length (%d) is greater than password.max_length (%d): no password could be chosen", p.MinLength, p.MaxLength)
	}
	if p.Pattern.src == "" {
		add("password.pattern", "is empty: write which characters a password may hold, e.g. '^[A-Za-z0-9]+$' ('.*' allows any)")
	}
	if p.MaxSequence < 0 {
		add("password.max_sequence", "must be 0 (no limit) or more, e.g. 2 to refuse 123 and abc")
	}

	errs = append(errs, r.validateValidity()...)
	errs = append(errs, r.validateKey()...)

	if _, err := ca.ParseSubject(r.Subject); err != nil {
		add("subject", "%s", strings.TrimPrefix(err.Error(), "subject: "))
	}

	c := r.CA
	if c.Protocol != "est" {
		add("ca.protocol", "%q is not a protocol tokenrun speaks: use est (RFC 7030)", c.Protocol)
	}
	if msg := checkURL(c.URL); msg != "" {
		add("ca.url", "%s", msg)
	}
	if c.Timeout <= 0 {
		add("ca.timeout", "must be longer than 0s, e.g. 5m")
	}
	if msg := r.readRoots(); msg != "" {
		add("ca.roots", "%s", msg)
	}

	errs = append(errs, r.validateMessages()...)
	return errs
}

func (r *Region) validateValidity() Errors {
	var errs Errors
	add := func(key, format string, args ...any) {
		errs = append(errs, r.errAt(key, format, args...))
	}
	if len(r.Validity) == 0 {
		add("validity", "is empty: list at least one registration type, e.g. - {id: 1y, years: 1}")
	}
	ids := map[string]string{}
	for i, v := range r.Validity {
		k := fmt.Sprintf("validity[%d]", i+1)
		switch first, dup := ids[v.ID]; {
		case v.ID == "":
			add(k+".id", "is empty: give the registration type an id such as 1y (answers files name it)")
		case dup:
			add(k+".id", "%q is already the id of %s: ids must be unique", v.ID, first)
		case r.CA.LabelFromValidity && !validLabel(v.ID):
			add(k+".id", "%q cannot be an EST label, which ca.label_from_validity makes it: use letters, digits, '-', '.', '_' and '~'", v.ID)
		}
		ids[v.ID] = k
		if v.Years < 1 {
			add(k+".years", "must be at least 1")
		}
		for _, lang := range sortedKeys(v.Label) {
			switch {
			case !slices.Contains(languages, lang):
				add(k+".label."+lang, "%q is not a language: use kk, ru or en", lang)
			case strings.TrimSpace(v.Label[lang]) == "":
				add(k+".label."+lang, "is empty: write what the client reads, or remove the line to fall back to en")
			}
		}
	}
	return errs
}

// validLabel is RFC 7030's label: RFC 3986 unreserved characters, so it is one path segment.
func validLabel(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return s != ""
}

func (r *Region) validateKey() Errors {
	var errs Errors
	add := func(key, format string, args ...any) {
		errs = append(errs, r.errAt(key, format, args...))
	}
	k := r.Key
	switch k.Type {
	case "rsa":
		if !slices.Contains([]int{2048, 3072, 4096}, k.Bits) {
			add(r.keyBlame("bits"), "RSA keys are 2048, 3072 or 4096 bits, not %d: set key.bits", k.Bits)
		}
	case "ec":
		if !slices.Contains([]string{"P-256", "P-384"}, k.Curve) {
			add(r.keyBlame("curve"), "EC keys use curve P-256 or P-384, not %q: set key.curve", k.Curve)
		}
	case "ed25519":
	case "vendor":
		if !r.given("key.mechanism") {
			add("key.type", "a vendor key needs key.mechanism: the number of the vendor's key-pair generation mechanism, from the token vendor's documentation")
		}
		for _, tpl := range []struct {
			name  string
			attrs []Attribute
		}{{"public_template", k.PublicTemplate}, {"private_template", k.PrivateTemplate}} {
			for i := range tpl.attrs {
				item := fmt.Sprintf("key.%s[%d]", tpl.name, i+1)
				for _, part := range []string{"type", "value"} {
					if !r.given(item + "." + part) {
						add(item, "needs %s: write {type: CKA_ number, value: true|false|number|\"hex\"}", part)
					}
				}
			}
		}
	default:
		add("key.type", "%q is not a key type: use rsa, ec, ed25519 or vendor", k.Type)
		return errs
	}
	// A field for another type written next to this one is a mistake (the key would not be
	// what the file says). One inherited from another file is not: a region that writes
	// key.type=ec with --set does not have to unset default.yaml's bits.
	for _, f := range keyFields {
		key := "key." + f.name
		if f.owner != k.Type && r.given(key) && r.pos[key].file == r.pos["key.type"].file {
			add(key, "goes with key type %s, not %s: remove it", f.owner, k.Type)
		}
	}
	return errs
}

// keyBlame is where a missing or wrong type-specific key field is reported: the field if it
// was written, else the type that needs it.
func (r *Region) keyBlame(f string) string {
	if r.given("key." + f) {
		return "key." + f
	}
	return "key.type"
}

// checkURL applies the EST client's rules to ca.url, so a bad URL is reported with its line
// when the region is loaded rather than halfway through an enrollment.
func checkURL(raw string) string {
	if raw == "" {
		return "is empty: write the certificate authority's address, https://host:port"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q is not a URL: %v", raw, err)
	}
	switch {
	case u.Scheme == "http":
		return fmt.Sprintf("%q: use https: EST runs over TLS, a development CA on 127.0.0.1 included (give its root certificate with ca.roots)", raw)
	case u.Scheme != "https":
		return fmt.Sprintf("%q: write https://host:port", raw)
	case u.Hostname() == "":
		return fmt.Sprintf("%q names no host", raw)
	case u.User != nil:
		return "the URL must not carry a user name or password: the client authenticates with the initial key"
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q: remove the query or fragment", raw)
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case p == "" || p == "/.well-known/est":
	case strings.HasPrefix(p, "/.well-known/est/") && validLabel(strings.TrimPrefix(p, "/.well-known/est/")):
	default:
		return fmt.Sprintf("%q: the path must be empty, /.well-known/est or /.well-known/est/LABEL", raw)
	}
	return ""
}

// readRoots reads ca.roots into CA.RootsPEM. A relative path written in a region file is
// relative to that file's folder in the scripts tree, so the tree can move (or be embedded)
// with its roots beside it; an absolute path, or one given with --set (made absolute by Set),
// is a file on disk.
func (r *Region) readRoots() string {
	r.CA.RootsPEM = nil
	if r.CA.Roots == "" {
		return "" // not configured: enrollment says so before it contacts the CA
	}
	var (
		data  []byte
		err   error
		where = r.pos["ca.roots"]
		name  = r.CA.Roots
	)
	if where.file == setFile || filepath.IsAbs(name) {
		data, err = readfile.Read(name, readfile.Roots)
	} else {
		name = path.Join(path.Dir(where.file), filepath.ToSlash(name))
		if !fs.ValidPath(name) {
			return fmt.Sprintf("%q is outside the scripts tree: put the file beside the region file, or give an absolute path", r.CA.Roots)
		}
		data, err = readfile.ReadFS(r.fsys, name, readfile.Roots)
	}
	if err != nil {
		return fmt.Sprintf("cannot read the root certificates: %v: give a PEM file (relative paths are relative to the region file's folder)", err)
	}
	if msg := checkRootsPEM(name, data); msg != "" {
		return msg
	}
	r.CA.RootsPEM = data
	return ""
}

// SetRootsPEM gives the region these roots, as if read from ca.roots, without reading any
// file: a replay takes them from its transcript.
func (r *Region) SetRootsPEM(name string, data []byte) error {
	if msg := checkRootsPEM(name, data); msg != "" {
		return &Error{File: name, Key: "ca.roots", Msg: msg}
	}
	r.CA.RootsPEM = data
	return nil
}

// checkRootsPEM says what is wrong with data as the roots file name, or "".
func checkRootsPEM(name string, data []byte) string {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Sprintf("%s: certificate %d cannot be parsed: %v", name, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Sprintf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", name)
	}
	return ""
}

// validateMessages checks the region's catalog overrides against the en catalog: a misspelt
// key would otherwise change nothing, silently.
func (r *Region) validateMessages() Errors {
	var errs Errors
	for _, lang := range sortedKeys(r.Messages) {
		if !slices.Contains(languages, lang) {
			errs = append(errs, r.errUnder("messages."+lang, "%q is not a language: use kk, ru or en", lang))
			continue
		}
		for _, key := range sortedKeys(r.Messages[lang]) {
			if msg := checkOverride(r.en, key, r.Messages[lang][key]); msg != "" {
				errs = append(errs, r.errAt("messages."+lang+"."+key, "%s", msg))
			}
		}
	}
	return errs
}

// checkOverride says what is wrong with replacing message key by text, or "".
func checkOverride(en map[string]string, key, text string) string {
	ref, ok := en[key]
	if !ok {
		msg := fmt.Sprintf("unknown message key %q", key)
		if s := nearest(key, sortedKeys(en)); s != "" {
			msg += fmt.Sprintf(": did you mean %q?", s)
		}
		return msg + " (the keys are those of messages/en.yaml)"
	}
	if strings.TrimSpace(text) == "" {
		return "is empty: write the text, or remove the line to keep the catalog's"
	}
	want := placeholders(ref)
	for _, p := range placeholders(text) {
		if !slices.Contains(want, p) {
			return fmt.Sprintf("{%s} is not filled in by the procedure for this message: use %s", p, braces(want))
		}
	}
	return ""
}

// validateAgent checks the signing agent's policy: every origin is one a browser could send.
func (r *Region) validateAgent() Errors {
	var errs Errors
	a := r.Agent
	for i, o := range a.Origins {
		if _, err := NormalizeOrigin(o); err != nil {
			errs = append(errs, r.errAt(fmt.Sprintf("agent.origins[%d]", i+1), "%s", err.Error()))
		}
	}
	if a.ConsentTimeout <= 0 {
		errs = append(errs, r.errAt("agent.consent_timeout", "must be longer than 0s, e.g. 2m"))
	}
	if a.RequestsPerMinute < 1 {
		errs = append(errs, r.errAt("agent.requests_per_minute", "must be at least 1, e.g. 20"))
	}
	return errs
}

// NormalizeOrigin is origin as a browser sends it in the Origin header (RFC 6454):
// scheme://host[:port] in lower case, without the scheme's default port. It accepts https
// origins, and http ones only on a loopback host (a test page served on this machine): a
// bank's page is served over TLS, and a plain-http origin elsewhere is anybody on the network.
func NormalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(origin))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an origin: write scheme://host[:port], e.g. https://ib.bank.kz", origin)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin: only scheme://host[:port], with no user, path, query or fragment (a browser sends no more)", origin)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	switch {
	case scheme == "https":
	case scheme == "http" && (host == "localhost" || host == "127.0.0.1" || host == "::1"):
	case scheme == "http":
		return "", fmt.Errorf("%q: a page served over plain http can be anybody's on the network; give its https origin (http only for localhost and 127.0.0.1)", origin)
	default:
		return "", fmt.Errorf("%q: the scheme must be https (or http for localhost)", origin)
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}
