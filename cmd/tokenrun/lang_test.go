package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/scripts/golden"
)

// What may be Latin on a kk or ru screen: what is not a word of a language but a name, a code
// or something the person typed or gave.
var (
	latinRE    = regexp.MustCompile(`[A-Za-z]`)
	cyrillicRE = regexp.MustCompile(`\p{Cyrillic}`)
	allowedRE  = []*regexp.Regexp{
		regexp.MustCompile(`^[a-z][a-z0-9+.-]*://\S+$`),                           // URLs
		regexp.MustCompile(`^pkcs11:\S*$`),                                        // token URIs
		regexp.MustCompile(`[/\\]|\.(pfx|p12|p7s|pem|lua|yaml|txt|xml|pdf|der)$`), // file names and paths
		regexp.MustCompile(`^[A-Z0-9_]+$`),                                        // codes: PIN, OTP, KAZTOKEN, CA_UNAVAILABLE, USB, ID
		regexp.MustCompile(`^[0-9a-fA-F]*[0-9][0-9a-fA-F]*$`),                     // serials, key ids
		regexp.MustCompile(`^[A-Za-z]$`),                                          // one letter: "1 and I, 0 and O"
		regexp.MustCompile(`^--[a-z][a-z-]*$`),                                    // flags
		regexp.MustCompile(`=`),                                                   // subjects: CN=qq111111_qwertyui,C=KZ
		regexp.MustCompile(`^[a-z]+\.[a-z_.]+$`),                                  // configuration keys: ca.roots
		regexp.MustCompile(`^[a-z]{2}\d{6}_[a-z]+$`),                              // user IDs (the region's pattern)
		regexp.MustCompile(`^<[A-Z_]+>$`),                                         // golden placeholders
	}
	allowedWords = []string{
		"tokenrun", "Ctrl-C", "Ak", "Kamal", "e-Security", "abc", // a product's name, a key, an example of a sequence
		"enroll", "change-pin", "unblock", "format", "tokens", "sign", "sign-request", // command names, after tokenrun
		"SHA-256", // the digest's name, as a page and a verifier name it
	}
)

// latinWords returns the words of text that are Latin script and not allowed; typed holds
// what the person typed or gave (answers), which may be anything.
func latinWords(text string, typed []string) []string {
	var bad []string
	var words []string
	for _, w := range strings.Fields(text) {
		if cyrillicRE.MatchString(w) {
			words = append(words, strings.Split(w, "-")...) // USB-флешка, PIN-код: each part
		} else {
			words = append(words, w)
		}
	}
	for _, w := range words {
		w = strings.Trim(w, ".,;:!?()[]«»\"'…“”—–")
		if w == "" || !latinRE.MatchString(w) || slices.Contains(allowedWords, w) || slices.Contains(typed, w) {
			continue
		}
		ok := false
		for _, re := range allowedRE {
			ok = ok || re.MatchString(w)
		}
		if !ok {
			bad = append(bad, w)
		}
	}
	return bad
}

// screenText is what the person reads of a run: every text, label, help, choice and refusal
// of the --ui json events, and stderr.
func screenText(stdout, stderr string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Label, Help, Text, Message, Note string
			Choices                          []struct{ Label string }
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		lines = append(lines, ev.Label, ev.Help, ev.Text, ev.Message, ev.Note)
		for _, c := range ev.Choices {
			lines = append(lines, c.Label)
		}
	}
	return append(lines, strings.Split(stderr, "\n")...)
}

func answerWords(ans map[string]any) []string {
	var out []string
	for _, v := range ans {
		for _, w := range strings.Fields(fmt.Sprint(v)) {
			out = append(out, w)
		}
	}
	return out
}

