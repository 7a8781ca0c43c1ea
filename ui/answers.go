package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/textenc"
	"github.com/tokenrun/tokenrun/internal/yamlbound"
)

// AnswersOptions adjusts an Answers front-end.
type AnswersOptions struct {
	// Out receives Say and Progress lines; nil discards them. Pass os.Stderr.
	Out io.Writer
	// AllowConfirm lets the file answer Confirm prompts; the CLI sets it for --yes. A
	// confirmation guards something that cannot be undone (formatting a token), so a
	// file alone does not give it. With it, a confirmation the file does not mention is
	// answered "yes".
	AllowConfirm bool
	// Name is how messages refer to the answers ("answers.yaml"). LoadAnswers defaults it
	// to the path, ParseAnswers to "the answers file", NewAnswers to "the answer set".
	Name string
	// Stdin is read when LoadAnswers is given the path "-" (--answers -).
	Stdin io.Reader
	// Env looks up {env: NAME} answers; nil is os.LookupEnv.
	Env func(string) (string, bool)
}

// Answers answers prompts from a fixed set of values, usually a YAML file, for batch
// runs. It never waits: a prompt it cannot answer is an error wrapping ErrNoAnswer that
// names the prompt id and, where there is one, the file and line.
//
// The file is a YAML mapping of prompt id to answer:
//
//	registration_type: 1y        # a Choice is answered by its value, not its number
//	user_id: qq111111_qwertyui
//	otp_pin: "A1B2C3D4E5F"       # a Secret is plain text: protect the file
//	token_label: 012345          # kept as written: "012345", not the number 12345
//	confirm_format: yes          # only with --yes (AllowConfirm)
//
// Scalars are taken as the text written, so 012345, 0x1F or 1e3 typed without quotes stay
// those characters rather than becoming numbers. A Confirm takes true/false or the yes/no
// words the terminal accepts. An empty value (`user_id:`) or null takes the prompt's
// default, as does a missing id when the prompt has a default: a procedure that adds a
// prompt with a default keeps old batch files working. A list or mapping where one value
// is wanted is an error naming the line.
//
// An invalid value fails at once, with the validator's message: the file cannot change, so
// asking again would only loop. HumanOnly prompts are always refused.
type Answers struct {
	name         string
	allowConfirm bool
	out          io.Writer
	order        []string // ids in file order, for Unused
	values       map[string]answerValue

	env  func(string) (string, bool)
	perm fs.FileMode // the file's permission bits; 0 when not from a file

	mu       sync.Mutex // guards asked and declared
	asked    map[string]bool
	declared map[string]bool // ids the procedure declares: never reported unused

	outMu sync.Mutex // guards out

	chrome Chrome // the words of the marks and refusals (chrome.go)
}

type answerValue struct {
	node *yaml.Node // nil for values given as Go strings
	text string     // for values given as Go strings
	line int        // 0 when not from a file
}

// LoadAnswers reads an answers file. Errors name the path and, for content errors, the line.
// The path "-" reads opts.Stdin (named "standard input").
func LoadAnswers(path string, opts AnswersOptions) (*Answers, error) {
	if path == "-" {
		if opts.Stdin == nil {
			return nil, errors.New("read answers: no standard input to read")
		}
		data, err := io.ReadAll(io.LimitReader(opts.Stdin, readfile.Answers.Max+1))
		if err != nil {
			return nil, fmt.Errorf("read answers from standard input: %w", err)
		}
		if opts.Name == "" {
			opts.Name = "standard input"
		}
		return ParseAnswers(data, opts)
	}
	f, err := readfile.Open(path, readfile.Answers)
	if err != nil {
		return nil, fmt.Errorf("read answers: %w", err)
	}
	defer f.Close()
	data, err := f.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read answers: %w", err)
	}
	if opts.Name == "" {
		opts.Name = path
	}
	a, err := ParseAnswers(data, opts)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil {
		a.perm = st.Mode().Perm()
	}
	return a, nil
}

