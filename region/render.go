package region

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Typed placeholders. A plain {name} is replaced by its value as it is; a typed one says how
// to render the value in the catalog's language:
//
//	{seconds|plural|one=секунду|few=секунды|many=секунд}  the form for the number (CLDR rules)
//	{date|date}      a time (RFC 3339 text or a Unix time) as a local date and time
//	{until|day}      a time as a local date only
//	{wait|duration}  a number of seconds (or a Go duration such as 1m30s) as "1 min 30 s"
//
// A plural form may hold # for the number: {n|plural|one=# try|other=# tries}. Forms are
// separated by |; a form's text cannot hold |, { or }. The forms each language needs are
// pluralForms (CheckCatalogs reports a missing or unknown one): ru one, few, many (other,
// for fractions, is optional); kk and en one, other.

// LangKey is the entry of a catalog made by Catalog that names its language, so that a
// text rendered from it picks that language's plural rules and date words. It is not a
// message key (those are snake_case), so no catalog or override can set it.
const LangKey = "_lang"

// pluralForms are the CLDR plural categories of integers each language distinguishes.
var pluralForms = map[string][]string{
	"ru": {"one", "few", "many"},
	"kk": {"one", "other"},
	"en": {"one", "other"},
}

// optionalForms may be given besides the required ones.
var optionalForms = map[string][]string{"ru": {"other"}}

var placeholderTypes = []string{"plural", "date", "day", "duration"}

// pluralCategory is the CLDR cardinal category of n in lang. Only the integer rules matter:
// catalogs count seconds, minutes and tries; a fraction is "other" (ru) or "other" (kk, en).
func pluralCategory(lang string, n float64) string {
	if n != math.Trunc(n) {
		return "other"
	}
	i := int64(math.Abs(n))
	switch lang {
	case "ru":
		switch {
		case i%10 == 1 && i%100 != 11:
			return "one"
		case i%10 >= 2 && i%10 <= 4 && (i%100 < 12 || i%100 > 14):
			return "few"
		default:
			return "many"
		}
	default: // kk and en: one is exactly 1
		if i == 1 {
			return "one"
		}
		return "other"
	}
}

// spec is a placeholder's type and, for plural, its forms.
type spec struct {
	name, typ string
	forms     map[string]string
	order     []string // the forms as written, for checks
}

func parseSpec(inner string) (spec, error) {
	parts := strings.Split(inner, "|")
	s := spec{name: parts[0]}
	if len(parts) == 1 {
		return s, nil
	}
	s.typ = parts[1]
	if !slices.Contains(placeholderTypes, s.typ) {
		return s, fmt.Errorf("{%s|%s}: unknown placeholder type %q: use plural, date, day or duration", s.name, s.typ, s.typ)
	}
	if s.typ != "plural" {
		if len(parts) > 2 {
			return s, fmt.Errorf("{%s|%s}: a %s placeholder takes no forms", s.name, s.typ, s.typ)
		}
		return s, nil
	}
	s.forms = map[string]string{}
	for _, f := range parts[2:] {
		cat, text, ok := strings.Cut(f, "=")
		cat = strings.TrimSpace(cat)
		if !ok || cat == "" {
			return s, fmt.Errorf("{%s|plural}: form %q is not category=text", s.name, f)
		}
		if _, dup := s.forms[cat]; dup {
			return s, fmt.Errorf("{%s|plural}: form %s given twice", s.name, cat)
		}
		s.forms[cat] = text
		s.order = append(s.order, cat)
	}
	return s, nil
}

// checkForms reports what is wrong with text's typed placeholders in lang: an unknown type,
// a plural missing a form lang needs, or naming a category lang does not have.
func checkForms(lang, text string) []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(text, -1) {
		s, err := parseSpec(m[1] + m[2])
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		if s.typ != "plural" {
			continue
		}
		need := pluralForms[lang]
		for _, c := range need {
			if _, ok := s.forms[c]; !ok {
				out = append(out, fmt.Sprintf("{%s|plural} lacks the form %s: %s needs %s", s.name, c, lang, strings.Join(need, ", ")))
			}
		}
		for _, c := range s.order {
			if !slices.Contains(need, c) && !slices.Contains(optionalForms[lang], c) {
				out = append(out, fmt.Sprintf("{%s|plural} has the form %s, which %s does not use (it uses %s)", s.name, c, lang, strings.Join(need, ", ")))
			}
		}
	}
	return out
}