// TestGoldensSpeakTheRunLanguage runs every procedure's golden cases in kk and ru and fails
// on any Latin-script word on the person's screen that is not a name, a code, a path or what
// the person typed: English chrome, a Go error chain, a developer's word.
func TestGoldensSpeakTheRunLanguage(t *testing.T) {
	cases, err := golden.LoadCases(os.DirFS(goldenTree))
	require.NoError(t, err)
	for _, lang := range []string{"kk", "ru"} {
		for _, c := range cases {
			be := golden.BackendSoft
			if c.Skip(be) != "" {
				be = golden.BackendSoftHSM2
			}
			if c.Skip(be) != "" {
				continue
			}
			t.Run(lang+"/"+c.Path(), func(t *testing.T) {
				c := c
				c.Setup.Lang = lang
				ans, err := c.Answers()
				require.NoError(t, err)
				typed := answerWords(ans)
				var screen []string
				_, err = golden.Run(context.Background(), c, golden.Options{
					Backend: be, TempDir: t.TempDir(), Plug: softHSMBackend(t), Main: runMain,
					Screen: func(stdout, stderr string) { screen = screenText(stdout, stderr) }})
				require.NoError(t, err)
				require.NotEmpty(t, screen)
				for _, line := range screen {
					if bad := latinWords(line, typed); len(bad) > 0 {
						t.Errorf("%s: Latin words %q in: %s", lang, bad, line)
					}
				}
			})
		}
	}
}

// TestSignSpeaksTheRunLanguage signs in kk and ru, with the PIN typed and then wrong, and
// checks what the person reads the same way.
func TestSignSpeaksTheRunLanguage(t *testing.T) {
	tmp := t.TempDir()
	defer golden.IsolateEnv(filepath.Join(tmp, "home"))()
	ca, err := golden.NewCA(tmp, runMain)
	require.NoError(t, err)
	ca.Start(devca.ServerOptions{})
	defer ca.Stop()
	b, err := golden.SoftBackend(tmp, runMain)
	require.NoError(t, err)
	require.NoError(t, golden.EnrollOnce(tmp, b, ca, runMain))
	doc := filepath.Join(tmp, "order.txt")
	require.NoError(t, os.WriteFile(doc, []byte("payment order 1\n"), 0o644))
	for _, lang := range []string{"kk", "ru"} {
		for _, tt := range []struct {
			name, stdin string
			code        int
		}{{"ok", "Kx7mQ9pz\n", runner.ExitOK}, {"wrong", "Wrong9pin\n", runner.ExitToken}} {
			t.Run(lang+"/"+tt.name, func(t *testing.T) {
				r := tokenrun(t, tt.stdin, "sign", "--soft", b.Dir, "--token", "pkcs11:token=KAZTOKEN;object=Main", "--lang", lang,
					"--force", "--out", filepath.Join(tmp, "order-"+lang+".p7s"), doc)
				assert.Equal(t, tt.code, r.code, r.err)
				assert.NotContains(t, r.err, "Password", "the prompt is in %s", lang)
				for _, line := range strings.Split(r.err, "\n") {
					if bad := latinWords(line, []string{"Main"}); len(bad) > 0 { // the profile's name, typed at enrollment
						t.Errorf("%s: Latin words %q in: %s", lang, bad, line)
					}
				}
			})
		}
	}
}

// TestTerminalSpeaksTheRunLanguage: at the terminal front-end (answers typed into a pipe) a
// wrong password, a refused answer and the run's end read in kk and ru, with no English chrome.
func TestTerminalSpeaksTheRunLanguage(t *testing.T) {
	for _, lang := range []string{"kk", "ru"} {
		t.Run(lang, func(t *testing.T) {
			t.Setenv("TOKENRUN_HOME", t.TempDir())
			dir := filepath.Join(t.TempDir(), "tok")
			for _, tt := range []struct {
				stdin string
				code  int
			}{
				{"11112222\nshort\nKx7mQ9pz\nKx7mQ9pz\n", runner.ExitToken}, // a refused new password, then a wrong current one
				{"12345678\nKx7mQ9pz\nKx7mQ9pz\n", runner.ExitOK},
			} {
				r := tokenrun(t, tt.stdin, "change-pin", "--soft", dir, "--lang", lang, "--set", "token.wait=1s")
				require.Equal(t, tt.code, r.code, r.err)
				for _, line := range strings.Split(r.err, "\n") {
					if bad := latinWords(line, []string{"short"}); len(bad) > 0 {
						t.Errorf("%s: Latin words %q in: %s", lang, bad, line)
					}
				}
				if tt.code != runner.ExitOK {
					assert.Equal(t, 1, strings.Count(r.err, region.Text(mustCatalog(t, lang), "user_pin_incorrect", nil)), "the error once:\n%s", r.err)
				}
			}
		})
	}
}

func mustCatalog(t *testing.T, lang string) map[string]string {
	m, err := region.Catalog(scripts.FS, lang, nil)
	require.NoError(t, err)
	return m
}
