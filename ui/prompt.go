package ui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what sort of answer a prompt wants.
type Kind int

// The prompt kinds. The zero value is Text so that a Prompt literal without a Kind is a
// plain question.
const (
	Text    Kind = iota // a line of text
	Secret              // a line of text that is never shown: PINs, passwords
	Choice              // one of Prompt.Choices; the answer is the Option's Value
	Confirm             // yes or no; the answer is "yes" or "no"
	// File is a path to a file on the person's machine (an initial-key container). It is
	// answered as Text everywhere; a GUI may offer a file chooser.
	File
)

// String returns the kind as the JSON protocol spells it.
func (k Kind) String() string {
	switch k {
	case Text:
		return "text"
	case Secret:
		return "secret"
	case Choice:
		return "choice"
	case Confirm:
		return "confirm"
	case File:
		return "file"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Option is one of the Choices of a Choice prompt. (Not named Choice: that is the Kind.)
type Option struct {
	Value string // what Ask returns and what answers files and JSON drivers send
	Label string // what the person reads
}

// Prompt is one question to the person.
type Prompt struct {
	// ID names the prompt in answers files, the JSON protocol and transcripts. It is a
	// contract with every bank's batch files: never rename one, add a new one instead.
	// Letters, digits, '_', '.' and '-' only, so that it is a plain YAML key everywhere.
	ID    string
	Kind  Kind
	Label string // the question; the ID is shown when empty
	Help  string // optional longer explanation, shown before the question

	// Default is taken when the answer is empty. For Choice it is one of the Values, for
	// Confirm "yes" or "no". A Secret prompt cannot have one: it would have to be shown.
	Default string

	Choices []Option // Choice prompts only

	// Validate checks an answer after the default is applied, the choice resolved and the
	// confirmation mapped to "yes"/"no". Nil accepts anything. Its error message is shown
	// to the person, who may answer again where the front-end allows it; it should not
	// quote the answer (a quoted secret is redacted: see the package doc). Wrap an error
	// with Abort to stop asking instead, for example when the validator itself failed.
	Validate func(string) error

	// HumanOnly prompts must be answered by a person at a terminal, never from an answers
	// file or a pipe: spending the last PIN try, formatting a token.
	HumanOnly bool

	// Optional text and secret prompts may be left out of an answers file or answered empty:
	// Ask then returns "" and the procedure falls back to its own default. It is how a secret
	// gets a default, which could not be shown ("the blank token's password, unless the
	// answers say otherwise").
	Optional bool

	// Hints say in advance what Validate will accept, so that a GUI can show the rules
	// before the person types and check as they type. Nil: none. They never replace
	// Validate, which has the last word.
	Hints *Hints

	// Chrome renders the words of the answers the front-end itself refuses ("answer yes or
	// no") in the run's language; nil is English. Front-ends given one (SetChrome) fill it.
	Chrome Chrome
}

// Hints describe an acceptable answer to a text, file or secret prompt. Every field is
// optional; a zero value says nothing.
type Hints struct {
	MinLength int // in characters (Unicode code points); 0: no minimum
	MaxLength int // in characters; 0: no maximum
	// Pattern is a regular expression (RE2 syntax) the whole answer matches, as the region
	// states it, such as ^[a-z]{2}[0-9]{6}_[a-z]{8}$ for a user ID.
	Pattern string
	// Allowed is the set of characters an answer may hold, as a regular-expression
	// character class without its brackets ("A-Za-z0-9"), when the rule is that simple.
	Allowed string
	// Example is an answer of the right shape, for a placeholder (never a real secret).
	Example string
	// Rules are the rules an answer must keep, in the order a person fixes them, each with
	// a stable id (the catalog key of its message: password_too_short) and its text in the
	// run's language.
	Rules []Rule
}

// Rule is one rule an answer must keep.
type Rule struct {
	ID   string
	Text string
	Max  int // the rule's own bound, for a page's live check: password_sequence's longest run; 0 for none
}

// Check reports whether the prompt is well formed. Front-ends call it before asking; a
// failure is a bug in the procedure, not something the person can fix.
func (p Prompt) Check() error {
	if err := checkID(p.ID); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("prompt '%s': %s", p.ID, fmt.Sprintf(format, args...))
	}
	if p.Kind != Choice && len(p.Choices) > 0 {
		return bad("only a choice prompt has choices")
	}
	if p.Optional && p.Kind != Text && p.Kind != Secret && p.Kind != File {
		return bad("only text, file and secret prompts can be optional")
	}
	if p.Hints != nil && p.Kind != Text && p.Kind != Secret && p.Kind != File {
		return bad("only text, file and secret prompts have hints")
	}
	if h := p.Hints; h != nil && (h.MinLength < 0 || h.MaxLength < 0 || h.MaxLength > 0 && h.MinLength > h.MaxLength) {
		return bad("hints: lengths %d to %d make no sense", h.MinLength, h.MaxLength)
	}
	switch p.Kind {
	case Text, File:
	case Secret:
		if p.Default != "" {
			return bad("a secret prompt cannot have a default")
		}
	case Choice:
		if len(p.Choices) == 0 {
			return bad("a choice prompt needs at least one choice")
		}
		seen := make(map[string]bool, len(p.Choices))
		for _, c := range p.Choices {
			if c.Value == "" {
				return bad("a choice has an empty value")
			}
			if seen[c.Value] {
				return bad("choice value %q appears twice", c.Value)
			}
			seen[c.Value] = true
		}
		if p.Default != "" && !seen[p.Default] {
			return bad("default %q is not one of the choice values", p.Default)
		}
	case Confirm:
		if p.Default != "" && p.Default != "yes" && p.Default != "no" {
			return bad(`the default of a confirmation must be "yes" or "no", not %q`, p.Default)
		}
	default:
		return bad("unknown kind %d", int(p.Kind))
	}
	return nil
}

func checkID(id string) error {
	if id == "" {
		return errors.New("prompt has no id")
	}
	for _, r := range id {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-') {
			return fmt.Errorf("prompt id %q: only letters, digits, '_', '.' and '-' are allowed", id)
		}
	}
	return nil
}

