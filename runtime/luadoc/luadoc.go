// Package luadoc owns what is generated for script authors from the module registry:
// LuaLS definition files for editors, the Markdown reference of every module function,
// and the luacheck standard that knows the sandbox's globals and the modules' fields.
// Everything is derived from runtime.Module values, so the generated files can only say
// what the bindings register.
package luadoc

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tokenrun/tokenrun/runtime"
)

// param is one "name: type" item of a Func's Args or Returns.
type param struct {
	name     string
	typ      string // LuaLS type without the optional mark; "any" when the item gives none
	optional bool   // "name?: type" or "name: type?"
	variadic bool   // "...: type"
}

// parseSig splits "pin: string, opts?: table" into items. Signatures are written by hand
// in the bindings, so anything unexpected is kept as-is rather than rejected: the
// registry validates what runs, this only renders it.
func parseSig(sig string) []param {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return nil
	}
	var out []param
	for _, item := range strings.Split(sig, ",") {
		name, typ, _ := strings.Cut(strings.TrimSpace(item), ":")
		p := param{name: strings.TrimSpace(name), typ: strings.TrimSpace(typ)}
		if strings.HasPrefix(p.name, "...") {
			p.name, p.variadic = "...", true
		}
		if strings.HasSuffix(p.name, "?") {
			p.name, p.optional = strings.TrimSuffix(p.name, "?"), true
		}
		if strings.HasSuffix(p.typ, "?") {
			p.typ, p.optional = strings.TrimSuffix(p.typ, "?"), true
		}
		if p.typ == "" {
			p.typ = "any"
		}
		out = append(out, p)
	}
	return out
}

func since(f runtime.Func) int {
	if f.Since == 0 {
		return 1
	}
	return f.Since
}

// codeRe matches the error codes a Doc names (PIN_INCORRECT, CA_PENDING): upper-case
// words joined by underscores, which no other text in the docs uses.
var codeRe = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)

// Codes returns the error codes f's Doc names, sorted. The Doc is the one place a
// binding documents its expected failures, so the reference reads them from there.
func Codes(f runtime.Func) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range codeRe.FindAllString(f.Doc, -1) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

func sortedFuncs(fs []runtime.Func) []runtime.Func {
	out := append([]runtime.Func(nil), fs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// luaLiteral renders a module constant for a definition file.
func luaLiteral(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case bool, int, int64, float64:
		return fmt.Sprint(v)
	}
	return "{}"
}