// ParseAnswers reads answers from YAML text, as LoadAnswers does from a file; opts.Name
// names the source in errors.
func ParseAnswers(data []byte, opts AnswersOptions) (*Answers, error) {
	a := newAnswers(opts, "the answers file")
	if int64(len(data)) > readfile.Answers.Max {
		return nil, fmt.Errorf("%s is %s, more than the %s an answers file may hold",
			a.name, readfile.Size(int64(len(data))), readfile.Size(readfile.Answers.Max))
	}
	// Notepad's "Unicode" and PowerShell 5 write UTF-16 with a BOM (textenc).
	data, err := textenc.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return a, nil // an empty file answers nothing
		}
		return nil, yamlErr(a.name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%d: more than one YAML document; answers must be one mapping", a.name, extra.Line)
	}
	// The whole file is checked here, before any prompt is asked and so before any token is
	// touched: its size with aliases expanded, and every answer's length.
	if err := yamlbound.Check(a.name, &doc, yamlbound.Config); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return a, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: answers must be a mapping of prompt id to answer", a.name, root.Line)
	}
	first := make(map[string]int)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: a prompt id must be a plain name", a.name, k.Line)
		}
		if checkID(k.Value) != nil {
			// Not quoted: a key that is no id may be a value pasted into the wrong
			// place, such as a PIN.
			return nil, fmt.Errorf("%s:%d: a prompt id has only letters, digits, '_', '.' and '-'", a.name, k.Line)
		}
		if line, dup := first[k.Value]; dup {
			return nil, fmt.Errorf("%s:%d: prompt '%s' is answered twice (first on line %d)", a.name, k.Line, k.Value, line)
		}
		first[k.Value] = k.Line
		if n := answerBytes(v); n > MaxAnswer {
			return nil, fmt.Errorf("%s:%d: the answer for prompt '%s' is %d bytes, more than the %d an answer may hold",
				a.name, k.Line, k.Value, n, MaxAnswer)
		}
		a.order = append(a.order, k.Value)
		a.values[k.Value] = answerValue{node: v, line: k.Line} // the key's line: a list value starts below it
	}
	return a, nil
}

// MaxAnswer bounds one answer: the longest real ones (a file path, a password, a profile
// name) are a few hundred bytes, and a value is shown back in messages.
const MaxAnswer = 4096

// answerBytes is the length of the text an answer holds, its items summed for a list.
func answerBytes(n *yaml.Node) int {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode {
		return len(n.Value)
	}
	total := 0
	for _, c := range n.Content {
		total += answerBytes(c)
		if total > MaxAnswer {
			break
		}
	}
	return total
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlErr puts a YAML syntax error in the file:line form the rest of the project uses,
// instead of yaml's own "yaml: line 2:".
func yamlErr(name string, err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return &markedError{msg: fmt.Sprintf("%s:%s: %s", name, m[1], m[2]), err: err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// NewAnswers answers from values, keyed by prompt id: for tests, and for answers given on
// the command line.
func NewAnswers(values map[string]string, opts AnswersOptions) *Answers {
	a := newAnswers(opts, "the answer set")
	for id, v := range values {
		a.order = append(a.order, id)
		a.values[id] = answerValue{text: v}
	}
	sort.Strings(a.order)
	return a
}

func newAnswers(opts AnswersOptions, name string) *Answers {
	if opts.Name != "" {
		name = opts.Name
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	return &Answers{
		name:         name,
		allowConfirm: opts.AllowConfirm,
		out:          out,
		env:          env,
		values:       make(map[string]answerValue),
		asked:        make(map[string]bool),
		declared:     make(map[string]bool),
	}
}

// Interactive is false: nobody is there to retry.
func (a *Answers) Interactive() bool { return false }

// Ask returns the answer for p.ID.
func (a *Answers) Ask(ctx context.Context, p Prompt) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("prompt '%s': %w", p.ID, context.Cause(ctx))
	}
	a.mu.Lock()
	a.asked[p.ID] = true
	v, ok := a.values[p.ID]
	a.mu.Unlock()

	if p.HumanOnly {
		return "", noAnswerf("prompt '%s' needs a person at a terminal; %s cannot answer it", p.ID, a.name)
	}
	if p.Kind == Confirm && !a.allowConfirm {
		return "", noAnswerf("prompt '%s' asks for a confirmation, which %s can give only with --yes", p.ID, a.name)
	}
	where := a.name
	var raw string
	switch {
	case ok:
		if v.line > 0 {
			where = fmt.Sprintf("%s:%d", a.name, v.line)
		}
		var err error
		if raw, err = a.text(v, p.Kind); err != nil {
			return "", noAnswerf("%s: answer for prompt '%s' %s", where, p.ID, err.Error())
		}
	case p.Kind == Confirm:
		raw = "yes" // AllowConfirm is set: that is what --yes means
	case p.Optional && p.Default == "":
		return "", nil
	case p.Default == "":
		return "", noAnswerf("%s has no answer for prompt '%s'", a.name, p.ID)
	}
	// Choices are matched by value only: a position in a file would silently change
	// meaning when a region reorders its options.
	value, err := withChrome(p, a.chrome).resolve(raw, false)
	if err != nil {
		var retry *retryError
		if errors.As(err, &retry) {
			if p.Kind == Choice {
				vals := make([]string, len(p.Choices))
				for i, c := range p.Choices {
					vals[i] = c.Value
				}
				return "", noAnswerf("%s: answer for prompt '%s' is not valid: %s (allowed values: %s)", where, p.ID, retry.msg, strings.Join(vals, ", "))
			}
			return "", noAnswerf("%s: answer for prompt '%s' is not valid: %s", where, p.ID, retry.msg)
		}
		return "", promptErr(p.ID, err)
	}
	return value, nil
}

// text is the answer as text, a secret given as {file: PATH} or {env: NAME} read from there,
// or an error completing "answer for prompt 'x' ...".
func (a *Answers) text(v answerValue, kind Kind) (string, error) {
	if src, ref, ok := v.secretSource(); ok {
		if kind != Secret {
			return "", fmt.Errorf("is a {%s: ...} source, which only a secret prompt takes", src)
		}
		return a.readSecret(src, ref)
	}
	return v.scalar(Prompt{Kind: kind})
}

// secretSource reports an answer written as {file: PATH} or {env: NAME}.
func (v answerValue) secretSource() (src, ref string, ok bool) {
	n := v.node
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return "", "", false
	}
	k, x := n.Content[0], n.Content[1]
	if k.Kind != yaml.ScalarNode || x.Kind != yaml.ScalarNode || (k.Value != "file" && k.Value != "env") {
		return "", "", false
	}
	return k.Value, x.Value, true
}

// readSecret reads a secret from a file (through readfile, as a PIN file: its first line)
// or an environment variable. Errors name the file or variable, never the secret.
func (a *Answers) readSecret(src, ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("{%s: ...} names no %s", src, map[string]string{"file": "file", "env": "variable"}[src])
	}
	if src == "env" {
		s, ok := a.env(ref)
		if !ok {
			return "", fmt.Errorf("names the environment variable %s, which is not set", ref)
		}
		return s, nil
	}
	b, err := readfile.Read(ref, readfile.PIN)
	if err != nil {
		return "", fmt.Errorf("names a file that cannot be read: %w", err)
	}
	// A PIN file saved by Notepad or PowerShell: its BOM and NULs are no part of the PIN.
	if b, err = textenc.Decode(b); err != nil {
		return "", fmt.Errorf("names the file %s, which is %w", ref, err)
	}
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, "\r")
	if len(s) > MaxAnswer {
		return "", fmt.Errorf("names a file whose first line is more than the %d bytes an answer may hold", MaxAnswer)
	}
	return s, nil
}