func (p Prompt) label() string {
	if p.Label != "" {
		return p.Label
	}
	return p.ID
}

// Level is the importance of a message from Say.
type Level int

// The message levels.
const (
	Info Level = iota
	Warn
	Error
)

// String returns the level as the JSON protocol spells it.
func (l Level) String() string {
	switch l {
	case Info:
		return "info"
	case Warn:
		return "warn"
	case Error:
		return "error"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

func (l Level) check() error {
	if l < Info || l > Error {
		return fmt.Errorf("unknown message level %d", int(l))
	}
	return nil
}

// Frontend is how a procedure talks to the person. A front-end answers one Ask at a time;
// concurrent calls are safe but wait for each other.
type Frontend interface {
	// Ask returns the answer to p: the text for Text and Secret, the chosen Value for
	// Choice, "yes" or "no" for Confirm. Errors wrap ErrCancelled when the person or the
	// driver gave up, ErrNoAnswer when no usable answer can be had, and the context's
	// cause when ctx ends first. No error text ever holds a secret answer.
	Ask(ctx context.Context, p Prompt) (string, error)
	// Say shows a message. An error means the output itself failed.
	Say(ctx context.Context, level Level, text string) error
	// Progress starts showing a long operation; id is stable like a prompt id.
	Progress(ctx context.Context, id, label string) (Progress, error)
	// Interactive reports whether a person is there to answer; procedures use it to
	// decide whether to offer a retry or to fail at once.
	Interactive() bool
}

// Progress is a long operation being shown. Its methods never fail: a broken display must
// not abort a token operation half-way, so write errors are dropped.
type Progress interface {
	// Update shows how far along the operation is: fraction in [0, 1], or below 0 when
	// unknown; note is an optional detail ("waiting for the CA").
	Update(fraction float64, note string)
	// Done ends the display. Calls after the first do nothing.
	Done(ok bool, note string)
}

// resolve turns what was typed or sent into the answer: it applies the default, maps a
// choice key or a yes/no word, then runs Validate. A *retryError means the person may try
// again; its message never holds a secret answer. numbered allows a choice's position
// ("2") as its key; only the terminal shows positions.
func (p Prompt) resolve(raw string, numbered bool) (string, error) {
	if p.Kind != Secret {
		// Spaces around a user ID or a choice are slips of the hand; a secret is kept as
		// typed because a space may be part of it.
		raw = strings.TrimSpace(raw)
	}
	if raw == "" {
		raw = p.Default
	}
	value := raw
	switch p.Kind {
	case Choice:
		v, ok := p.matchChoice(raw, numbered)
		if !ok {
			if raw == "" {
				return "", retryf(CodeNotAChoice, "%s", p.Chrome.text("ui_choose_option", nil))
			}
			return "", retryf(CodeNotAChoice, "%s", p.Chrome.text("ui_not_an_option", map[string]any{"value": raw}))
		}
		value = v
	case Confirm:
		v, ok := parseConfirm(raw)
		if !ok {
			return "", retryf(CodeNotYesNo, "%s", p.Chrome.text("ui_answer_yes_no", nil))
		}
		value = v
	}
	if p.Validate == nil {
		return value, nil
	}
	if err := p.Validate(value); err != nil {
		var abort *abortError
		if errors.As(err, &abort) {
			return "", &abortError{err: &redactedError{err: err, msg: p.redact(err.Error(), value)}}
		}
		r := &retryError{msg: p.redact(err.Error(), value), code: CodeInvalidInput}
		var inv *Invalid
		if errors.As(err, &inv) {
			if inv.Code != "" {
				r.code = inv.Code
			}
			r.problems = inv.Problems
		}
		return "", r
	}
	return value, nil
}

// numbered reports whether the choices can be keyed by position. When a value itself
// looks like a position ("1" and "3" for 1-year and 3-year certificates) typing "1" would
// be ambiguous, so such prompts are keyed by value only.
func (p Prompt) numbered() bool {
	for _, c := range p.Choices {
		if n, err := strconv.Atoi(c.Value); err == nil && n >= 1 && n <= len(p.Choices) {
			return false
		}
	}
	return true
}

func (p Prompt) matchChoice(s string, numbered bool) (string, bool) {
	if s == "" {
		return "", false
	}
	for _, c := range p.Choices {
		if c.Value == s {
			return c.Value, true
		}
	}
	if numbered {
		if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= len(p.Choices) {
			return p.Choices[n-1].Value, true
		}
	}
	// Case is forgiven only when it picks exactly one value.
	found := ""
	for _, c := range p.Choices {
		if strings.EqualFold(c.Value, s) {
			if found != "" {
				return "", false
			}
			found = c.Value
		}
	}
	return found, found != ""
}

// confirmWords are the yes/no answers accepted everywhere: English, Russian and Kazakh, as
// the bank's clients type them.
var confirmWords = map[string]string{
	"y": "yes", "yes": "yes", "true": "yes",
	"n": "no", "no": "no", "false": "no",
	"д": "yes", "да": "yes",
	"н": "no", "нет": "no",
	"иә": "yes", "ия": "yes", "и": "yes",
	"жоқ": "no", "жок": "no", "ж": "no",
}

func parseConfirm(s string) (string, bool) {
	v, ok := confirmWords[strings.ToLower(strings.TrimSpace(s))]
	return v, ok
}

// minRedact is the shortest secret that is redacted from messages. Shorter ones cannot
// identify a secret, and replacing every "1" or "a" would garble the message ("must be at
// least 8 characters").
const minRedact = 4

// redact removes a secret answer from a validator's message: validators are procedure
// code, and one that quotes its input must not leak a PIN to the screen or a log.
func (p Prompt) redact(msg, value string) string {
	if p.Kind != Secret || utf8.RuneCountInString(value) < minRedact {
		return msg
	}
	return strings.ReplaceAll(msg, value, "***")
}
