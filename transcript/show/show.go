// Package show renders a transcript as the conversation the client had, for support: each
// screen's text (messages, prompts and what was answered, refused attempts, progress) in a
// chosen language, the token's and the CA's outcomes in words with their times, the journal
// step reached and the verdict. It reads the JSON lines only; no Lua runs.
//
// A text is re-rendered in the chosen language from its catalog key and arguments: those a
// ui call carries in its options ({key=..., args=...}), else those of the policy.text call
// whose result is the text (the procedures render every text through it). A text without a
// key is shown as recorded. Every recorded value is escaped (internal/termtext): a transcript
// comes from a client's machine.
package show

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/transcript"
)

// Options choose the language of the screens.
type Options struct {
	// Lang is the language shown; Catalog its message catalog (region.Catalog). With no
	// Catalog, every text is shown as recorded.
	Lang    string
	Catalog map[string]string
	// Terms maps texts the procedure took from elsewhere than the catalog (a region's
	// validity labels) from the recorded language to Lang.
	Terms map[string]string
	// Recorded is the catalog of the recorded language: a text shown without its key (a
	// rule's message passed on by the script) is matched against its templates to recover
	// the key and the plain {name} arguments.
	Recorded map[string]string
}

// Secret is what a secret answer shows as.
const Secret = "●●●"

// Record is a transcript read back: header, calls in order, footer (nil when the file ends
// without one: the run was cut off).
type Record struct {
	Header transcript.Header
	Calls  []transcript.Call
	Footer *transcript.Footer
}

