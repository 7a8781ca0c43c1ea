package region

import (
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/yamlbound"
)

// Set changes values for one run, as --set does: each assignment is KEY=VALUE with KEY a
// dotted path of the schema (ca.url, password.min_length, subject.O, messages.ru.enroll_done).
//
// VALUE is read by the key's type: text as it is (no quoting needed), numbers, true/false,
// durations (90s, 5m), and a list or section in YAML flow style (validity=[{id: 1y, years: 1}]).
// A relative ca.roots is relative to the current folder, as a path typed in a shell is.
//
// All assignments are applied, then the region is checked as a whole, so two keys that must
// agree (key.type=ec and key.curve=P-384) can be set in either order. On error the region is
// unchanged and the error is an Errors naming each --set key that is wrong.
func (r *Region) Set(assignments ...string) error {
	c := r.clone()
	var errs Errors
	for _, a := range assignments {
		key, value, ok := strings.Cut(a, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			errs = append(errs, &Error{File: setFile, Msg: fmt.Sprintf("expected KEY=VALUE, such as ca.url=https://127.0.0.1:8443, got %q", a)})
			continue
		}
		errs = append(errs, c.assign(reflect.ValueOf(c).Elem(), strings.Split(key, "."), "", value)...)
	}
	if len(errs) == 0 {
		if p := c.pos["ca.roots"]; p.file == setFile && c.CA.Roots != "" && !filepath.IsAbs(c.CA.Roots) {
			abs, err := filepath.Abs(c.CA.Roots)
			if err != nil {
				errs = append(errs, &Error{File: setFile, Key: "ca.roots", Msg: err.Error()})
			}
			c.CA.Roots = abs // a later chdir must not change which file it is
		}
	}
	if len(errs) == 0 {
		errs = c.validate()
	}
	if len(errs) > 0 {
		return errs
	}
	*r = *c
	return nil
}

// assign follows segs down from v (whose path is key) and decodes value into what it reaches.
func (r *Region) assign(v reflect.Value, segs []string, key, value string) Errors {
	if len(segs) == 0 {
		return r.assignValue(v, key, value)
	}
	seg := segs[0]
	sub := join(key, seg)
	fail := func(k, format string, args ...any) Errors {
		return Errors{{File: setFile, Key: k, Msg: fmt.Sprintf(format, args...)}}
	}
	if seg == "" {
		return fail(key, "a key has no empty parts: write it like ca.url")
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Struct && !isLeaf(t):
		fields := schemaFields(t)
		f, ok := findField(fields, seg)
		if !ok {
			return fail(sub, "%s", unknownKey(seg, key, fields))
		}
		fv := v.Field(f.index)
		if f.whole && len(segs) == 1 {
			fv.Set(reflect.Zero(fv.Type()))
			r.forget(sub)
		}
		return r.assign(fv, segs[1:], sub, value)
	case t.Kind() == reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		ev := reflect.New(t.Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(seg)); old.IsValid() {
			ev.Set(old)
		}
		if errs := r.assign(ev, segs[1:], sub, value); len(errs) > 0 {
			return errs
		}
		v.SetMapIndex(reflect.ValueOf(seg), ev)
		return nil
	case t.Kind() == reflect.Slice:
		return fail(key, "is a list: give it whole in YAML flow style, e.g. --set '%s=[{...}, {...}]'", key)
	default:
		return fail(key, "is a single value: it has no %q under it", seg)
	}
}

// assignValue decodes one --set value into v through the same decoder as the files, so the
// same types are accepted and the same errors given.
func (r *Region) assignValue(v reflect.Value, key, value string) Errors {
	var n *yaml.Node
	if v.Kind() == reflect.String || v.Type() == reflect.TypeFor[Pattern]() {
		// Text is taken as typed: a PIN 0123 or a pattern starting with { is not YAML here.
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	} else {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
			_, msg := syntaxLine(err)
			return Errors{{File: setFile, Key: key, Msg: fmt.Sprintf("%q cannot be read: %s", value, msg)}}
		}
		if err := yamlbound.Check(setFile, &doc, yamlbound.Config); err != nil {
			return Errors{{File: setFile, Key: key, Msg: "the value, with its aliases expanded, is far larger than a real one"}}
		}
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
		if len(doc.Content) > 0 {
			n = doc.Content[0]
		}
	}
	d := &decoder{r: r, file: setFile}
	d.value(n, v, key, 0)
	for _, e := range d.errs {
		e.Line = 0 // lines inside a one-line value only confuse
	}
	return d.errs
}

// isLeaf reports whether a struct type is one value (a pattern, an attribute value, a
// duration) rather than a section.
func isLeaf(t reflect.Type) bool {
	return t == durationType || reflect.PointerTo(t).Implements(decoderType)
}

// clone copies the region deeply, so Set can work on the copy and drop it on error.
func (r *Region) clone() *Region {
	c := deepCopy(reflect.ValueOf(*r)).Interface().(Region)
	c.pos = maps.Clone(r.pos)
	return &c
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			m.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v) // unexported fields (compiled patterns, the tree) are shared: never mutated
		for i := 0; i < v.NumField(); i++ {
			if c.Field(i).CanSet() {
				c.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return c
	}
	return v
}

// Keys lists the keys Set accepts, as dotted paths; NAME, LANG and KEY stand for a name of
// your choice, a language and a message key.
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, key string)
	walk = func(t reflect.Type, key string) {
		switch {
		case t.Kind() == reflect.Struct && !isLeaf(t):
			for _, f := range schemaFields(t) {
				walk(t.Field(f.index).Type, join(key, f.name))
			}
		case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Map:
			walk(t.Elem(), join(key, "LANG"))
		case t.Kind() == reflect.Map && strings.HasPrefix(key, "messages."):
			out = append(out, key+".KEY")
		case t.Kind() == reflect.Map:
			out = append(out, key+".NAME")
		default:
			out = append(out, key)
		}
	}
	walk(reflect.TypeFor[Region](), "")
	return out
}
