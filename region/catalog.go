package region

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/yamlbound"
)

// Catalogs are messages/LANG.yaml in the scripts tree: flat key: text files. en is the
// reference: every key exists there first, and the other languages have exactly its keys
// and, in each text, its placeholders (CheckCatalogs). A placeholder may be typed, for plural
// forms, dates and durations rendered in the catalog's language: see render.go.

var (
	// {name} or {name|type|...}: group 1 is the name, group 2 the type and forms with their |.
	placeholderRE = regexp.MustCompile(`\{([a-z][a-z0-9_]*)((?:\|[^{}|]*)*)\}`)
	messageKeyRE  = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
)

// Catalog is the message catalog for lang, key -> text: messages/en.yaml, then the region's
// en overrides, then messages/LANG.yaml, then the region's LANG overrides. A key missing in
// LANG's catalog keeps its English text, so a half-translated catalog still says something
// (CheckCatalogs reports the gap). Overrides must name keys of the en catalog and use only
// placeholders the procedure fills.
func Catalog(fsys fs.FS, lang string, overrides map[string]map[string]string) (map[string]string, error) {
	if !slices.Contains(languages, lang) {
		return nil, fmt.Errorf("language %q: use kk, ru or en", lang)
	}
	en, _, err := readCatalog(fsys, "en")
	if err != nil {
		return nil, err
	}
	var bad []error
	for _, l := range sortedKeys(overrides) {
		if !slices.Contains(languages, l) {
			bad = append(bad, fmt.Errorf("messages.%s: %q is not a language: use kk, ru or en", l, l))
			continue
		}
		for _, k := range sortedKeys(overrides[l]) {
			if msg := checkOverride(en, k, overrides[l][k]); msg != "" {
				bad = append(bad, fmt.Errorf("messages.%s.%s: %s", l, k, msg))
			}
			for _, msg := range checkForms(l, overrides[l][k]) {
				bad = append(bad, fmt.Errorf("messages.%s.%s: %s", l, k, msg))
			}
		}
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	out := maps.Clone(en)
	maps.Copy(out, overrides["en"])
	if lang != "en" {
		cat, _, err := readCatalog(fsys, lang)
		if err != nil {
			return nil, err
		}
		for k, v := range cat {
			if _, ok := en[k]; ok { // a key en lacks is stale or misspelt: nothing asks for it
				out[k] = v
			}
		}
		maps.Copy(out, overrides[lang])
	}
	out[LangKey] = lang
	return out, nil
}

// CheckCatalogs checks the catalogs of the scripts tree fsys: each is valid YAML of snake_case
// keys and texts; kk and ru have every key of en and no other; each text has the same
// placeholders as en's; every plural placeholder has the forms its language needs (ru one,
// few, many; kk and en one, other); there is no catalog for a language the procedures do not
// speak.
func CheckCatalogs(fsys fs.FS) []error {
	en, enLines, err := readCatalog(fsys, "en")
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, k := range sortedKeys(en) {
		for _, msg := range checkForms("en", en[k]) {
			errs = append(errs, &Error{File: catalogFile("en"), Line: enLines[k], Key: k, Msg: msg})
		}
	}
	for _, lang := range languages {
		if lang == "en" {
			continue
		}
		file := catalogFile(lang)
		cat, lines, err := readCatalog(fsys, lang)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range sortedKeys(en) {
			text, ok := cat[k]
			switch {
			case !ok:
				errs = append(errs, &Error{File: file, Key: k, Msg: fmt.Sprintf("missing: translate messages/en.yaml:%d", enLines[k])})
			case !slices.Equal(placeholders(text), placeholders(en[k])):
				errs = append(errs, &Error{File: file, Line: lines[k], Key: k, Msg: fmt.Sprintf("uses %s but messages/en.yaml:%d uses %s: placeholders are not translated", braces(placeholders(text)), enLines[k], braces(placeholders(en[k])))})
			}
			if ok {
				for _, msg := range checkForms(lang, text) {
					errs = append(errs, &Error{File: file, Line: lines[k], Key: k, Msg: msg})
				}
			}
		}
		for _, k := range sortedKeys(cat) {
			if _, ok := en[k]; !ok {
				errs = append(errs, &Error{File: file, Line: lines[k], Key: k, Msg: "is not in messages/en.yaml: add it there first, or remove it"})
			}
		}
	}
	files, _ := fs.Glob(fsys, "messages/*.yaml") // constant pattern
	for _, f := range files {
		if lang := strings.TrimSuffix(path.Base(f), ".yaml"); !slices.Contains(languages, lang) {
			errs = append(errs, &Error{File: f, Msg: fmt.Sprintf("%q is not a language the procedures speak (kk, ru, en): nothing would read this file", lang)})
		}
	}
	return errs
}

func catalogFile(lang string) string { return "messages/" + lang + ".yaml" }

// readCatalog reads one catalog and the line of each key.
func readCatalog(fsys fs.FS, lang string) (map[string]string, map[string]int, error) {
	file := catalogFile(lang)
	data, err := readfile.ReadFS(fsys, file, readfile.Region)
	if err != nil {
		return nil, nil, fmt.Errorf("message catalog: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := syntaxLine(err)
		return nil, nil, &Error{File: file, Line: line, Msg: msg + " (the file is not valid YAML)"}
	}
	if err := yamlbound.Check(file, &doc, yamlbound.Config); err != nil {
		return nil, nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, &Error{File: file, Msg: "expected key: text lines"}
	}
	n := doc.Content[0]
	cat, lines := map[string]string{}, map[string]int{}
	var errs Errors
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		k := kn.Value
		switch {
		case !messageKeyRE.MatchString(k):
			errs = append(errs, &Error{File: file, Line: kn.Line, Key: k, Msg: "a message key is snake_case: lower-case letters, digits and _"})
		case lines[k] != 0:
			errs = append(errs, &Error{File: file, Line: kn.Line, Key: k, Msg: fmt.Sprintf("given twice (first on line %d): keep one", lines[k])})
		case vn.Kind != yaml.ScalarNode || vn.ShortTag() == "!!null" || strings.TrimSpace(vn.Value) == "":
			errs = append(errs, &Error{File: file, Line: kn.Line, Key: k, Msg: "expected a text, got " + describe(vn)})
		default:
			cat[k], lines[k] = vn.Value, kn.Line
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return cat, lines, nil
}

// placeholders lists the {names} in text, sorted, once each.
func placeholders(text string) []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

func braces(names []string) string {
	if len(names) == 0 {
		return "no placeholders"
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "{" + n + "}"
	}
	return strings.Join(out, ", ")
}

// Format fills text's {placeholders} from args, typed ones in English; FormatIn and Text
// render in a language.
func Format(text string, args map[string]any) string {
	return FormatIn("en", text, args)
}
