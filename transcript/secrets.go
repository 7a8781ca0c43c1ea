package transcript

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// minSecretLen is the shortest value searched for: PKCS#11 PINs have at least four
// characters, and shorter strings ("1", "yes") would match ordinary text.
const minSecretLen = 4

// ErrSecretLeak is wrapped by every LeakError.
var ErrSecretLeak = errors.New("a secret would be written to the transcript")

// LeakError says where a secret was found, never what it is.
type LeakError struct {
	Source string // where the secret came from: `the answer to prompt "otp_pin"`, ...
	Line   int    // line of the transcript, 1 is the header
	Record string // the call ("ui.say"), "header" or "footer"
}

func (e *LeakError) Error() string {
	return fmt.Sprintf("transcript not written: %s appears in line %d (%s); the script shows or passes on a secret where it is not declared secret: fix the script (or declare the binding's parameter secret)",
		e.Source, e.Line, e.Record)
}

func (e *LeakError) Unwrap() error { return ErrSecretLeak }

// Secrets are the secret values of one run, each with where it came from. Fill it with
// Frontend and Provider, and Add for known ones (a region's default PINs); Check searches a
// transcript for all of them.
type Secrets struct {
	mu   sync.Mutex
	vals map[string]string // value -> source
}

// NewSecrets returns an empty set.
func NewSecrets() *Secrets { return &Secrets{vals: map[string]string{}} }

// Add records a secret value; values shorter than four characters are ignored.
func (s *Secrets) Add(value, source string) {
	for _, v := range []string{value, strings.TrimSpace(value)} {
		if len(v) < minSecretLen {
			continue
		}
		s.mu.Lock()
		if _, ok := s.vals[v]; !ok {
			s.vals[v] = source
		}
		s.mu.Unlock()
	}
}

// Len is how many distinct values are held.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.vals)
}

// Check searches every string of a transcript (values and keys) for every secret. Numbers
// are not searched: a four-digit PIN would match a duration. Neither are PEM blocks, binary
// values ($bytes), timestamps and digests (see isDigest), which are not typed and would match
// a short PIN by chance:
// certificates and public keys are kept as they are. The first match, by line, is returned
// as a *LeakError.
func (s *Secrets) Check(data []byte) error { return s.CheckReader(bytes.NewReader(data)) }

// CheckReader is Check reading the transcript from r, a line at a time: memory stays within
// a line (MaxLine) whatever the transcript's length.
func (s *Secrets) CheckReader(r io.Reader) error {
	s.mu.Lock()
	type needle struct{ text, source string }
	var needles []needle
	for v, src := range s.vals {
		needles = append(needles, needle{v, src})
	}
	s.mu.Unlock()
	// Longest first: a PIN inside a longer password names the password.
	sort.Slice(needles, func(i, j int) bool { return len(needles[i].text) > len(needles[j].text) })
	lr := NewLineReader(r)
	for {
		line, n, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w, so it cannot be checked for secrets", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("transcript line %d is not JSON, so it cannot be checked for secrets: %w", n, err)
		}
		found := ""
		walkStrings(v, func(str string) bool {
			digest := isDigest(str)
			for _, nd := range needles {
				if digest && str != nd.text {
					continue // a short PIN inside a hash or key id is chance, not a leak
				}
				if strings.Contains(str, nd.text) {
					found = nd.source
					return false
				}
			}
			return true
		})
		if found != "" {
			return &LeakError{Source: found, Line: n, Record: recordName(line)}
		}
	}
}

// walkStrings calls f with every string key and value of v until f returns false.
func walkStrings(v any, f func(string) bool) bool {
	switch v := v.(type) {
	case string:
		if strings.HasPrefix(v, "-----BEGIN ") || isTime(v) {
			return true
		}
		return f(v)
	case []any:
		for _, x := range v {
			if !walkStrings(x, f) {
				return false
			}
		}
	case map[string]any:
		if _, ok := v["$bytes"]; ok && len(v) == 1 {
			return true
		}
		for k, x := range v {
			if !f(k) || !walkStrings(x, f) {
				return false
			}
		}
	}
	return true
}

// isDigest reports a hash, key id or serial: 32 or more hex digits and nothing else. Such
// strings are computed, never typed, and a four-letter PIN such as "aaaa" or "1234" turns up
// in one by chance (the scripts digest held "aaaa"); only the whole string is compared.
func isDigest(s string) bool {
	if len(s) < 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func recordName(line []byte) string {
	var r struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	}
	if json.Unmarshal(line, &r) != nil {
		return "unreadable line"
	}
	if r.Kind == KindCall {
		return "call " + r.Name
	}
	return r.Kind
}

// Frontend wraps fe so that every answer given to a secret prompt, including answers the
// prompt's validation refused, is added to s.
func (s *Secrets) Frontend(fe ui.Frontend) ui.Frontend { return &secretFrontend{Frontend: fe, s: s} }

type secretFrontend struct {
	ui.Frontend
	s *Secrets
}

// Unwrap is the front-end f wraps.
func (f *secretFrontend) Unwrap() ui.Frontend { return f.Frontend }

func (f *secretFrontend) Ask(ctx context.Context, p ui.Prompt) (string, error) {
	if p.Kind != ui.Secret {
		return f.Frontend.Ask(ctx, p)
	}
	source := fmt.Sprintf("the answer to secret prompt %q", p.ID)
	validate := p.Validate
	p.Validate = func(v string) error {
		f.s.Add(v, source)
		if validate == nil {
			return nil
		}
		return validate(v)
	}
	v, err := f.Frontend.Ask(ctx, p)
	f.s.Add(v, source)
	return v, err
}

// Provider wraps p so that every PIN passed to a token it opens (login, set_pin, init_pin,
// format) is added to s: a PIN a script computed or read from its configuration is as
// secret as one typed.
func (s *Secrets) Provider(p token.Provider) token.Provider {
	return &secretProvider{Provider: p, s: s}
}

type secretProvider struct {
	token.Provider
	s *Secrets
}

func (p *secretProvider) Open(ctx context.Context, info token.Info) (token.Token, error) {
	t, err := p.Provider.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &secretToken{Token: t, s: p.s}, nil
}

type secretToken struct {
	token.Token
	s *Secrets
}

func (t *secretToken) Login(ctx context.Context, role token.Role, pin string) error {
	t.s.Add(pin, "a PIN passed to login")
	return t.Token.Login(ctx, role, pin)
}

func (t *secretToken) SetPIN(ctx context.Context, oldPIN, newPIN string) error {
	t.s.Add(oldPIN, "a PIN passed to set_pin")
	t.s.Add(newPIN, "a PIN passed to set_pin")
	return t.Token.SetPIN(ctx, oldPIN, newPIN)
}

func (t *secretToken) InitPIN(ctx context.Context, newPIN string) error {
	t.s.Add(newPIN, "a PIN passed to init_pin")
	return t.Token.InitPIN(ctx, newPIN)
}

func (t *secretToken) Format(ctx context.Context, soPIN, label string) error {
	t.s.Add(soPIN, "a PIN passed to format")
	return t.Token.Format(ctx, soPIN, label)
}

// FormatWithUserPIN collects both PINs and keeps the one-step format of the token below.
func (t *secretToken) FormatWithUserPIN(ctx context.Context, soPIN, label, userPIN string) error {
	t.s.Add(soPIN, "a PIN passed to format")
	t.s.Add(userPIN, "a PIN passed to format")
	return token.FormatWithUserPIN(ctx, t.Token, soPIN, label, userPIN)
}

var _ token.UserPINFormatter = (*secretToken)(nil)
