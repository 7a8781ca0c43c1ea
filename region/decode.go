package region

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/yamlbound"
)

// pos is where a key was given; seq orders assignments so that a check involving two keys
// blames the one changed last.
type pos struct {
	file string
	line int
	seq  int
}

// setFile is the pseudo-file of values given with --set.
const setFile = "--set"

// nodeDecoder is a schema type that reads itself from a node; it returns a problem or "".
type nodeDecoder interface {
	decodeNode(n *yaml.Node) string
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	decoderType  = reflect.TypeFor[nodeDecoder]()
)

// decoder walks a YAML node tree into the Region, checking keys and types against the
// struct tags, and records where each key was given.
type decoder struct {
	r    *Region
	file string
	errs Errors
}

func (d *decoder) fail(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// decodeFile merges one region file into r.
func (r *Region) decodeFile(file string) Errors {
	d := &decoder{r: r, file: file}
	data, err := readfile.ReadFS(r.fsys, file, readfile.Region)
	if err != nil {
		d.fail(0, "", "%v", err)
		return d.errs
	}
	return r.decodeData(file, data)
}

// decodeData merges the text of one region file into r.
func (r *Region) decodeData(file string, data []byte) Errors {
	d := &decoder{r: r, file: file}
	if int64(len(data)) > readfile.Region.Max {
		d.fail(0, "", "%s, more than the %s a region file may hold", readfile.Size(int64(len(data))), readfile.Size(readfile.Region.Max))
		return d.errs
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := syntaxLine(err)
		d.fail(line, "", "%s (the file is not valid YAML)", msg)
		return d.errs
	}
	// The decoder follows aliases: bound the document as it will see it before it does.
	var be *yamlbound.Error
	if err := yamlbound.Check(file, &doc, yamlbound.Config); errors.As(err, &be) {
		d.fail(be.Line, "", "%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("%s:%d: ", file, be.Line)))
		return d.errs
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty or only comments: nothing changes
	}
	d.value(doc.Content[0], reflect.ValueOf(r).Elem(), "", doc.Content[0].Line)
	return d.errs
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxLine takes the line out of a yaml.v3 syntax error so it reads like ours.
func syntaxLine(err error) (int, string) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(err.Error(), "yaml: ")
}

// value decodes n into v (addressable), key being v's dotted path; line is where the key was
// written. A problem is recorded and v left as it was.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string, line int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if key != "" {
		d.r.mark(key, d.file, line)
	}
	t := v.Type()
	if reflect.PointerTo(t).Implements(decoderType) {
		if msg := v.Addr().Interface().(nodeDecoder).decodeNode(n); msg != "" {
			d.fail(n.Line, key, "%s", msg)
		}
		return
	}
	if t == durationType {
		s, ok := scalarOf(n, "")
		dur, err := time.ParseDuration(s)
		if !ok || err != nil {
			d.fail(n.Line, key, "expected a duration such as 90s, 5m or 1h30m, got %s", describe(n))
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// Any scalar is text, taken as written: an unquoted PIN such as 0123 stays "0123".
		switch {
		case n.Kind != yaml.ScalarNode:
			d.fail(n.Line, key, "expected text, got %s", describe(n))
		case n.ShortTag() == "!!null":
			v.SetString("")
		default:
			v.SetString(n.Value)
		}
	case reflect.Int:
		s, ok := scalarOf(n, "!!int")
		i, err := parseInt(s)
		if !ok || err != nil {
			d.fail(n.Line, key, "expected a whole number, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint64:
		s, ok := scalarOf(n, "!!int")
		u, err := parseUint(s)
		if !ok || err != nil {
			d.fail(n.Line, key, "expected a number from 0 to 2^53 (hex like 0x80000001 is fine), got %s", describe(n))
			return
		}
		v.SetUint(u)
	case reflect.Bool:
		var b bool
		if _, ok := scalarOf(n, "!!bool"); !ok || n.Decode(&b) != nil {
			d.fail(n.Line, key, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Struct:
		d.section(n, v, key)
	case reflect.Slice:
		d.list(n, v, key)
	case reflect.Map:
		d.mapping(n, v, key)
	default:
		panic(fmt.Sprintf("region: schema field %s has unsupported type %s", key, t)) // a bug in this package
	}
}

func (d *decoder) section(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		what := "a section of key: value lines"
		if key == "" {
			what = "key: value lines at the top of the file"
		}
		d.fail(n.Line, key, "expected %s, got %s", what, describe(n))
		return
	}
	fields := schemaFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name := kn.Value
		sub := join(key, name)
		if first, dup := seen[name]; dup {
			d.fail(kn.Line, sub, "given twice (first on line %d): keep one", first)
			continue
		}
		seen[name] = kn.Line
		f, ok := findField(fields, name)
		if !ok {
			d.fail(kn.Line, sub, "%s", unknownKey(name, key, fields))
			continue
		}
		fv := v.Field(f.index)
		if f.whole {
			// Replaced, not merged: forget the old value and where its parts came from.
			fv.Set(reflect.Zero(fv.Type()))
			d.r.forget(sub)
		}
		d.value(vn, fv, sub, kn.Line)
	}
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, key string) {
	if n.ShortTag() == "!!null" {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		d.r.forget(key)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, key, "expected a list (lines starting with -), got %s", describe(n))
		return
	}
	// A list replaces the one before it whole: merging items by position would pair up
	// unrelated entries.
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	d.r.forget(key)
	for i, en := range n.Content {
		d.value(en, out.Index(i), fmt.Sprintf("%s[%d]", key, i+1), en.Line)
	}
	v.Set(out)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	if n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, key, "expected name: value lines, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		sub := join(key, kn.Value)
		if kn.Kind != yaml.ScalarNode || kn.Value == "" {
			d.fail(kn.Line, key, "expected a name before the colon, got %s", describe(kn))
			continue
		}
		if first, dup := seen[kn.Value]; dup {
			d.fail(kn.Line, sub, "given twice (first on line %d): keep one", first)
			continue
		}
		seen[kn.Value] = kn.Line
		ev := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(kn.Value)); old.IsValid() {
			ev.Set(old) // nested maps (messages.ru) merge into what is there
		}
		before := len(d.errs)
		d.value(vn, ev, sub, kn.Line)
		if len(d.errs) == before {
			v.SetMapIndex(reflect.ValueOf(kn.Value), ev)
		}
	}
}