// Read reads a transcript.
func Read(r io.Reader) (*Record, error) {
	lr := transcript.NewLineReader(r)
	rec := &Record{}
	for first := true; ; first = false {
		line, n, err := lr.Next()
		if errors.Is(err, io.EOF) {
			if first {
				return nil, errors.New("transcript is empty")
			}
			return rec, nil
		}
		if err != nil {
			return nil, err
		}
		var kind struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(line, &kind); err != nil {
			return nil, fmt.Errorf("transcript line %d: %w", n, err)
		}
		switch {
		case first && kind.Kind != transcript.KindHeader:
			return nil, fmt.Errorf("transcript line 1 is %q, not a header", kind.Kind)
		case kind.Kind == transcript.KindHeader && first:
			err = json.Unmarshal(line, &rec.Header)
		case kind.Kind == transcript.KindCall:
			var c transcript.Call
			err = json.Unmarshal(line, &c)
			rec.Calls = append(rec.Calls, c)
		case kind.Kind == transcript.KindFooter:
			var f transcript.Footer
			err = json.Unmarshal(line, &f)
			rec.Footer = &f
		default:
			err = fmt.Errorf("unexpected %q record", kind.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("transcript line %d: %w", n, err)
		}
	}
}

// Render writes the view of the transcript read from r.
func Render(w io.Writer, r io.Reader, o Options) error {
	rec, err := Read(r)
	if err != nil {
		return err
	}
	return RenderRecord(w, rec, o, len(rec.Calls))
}

// RenderRecord writes the view of rec's first upto calls, then its verdict when upto is all
// of them: a replay shows the conversation up to its divergence.
func RenderRecord(w io.Writer, rec *Record, o Options, upto int) error {
	v := &view{w: w, o: o, rec: rec, texts: map[string]keyed{}}
	v.header()
	if upto > len(rec.Calls) {
		upto = len(rec.Calls)
	}
	for i := 0; i < upto; i++ {
		v.call(i)
	}
	if upto == len(rec.Calls) {
		v.verdict()
	}
	return v.err
}

// keyed is a catalog text as it was rendered: its key and arguments.
type keyed struct {
	key  string
	args map[string]any
}

type view struct {
	templates []template // the recorded catalog's, longest literal text first; built when first needed
	w         io.Writer
	o         Options
	rec       *Record
	texts     map[string]keyed // rendered text -> how, from policy.text calls so far
	err       error
}

func (v *view) printf(format string, args ...any) {
	if v.err == nil {
		_, v.err = fmt.Fprintf(v.w, format, args...)
	}
}

// line writes one event: its time since the start, a mark, and text (indented under it when
// it spans lines).
func (v *view) line(offsetUS int64, mark, text string) {
	lines := strings.Split(text, "\n")
	v.printf("%9s  %-8s %s\n", stamp(offsetUS), mark, lines[0])
	for _, l := range lines[1:] {
		v.printf("%9s  %-8s %s\n", "", "", l)
	}
}

// stamp is an offset as +S.mmm s.
func stamp(us int64) string {
	return fmt.Sprintf("+%.3fs", float64(us)/1e6)
}

// took is a duration in words.
func took(us int64) string {
	d := time.Duration(us) * time.Microsecond
	switch {
	case d < time.Millisecond:
		return "<1 ms"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func esc(s string) string { return termtext.Escape(s) }

func (v *view) header() {
	h := v.rec.Header
	lang := h.Language
	shown := v.o.Lang
	if v.o.Catalog == nil || shown == "" {
		shown = lang
	}
	v.printf("%s %s (%s): region %s, recorded in %s, shown in %s\n", esc(h.Procedure), esc(h.Version),
		esc(h.Command), esc(h.Region), esc(lang), esc(shown))
	v.printf("started %s on %s/%s, scripts %s (%s), %s\n", h.Start.UTC().Format("2006-01-02 15:04:05 UTC"),
		esc(h.OS), esc(h.Arch), esc(h.ScriptsVersion), esc(h.ScriptsSource), esc(h.Module))
	if len(h.Tokens) == 0 {
		v.printf("no token present at the start\n")
	}
	for _, t := range h.Tokens {
		v.printf("token %s (%s, %s %s): user PIN %s, SO PIN %s, %d certificates\n", esc(t.Label), esc(t.Serial),
			esc(t.Manufacturer), esc(t.Model), pinState(t.UserPIN, t.UserPINSet), pinState(t.SOPIN, true), len(t.Certificates))
	}
	v.printf("\n")
}

// pinState words a PIN's flags.
func pinState(p token.PINStatus, set bool) string {
	var out []string
	if !set {
		out = append(out, "not set")
	}
	switch {
	case p.Locked:
		out = append(out, "locked")
	case p.RetriesLeft > 0:
		out = append(out, triesLeft(p.RetriesLeft))
	case p.FinalTry:
		out = append(out, "final try")
	case p.CountLow:
		out = append(out, "tries low")
	}
	if p.ToBeChanged {
		out = append(out, "to be changed")
	}
	if len(out) == 0 {
		return "ok"
	}
	return strings.Join(out, ", ")
}

func triesLeft(n int) string {
	if n == 1 {
		return "1 try left"
	}
	return fmt.Sprintf("%d tries left", n)
}

// text is a recorded text in the chosen language: re-rendered from its key and arguments
// when they are known (opts carrying key and args, else the policy.text call that rendered
// it), else as recorded; escaped for the terminal, lines kept.
func (v *view) text(recorded string, opts map[string]any) string {
	return termtext.Lines(v.translate(recorded, opts, 0))
}

func (v *view) translate(recorded string, opts map[string]any, depth int) string {
	if v.o.Catalog == nil || depth > 4 {
		return recorded
	}
	k := keyed{}
	if key, ok := opts["key"].(string); ok && key != "" {
		k.key = key
		k.args, _ = opts["args"].(map[string]any)
	} else if kt, ok := v.texts[recorded]; ok {
		k = kt
	} else if t, ok := v.o.Terms[recorded]; ok {
		return t
	} else if kt, ok := v.unrender(recorded); ok {
		k = kt
	} else {
		return recorded
	}
	if _, ok := v.o.Catalog[k.key]; !ok {
		return recorded
	}
	args := make(map[string]any, len(k.args))
	for name, a := range k.args {
		if s, ok := a.(string); ok {
			// An argument that is itself a rendered text (a {reason}, a validity's label).
			a = v.translate(s, nil, depth+1)
		}
		args[name] = a
	}
	return region.Text(v.o.Catalog, k.key, args)
}

// template is a catalog text as a pattern: its literal parts quoted, each plain {name} a
// capture.
type template struct {
	key     string
	re      *regexp.Regexp
	names   []string
	literal int
}

var placeholder = regexp.MustCompile(`\{([a-z][a-z0-9_]*)(\|[^{}]*)?\}`)

// unrender finds the recorded catalog's text that rendered s, and the arguments it was
// given. A template with a typed placeholder (a plural, a date), or with little literal text
// of its own, is not tried.
func (v *view) unrender(s string) (keyed, bool) {
	if v.o.Recorded == nil {
		return keyed{}, false
	}
	if v.templates == nil {
		v.templates = []template{}
		for key, text := range v.o.Recorded {
			if key == region.LangKey {
				continue
			}
			t, ok := compileTemplate(key, text)
			if ok {
				v.templates = append(v.templates, t)
			}
		}
		sort.Slice(v.templates, func(i, j int) bool {
			a, b := v.templates[i], v.templates[j]
			if a.literal != b.literal {
				return a.literal > b.literal
			}
			return a.key < b.key
		})
	}
	for _, t := range v.templates {
		m := t.re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		args := map[string]any{}
		for i, name := range t.names {
			args[name] = m[i+1]
		}
		return keyed{key: t.key, args: args}, true
	}
	return keyed{}, false
}

func compileTemplate(key, text string) (template, bool) {
	t := template{key: key}
	var re strings.Builder
	re.WriteString(`^`)
	last := 0
	seen := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatchIndex(text, -1) {
		if m[4] >= 0 { // typed
			return template{}, false
		}
		name := text[m[2]:m[3]]
		lit := text[last:m[0]]
		t.literal += len(lit)
		re.WriteString(regexp.QuoteMeta(lit))
		if seen[name] {
			return template{}, false
		}
		seen[name] = true
		t.names = append(t.names, name)
		re.WriteString(`(.+?)`)
		last = m[1]
	}
	t.literal += len(text) - last
	re.WriteString(regexp.QuoteMeta(text[last:]))
	re.WriteString(`$`)
	if t.literal < 12 {
		return template{}, false
	}
	var err error
	if t.re, err = regexp.Compile(re.String()); err != nil {
		return template{}, false
	}
	return t, true
}

// chrome is a front-end word from the catalog (ui_warning, ui_progress_done...), or the
// English fallback.
func (v *view) chrome(key, fallback string, args map[string]any) string {
	if v.o.Catalog != nil {
		if _, ok := v.o.Catalog[key]; ok {
			return region.Text(v.o.Catalog, key, args)
		}
	}
	return region.FormatIn("en", fallback, args)
}

func (v *view) call(i int) {
	c := v.rec.Calls[i]
	if c.Depth > 0 {
		return // a prompt's validate callback: ask showed it
	}
	switch {
	case c.Name == "policy.text":
		v.index(c)
	case c.Prompt != nil:
		v.ask(i)
	case c.Module == "ui":
		v.ui(c)
	case c.Module == "token":
		v.token(c)
	case c.Module == "ca":
		v.ca(c)
	case c.Module == "journal":
		v.journal(c)
	case c.Module == "sign":
		v.outcome(c, "sign", c.Func)
	}
}

// index remembers how a text was rendered.
func (v *view) index(c transcript.Call) {
	if len(c.Args) == 0 || len(c.Results) == 0 {
		return
	}
	key, _ := c.Args[0].(string)
	text, _ := c.Results[0].(string)
	if key == "" || text == "" {
		return
	}
	var args map[string]any
	if len(c.Args) > 1 {
		args, _ = c.Args[1].(map[string]any)
	}
	v.texts[text] = keyed{key: key, args: args}
}

// optsOf is the options table of a ui message call (say(text, opts)), when it has one.
func optsOf(c transcript.Call, at int) map[string]any {
	if len(c.Args) > at {
		m, _ := c.Args[at].(map[string]any)
		return m
	}
	return nil
}

func str(args []any, i int) string {
	if len(args) > i {
		s, _ := args[i].(string)
		return s
	}
	return ""
}

func (v *view) ui(c transcript.Call) {
	switch c.Func {
	case "say":
		v.line(c.OffsetUS, "", v.text(str(c.Args, 0), optsOf(c, 1)))
	case "warn":
		v.line(c.OffsetUS, "", v.chrome("ui_warning", "Warning: {text}", map[string]any{"text": v.text(str(c.Args, 0), optsOf(c, 1))}))
	case "error":
		v.line(c.OffsetUS, "", v.chrome("ui_error", "Error: {text}", map[string]any{"text": v.text(str(c.Args, 0), optsOf(c, 1))}))
	case "progress":
		opts := optsOf(c, 0)
		label, _ := opts["label"].(string)
		v.line(c.OffsetUS, "", v.text(label, nil))
	}
	if c.Type == "ui.Progress" && c.Func == "done" {
		label := v.progressLabel(c)
		ok, _ := firstArg(c).(bool)
		if ok {
			v.line(c.OffsetUS, "", v.chrome("ui_progress_done", "{label}: done", map[string]any{"label": label}))
		} else {
			v.line(c.OffsetUS, "", v.chrome("ui_progress_failed", "{label}: failed", map[string]any{"label": label}))
		}
	}
}

func firstArg(c transcript.Call) any {
	if len(c.Args) > 0 {
		return c.Args[0]
	}
	return nil
}

// progressLabel is the label of the last progress started before c, without its ellipsis.
func (v *view) progressLabel(c transcript.Call) string {
	for i := int(c.Seq) - 2; i >= 0 && i < len(v.rec.Calls); i-- {
		p := v.rec.Calls[i]
		if p.Name == "ui.progress" {
			label, _ := optsOf(p, 0)["label"].(string)
			t := v.text(label, nil)
			return strings.TrimRight(strings.TrimSuffix(t, "…"), ".")
		}
	}
	return ""
}

// ask shows the prompt call i, the attempts its validate callback refused (the calls after
// it, deeper), and what was answered.
func (v *view) ask(i int) {
	c := v.rec.Calls[i]
	opts := optsOf(c, 0)
	label, _ := opts["label"].(string)
	v.line(c.OffsetUS, "?", v.text(label, nil)+"  ["+esc(c.Prompt.ID)+"]")
	for j := i + 1; j < len(v.rec.Calls) && v.rec.Calls[j].Depth > c.Depth; j++ {
		v.callback(v.rec.Calls[j], c.Prompt.Kind == "secret")
	}
	if c.Error != "" {
		v.line(c.OffsetUS+c.DurationUS, "", "(no answer: "+esc(c.Error)+")")
		return
	}
	var answer string
	switch c.Prompt.Kind {
	case "secret":
		answer = Secret
	case "confirm":
		yes, _ := c.Prompt.Answer.(bool)
		answer = v.chrome("answer_no", "No", nil)
		if yes {
			answer = v.chrome("answer_yes", "Yes", nil)
		}
	case "choose":
		val := fmt.Sprint(c.Prompt.Answer)
		answer = esc(val)
		choices, _ := opts["choices"].([]any)
		for _, ch := range choices {
			m, _ := ch.(map[string]any)
			if fmt.Sprint(m["value"]) == val {
				l, _ := m["label"].(string)
				answer = v.text(l, nil) + " (" + esc(val) + ")"
			}
		}
	default:
		s, ok := c.Prompt.Answer.(string)
		if !ok {
			s = fmt.Sprint(c.Prompt.Answer)
		}
		if s == "" {
			answer = "(empty)"
		} else {
			answer = termtext.Escape(s)
		}
	}
	v.line(c.OffsetUS+c.DurationUS, ">", answer)
}

// callback shows what a prompt's validate callback refused: an attempt the person was told
// was not accepted.
func (v *view) callback(c transcript.Call, secret bool) {
	if c.Name == "policy.text" {
		v.index(c)
		return
	}
	if len(c.Results) == 0 {
		return
	}
	if ok, isBool := c.Results[0].(bool); (isBool && ok) || (!isBool && c.Results[0] != nil) {
		return
	}
	reason := c.Error
	if m := errTable(c.Results); m != nil {
		reason, _ = m["message"].(string)
	} else if s := str(c.Results, 1); s != "" {
		reason = s
	}
	typed := Secret
	if a, ok := firstArg(c).(string); ok && !secret && a != "<secret>" {
		typed = esc(a)
	}
	v.line(c.OffsetUS, ">", typed)
	v.line(c.OffsetUS, "✗", v.chrome("ui_not_accepted", "Not accepted: {reason}", map[string]any{"reason": v.text(reason, nil)}))
}

// errTable is a call's error result ({code=..., message=...}), the second result of a call
// that failed softly (nil, err).
func errTable(results []any) map[string]any {
	for _, r := range results {
		if m, ok := r.(map[string]any); ok {
			if _, ok := m["code"]; ok {
				return m
			}
		}
	}
	return nil
}

// failure words a failed call's error: its code, tries left, and its message.
func failure(c transcript.Call) (string, bool) {
	if c.Error != "" {
		return esc(c.Error), true
	}
	if len(c.Results) > 0 && c.Results[0] != nil {
		if b, ok := c.Results[0].(bool); !ok || b {
			return "", false
		}
	}
	m := errTable(c.Results)
	if m == nil {
		if len(c.Results) == 0 {
			return "", false
		}
		return "failed", true
	}
	out := esc(fmt.Sprint(m["code"]))
	if n, ok := m["retries_left"].(float64); ok {
		out += ", " + triesLeft(int(n))
	}
	if msg, ok := m["message"].(string); ok && msg != "" {
		out += ": " + esc(msg)
	}
	return out, true
}

// outcome shows a module call as ok or failed with its duration.
func (v *view) outcome(c transcript.Call, mark, what string) {
	if why, failed := failure(c); failed {
		v.line(c.OffsetUS, mark, fmt.Sprintf("%s failed (%s): %s", what, took(c.DurationUS), why))
		return
	}
	v.line(c.OffsetUS, mark, fmt.Sprintf("%s (%s)", what, took(c.DurationUS)))
}

func fields(v any) map[string]any {
	m, _ := v.(map[string]any)
	if f, ok := m["fields"].(map[string]any); ok {
		return f
	}
	return m
}

func (v *view) token(c transcript.Call) {
	switch c.Func {
	case "info", "keys", "certificates", "close":
		if _, failed := failure(c); !failed {
			return
		}
		v.outcome(c, "token", c.Func)
	case "wait":
		v.outcome(c, "token", "token present")
	case "login":
		who := "user"
		if m, ok := optsOf(c, 1)["so"].(bool); ok && m {
			who = "security officer"
		}
		if why, failed := failure(c); failed {
			v.line(c.OffsetUS, "token", fmt.Sprintf("%s login refused (%s): %s", who, took(c.DurationUS), why))
			return
		}
		v.line(c.OffsetUS, "token", fmt.Sprintf("%s login ok (%s)", who, took(c.DurationUS)))
	case "generate_key":
		what := "key pair generated"
		if len(c.Results) > 0 {
			f := fields(c.Results[0])
			spec := fields(firstArg(c))
			what += fmt.Sprintf(" (%s %v, id %s)", esc(fmt.Sprint(spec["type"])), keySize(spec), esc(fmt.Sprint(f["id"])))
		}
		v.outcome(c, "token", what)
	case "store_certificate":
		v.outcome(c, "token", "certificate stored")
	case "set_pin":
		v.outcome(c, "token", "PIN changed")
	case "init_pin":
		v.outcome(c, "token", "user PIN set")
	case "format":
		v.outcome(c, "token", "token formatted")
	case "delete":
		v.outcome(c, "token", "object deleted")
	case "logout":
		v.outcome(c, "token", "logged out")
	default:
		v.outcome(c, "token", esc(c.Func))
	}
}

func keySize(spec map[string]any) any {
	if b, ok := spec["bits"]; ok {
		return b
	}
	if cv, ok := spec["curve"]; ok {
		return esc(fmt.Sprint(cv))
	}
	return ""
}

func (v *view) ca(c transcript.Call) {
	switch c.Func {
	case "csr":
		if _, failed := failure(c); failed {
			v.outcome(c, "CA", "certificate request")
		}
	case "load_pkcs12":
		what := "initial key file opened"
		if len(c.Results) > 0 {
			if cn, ok := fields(c.Results[0])["common_name"].(string); ok {
				what += " (user " + esc(cn) + ")"
			}
		}
		v.outcome(c, "CA", what)
	case "enroll", "reenroll":
		what := "certificate issued"
		if len(c.Results) > 0 {
			f := fields(c.Results[0])
			if s, ok := f["serial"].(string); ok {
				what += ", serial " + esc(s)
			}
			if s, ok := f["not_after"].(string); ok {
				what += ", valid until " + esc(s)
			}
		}
		if why, failed := failure(c); failed {
			v.line(c.OffsetUS, "CA", fmt.Sprintf("%s refused (%s): %s", c.Func, took(c.DurationUS), why))
			return
		}
		v.line(c.OffsetUS, "CA", fmt.Sprintf("%s (%s)", what, took(c.DurationUS)))
	default:
		v.outcome(c, "CA", esc(c.Func))
	}
}

func (v *view) journal(c transcript.Call) {
	switch c.Func {
	case "record":
		step := str(c.Args, 1)
		what := "step " + esc(step)
		if data, ok := optsOf(c, 2)["ca_steps"].([]any); ok {
			for _, s := range data {
				m, _ := s.(map[string]any)
				what += fmt.Sprintf("; CA try %s: %s", esc(fmt.Sprint(m["started"])), esc(fmt.Sprint(m["outcome"])))
				if sec, ok := m["seconds"].(float64); ok {
					what += fmt.Sprintf(" after %s", took(int64(math.Round(sec*1e6))))
				}
			}
		}
		v.outcome(c, "journal", what)
	case "forget":
		var names []string
		if l, ok := firstOf(c.Args, 1).([]any); ok {
			for _, n := range l {
				names = append(names, esc(fmt.Sprint(n)))
			}
		}
		sort.Strings(names)
		v.outcome(c, "journal", "forgets "+strings.Join(names, ", "))
	case "load":
		if len(c.Results) > 0 && c.Results[0] == nil {
			v.line(c.OffsetUS, "journal", "no registration under way")
			return
		}
		m, _ := firstOf(c.Results, 0).(map[string]any)
		v.line(c.OffsetUS, "journal", fmt.Sprintf("resumes %s at step %s", esc(fmt.Sprint(m["procedure"])), esc(fmt.Sprint(m["step"]))))
	case "finish":
		v.outcome(c, "journal", "finished")
	}
}

func firstOf(vs []any, i int) any {
	if len(vs) > i {
		return vs[i]
	}
	return nil
}

func (v *view) verdict() {
	f := v.rec.Footer
	v.printf("\n")
	if f == nil {
		v.printf("verdict: none (the transcript ends without a footer: the run was cut off)\n")
		return
	}
	code := ""
	if f.Code != "" {
		code = " " + esc(f.Code)
	}
	v.printf("verdict: %s%s, exit %d (%s), after %s, %d calls\n", esc(f.Outcome), code, f.Exit, esc(f.ExitClass), took(f.DurationUS), f.Calls)
	if f.Message != "" {
		v.printf("message: %s\n", esc(f.Message))
	}
}

// ForLang is the Options showing a transcript recorded with header h in lang ("" keeps the
// recorded language), from the scripts tree fsys: the catalog of h's region (the shipped
// catalogs when fsys lacks that region) and the region's validity labels as Terms.
func ForLang(fsys fs.FS, h transcript.Header, lang string) (Options, error) {
	if lang == "" {
		lang = h.Language
	}
	if lang == "" {
		return Options{}, nil
	}
	reg, err := region.Load(fsys, h.Region)
	if err != nil {
		cat, cerr := region.Catalog(fsys, lang, nil)
		if cerr != nil {
			return Options{}, cerr
		}
		return Options{Lang: lang, Catalog: cat}, nil
	}
	cat, err := reg.Catalog(lang)
	if err != nil {
		return Options{}, err
	}
	o := Options{Lang: lang, Catalog: cat, Terms: map[string]string{}}
	if h.Language != "" {
		if o.Recorded, err = reg.Catalog(h.Language); err != nil {
			return Options{}, err
		}
	}
	for _, val := range reg.Validity {
		if from := val.Text(h.Language); from != "" {
			o.Terms[from] = val.Text(lang)
		}
	}
	return o, nil
}

// Diverged is where a replay left its record: the recorded step, the recorded call and the
// new one as text ("" when there is none), or the reason when the outcome differs.
type Diverged struct {
	Seq           uint64
	Recorded, New string
	Reason        string
}

// RenderDivergence writes the view of rec up to the step before d.Seq, what the client's
// screens showed so far, then the recorded and the new call side by side.
func RenderDivergence(w io.Writer, rec *Record, o Options, d Diverged) error {
	upto := 0
	for upto < len(rec.Calls) && rec.Calls[upto].Seq < d.Seq {
		upto++
	}
	v := &view{w: w, o: o, rec: rec, texts: map[string]keyed{}}
	v.header()
	for i := 0; i < upto; i++ {
		v.call(i)
	}
	v.printf("\n--- the replay diverges at step %d ---\n", d.Seq)
	none := "(none)"
	rc, nc := esc(d.Recorded), esc(d.New)
	if rc == "" {
		rc = none
	}
	if nc == "" {
		nc = none
	}
	if d.Reason != "" && d.Recorded == "" && d.New == "" {
		v.printf("%-9s %s\n", "why", esc(d.Reason))
	} else {
		v.printf("%-9s %s\n%-9s %s\n", "recorded", rc, "new", nc)
		if d.Reason != "" {
			v.printf("%-9s %s\n", "why", esc(d.Reason))
		}
	}
	if f := rec.Footer; f != nil {
		v.printf("%-9s ended %s, exit %d (%s)\n", "recorded", esc(strings.TrimSpace(f.Outcome+" "+f.Code)), f.Exit, esc(f.ExitClass))
	}
	return v.err
}