// FormatIn fills text's placeholders from args, rendering typed ones in lang. A placeholder
// args lacks stays as it is, so a forgotten value shows in the output (and in golden tests)
// instead of vanishing; so does a value a typed placeholder cannot read.
func FormatIn(lang, text string, args map[string]any) string {
	return placeholderRE.ReplaceAllStringFunc(text, func(m string) string {
		s, err := parseSpec(m[1 : len(m)-1])
		if err != nil {
			return m
		}
		v, ok := args[s.name]
		if !ok {
			return m
		}
		switch s.typ {
		case "plural":
			n, ok := number(v)
			if !ok {
				return m
			}
			form, ok := s.forms[pluralCategory(lang, n)]
			if !ok {
				form, ok = s.forms["other"]
			}
			if !ok {
				return m
			}
			return strings.ReplaceAll(form, "#", formatNumber(n))
		case "date", "day":
			t, ok := timeOf(v)
			if !ok {
				return fmt.Sprint(v)
			}
			return localDate(lang, t.Local(), s.typ == "date")
		case "duration":
			d, ok := durationOf(v)
			if !ok {
				return fmt.Sprint(v)
			}
			return shortDuration(lang, d)
		}
		if n, ok := v.(float64); ok {
			return formatNumber(n)
		}
		return fmt.Sprint(v)
	})
}

// Text renders catalog's message key with args, in the catalog's language (LangKey); a key
// the catalog lacks renders as the key itself, which a test or a person can report.
func Text(catalog map[string]string, key string, args map[string]any) string {
	text, ok := catalog[key]
	if !ok {
		return key
	}
	return FormatIn(catalog[LangKey], text, args)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

func formatNumber(n float64) string {
	if n == math.Trunc(n) && math.Abs(n) < 1e15 {
		return strconv.FormatInt(int64(n), 10)
	}
	return strconv.FormatFloat(n, 'f', -1, 64)
}

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		for _, layout := range []string{time.RFC3339Nano, time.RFC3339} {
			if p, err := time.Parse(layout, t); err == nil {
				return p, true
			}
		}
	}
	if n, ok := number(v); ok {
		if _, isString := v.(string); !isString {
			return time.Unix(int64(n), 0), true
		}
	}
	return time.Time{}, false
}

func durationOf(v any) (time.Duration, bool) {
	switch d := v.(type) {
	case time.Duration:
		return d, true
	case string:
		if p, err := time.ParseDuration(d); err == nil {
			return p, true
		}
	}
	if n, ok := number(v); ok {
		return time.Duration(n * float64(time.Second)), true
	}
	return 0, false
}

var months = map[string][12]string{
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
	// Genitive, as a date says it: 4 декабря.
	"ru": {"января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября", "декабря"},
	"kk": {"қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан"},
}

// localDate is t as people write dates in lang: 4 December 2026, 18:56; 4 декабря 2026 г.,
// 18:56; 2026 жылғы 4 желтоқсан, 18:56.
func localDate(lang string, t time.Time, withTime bool) string {
	m, ok := months[lang]
	if !ok {
		m = months["en"]
	}
	month := m[t.Month()-1]
	var day string
	switch lang {
	case "ru":
		day = fmt.Sprintf("%d %s %d г.", t.Day(), month, t.Year())
	case "kk":
		day = fmt.Sprintf("%d жылғы %d %s", t.Year(), t.Day(), month)
	default:
		day = fmt.Sprintf("%d %s %d", t.Day(), month, t.Year())
	}
	if !withTime {
		return day
	}
	return day + ", " + t.Format("15:04")
}

var durationUnits = map[string][3]string{
	"en": {"h", "min", "s"},
	"ru": {"ч", "мин", "с"},
	"kk": {"сағ", "мин", "с"},
}

// shortDuration is d in abbreviated units (1 min 30 s, 1 мин 30 с): abbreviations read the
// same in every grammatical case, which a sentence around them may need.
func shortDuration(lang string, d time.Duration) string {
	u, ok := durationUnits[lang]
	if !ok {
		u = durationUnits["en"]
	}
	secs := int64(math.Ceil(d.Seconds()))
	if secs < 0 {
		secs = 0
	}
	h, m, s := secs/3600, secs%3600/60, secs%60
	var parts []string
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", h, u[0]))
	}
	if m > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", m, u[1]))
	}
	if s > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d %s", s, u[2]))
	}
	return strings.Join(parts, " ")
}