// scalarOf is n's text when n is a scalar with a value (of YAML type tag, unless tag is "").
func scalarOf(n *yaml.Node, tag string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || tag != "" && n.ShortTag() != tag {
		return "", false
	}
	return n.Value, true
}

// describe names what a node holds, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an empty value"
}

// parseInt reads a YAML integer: decimal, or 0x/0o/0b prefixed. A leading zero is decimal
// (yaml.v3 would read 010 as octal 8, which nobody writing a length means).
func parseInt(s string) (int64, error) {
	s = strings.ReplaceAll(s, "_", "")
	neg := strings.HasPrefix(s, "-")
	u, err := parseUint(strings.TrimLeft(s, "+-"))
	if err != nil || u > math.MaxInt32 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// parseUint reads a non-negative YAML integer up to 2^53, so it survives the trip to Lua.
func parseUint(s string) (uint64, error) {
	s = strings.ReplaceAll(s, "_", "")
	base := 10
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			s = s[2:]
		}
	}
	u, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), base, 64)
	if err != nil {
		return 0, err
	}
	if u > maxExact {
		return 0, fmt.Errorf("%d is above 2^53", u)
	}
	return u, nil
}

// field is one schema key of a struct.
type field struct {
	name  string
	index int
	whole bool
}

// schemaFields lists the YAML keys of a schema struct in declaration order.
func schemaFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		out = append(out, field{name: name, index: i, whole: sf.Tag.Get("region") == "whole"})
	}
	return out
}

func findField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// unknownKey says a key is not in the schema, suggests the nearest known one, and lists them.
func unknownKey(name, parent string, fields []field) string {
	known := make([]string, len(fields))
	for i, f := range fields {
		known[i] = f.name
	}
	where := ""
	if parent != "" {
		where = " in " + parent
	}
	msg := fmt.Sprintf("unknown key %q", name)
	if s := nearest(name, known); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	return msg + fmt.Sprintf(" (known%s: %s)", where, strings.Join(known, ", "))
}

// nearest is the candidate within a small edit distance of s, if there is one.
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// mark records where key was given.
func (r *Region) mark(key, file string, line int) {
	r.seq++
	r.pos[key] = pos{file: file, line: line, seq: r.seq}
}

// forget drops the positions of everything under key, when key is replaced whole: a part
// the new value lacks must not still count as given.
func (r *Region) forget(key string) {
	for k := range r.pos {
		if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			delete(r.pos, k)
		}
	}
}

// given reports whether key was written in a file or with --set (the zero value of a key
// nobody wrote is not a choice someone made).
func (r *Region) given(key string) bool {
	_, ok := r.pos[key]
	return ok
}

// latest is whichever of keys was given last: the one a check between them should blame.
func (r *Region) latest(keys ...string) string {
	best := keys[0]
	for _, k := range keys[1:] {
		if r.pos[k].seq > r.pos[best].seq {
			best = k
		}
	}
	return best
}

// errAt makes an Error at where key was given.
func (r *Region) errAt(key, format string, args ...any) *Error {
	p := r.where(key)
	return &Error{File: p.file, Line: p.line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// errUnder is errAt for a key that is only a path to others (messages.xx, given by --set
// messages.xx.done=...): it blames the key under it given last, not the parent where the
// section began.
func (r *Region) errUnder(key, format string, args ...any) *Error {
	p, ok := r.pos[key]
	if !ok {
		for k, q := range r.pos {
			if strings.HasPrefix(k, key+".") && (!ok || q.seq > p.seq) {
				p, ok = q, true
			}
		}
	}
	if !ok {
		p = r.where(key)
	}
	return &Error{File: p.file, Line: p.line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// where is where key was given, or else its nearest given parent (validity[2] for a missing
// validity[2].id), or else the region's own file.
func (r *Region) where(key string) pos {
	for k := key; k != ""; {
		if p, ok := r.pos[k]; ok {
			return p
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return pos{file: r.Source}
}

// sortedKeys returns m's keys sorted, for deterministic errors and output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