// scalar returns the answer as text, or an error completing "answer for prompt 'x' ...".
func (v answerValue) scalar(p Prompt) (string, error) {
	n := v.node
	if n == nil {
		return v.text, nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "", errors.New("must be a single value, not a list")
	case yaml.MappingNode:
		if p.Kind == Secret {
			return "", errors.New("must be a single value, {file: PATH} or {env: NAME}")
		}
		return "", errors.New("must be a single value, not a mapping")
	case yaml.ScalarNode:
	default:
		return "", errors.New("must be a single value")
	}
	switch {
	case n.Tag == "!!null":
		return "", nil
	case n.Tag == "!!bool" && p.Kind == Confirm:
		if strings.EqualFold(n.Value, "true") {
			return "yes", nil
		}
		return "no", nil
	}
	// The text as written: yaml would read 012345 as the number 12345 and drop a
	// leading zero that a user ID or token label needs.
	return n.Value, nil
}

// Unused returns the ids that were in the answers but never asked, in file order, so the
// CLI can warn about a misspelt id after the run. Ids the procedure declares (see Check) are
// left out: a resumed run legitimately skips what it asked before.
func (a *Answers) Unused() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for _, id := range a.order {
		if !a.asked[id] && !a.declared[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// Say writes text to Out, marked as the terminal marks it.
func (a *Answers) Say(ctx context.Context, level Level, text string) error {
	if err := level.check(); err != nil {
		return err
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	if _, err := io.WriteString(a.out, sayLine(a.chrome, level, text)); err != nil {
		return fmt.Errorf("say: %w", err)
	}
	return nil
}

// Progress writes plain start, step and done lines to Out.
func (a *Answers) Progress(ctx context.Context, id, label string) (Progress, error) {
	if label == "" {
		label = id
	}
	return startPlain(&a.outMu, a.out, label, a.chrome)
}
