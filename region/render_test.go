package region

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestPluralCategory(t *testing.T) {
	for _, c := range []struct {
		lang string
		n    float64
		want string
	}{
		{"ru", 1, "one"}, {"ru", 21, "one"}, {"ru", 11, "many"}, {"ru", 2, "few"}, {"ru", 4, "few"},
		{"ru", 12, "many"}, {"ru", 22, "few"}, {"ru", 5, "many"}, {"ru", 0, "many"}, {"ru", 111, "many"},
		{"ru", 1.5, "other"}, {"en", 1, "one"}, {"en", 2, "other"}, {"en", 0, "other"}, {"kk", 1, "one"}, {"kk", 21, "other"},
	} {
		if got := pluralCategory(c.lang, c.n); got != c.want {
			t.Errorf("pluralCategory(%s, %v) = %s, want %s", c.lang, c.n, got, c.want)
		}
	}
}

func TestFormatIn(t *testing.T) {
	ru := "через {seconds} {seconds|plural|one=секунду|few=секунды|many=секунд}"
	for n, want := range map[float64]string{1: "через 1 секунду", 3: "через 3 секунды", 5: "через 5 секунд", 11: "через 11 секунд", 21: "через 21 секунду"} {
		if got := FormatIn("ru", ru, map[string]any{"seconds": n}); got != want {
			t.Errorf("ru %v: %q, want %q", n, got, want)
		}
	}
	en := "up to {minutes|plural|one=# minute|other=# minutes}"
	if got := FormatIn("en", en, map[string]any{"minutes": 1}); got != "up to 1 minute" {
		t.Errorf("en: %q", got)
	}
	if got := FormatIn("en", en, map[string]any{"minutes": 5.0}); got != "up to 5 minutes" {
		t.Errorf("en: %q", got)
	}
	if got := FormatIn("en", en, nil); got != en {
		t.Errorf("a missing value must stay visible: %q", got)
	}
	at := time.Date(2026, 12, 4, 18, 56, 0, 0, time.Local).Format(time.RFC3339)
	for lang, want := range map[string]string{"en": "4 December 2026, 18:56", "ru": "4 декабря 2026 г., 18:56", "kk": "2026 жылғы 4 желтоқсан, 18:56"} {
		if got := FormatIn(lang, "{d|date}", map[string]any{"d": at}); got != want {
			t.Errorf("%s date: %q, want %q", lang, got, want)
		}
	}
	if got := FormatIn("ru", "{d|day}", map[string]any{"d": at}); got != "4 декабря 2026 г." {
		t.Errorf("ru day: %q", got)
	}
	if got := FormatIn("kk", "{w|duration}", map[string]any{"w": 90}); got != "1 мин 30 с" {
		t.Errorf("kk duration: %q", got)
	}
	if got := FormatIn("en", "{w|duration}", map[string]any{"w": "2h"}); got != "2 h" {
		t.Errorf("en duration: %q", got)
	}
}

func TestCheckCatalogsPluralForms(t *testing.T) {
	fsys := fstest.MapFS{
		"messages/en.yaml": {Data: []byte("wait: \"{s|plural|one=# second|other=# seconds}\"\n")},
		"messages/ru.yaml": {Data: []byte("wait: \"{s|plural|one=# секунду|many=# секунд}\"\n")},
		"messages/kk.yaml": {Data: []byte("wait: \"{s|plural|one=# секунд|few=# x|other=# секунд}\"\n")},
	}
	errs := CheckCatalogs(fsys)
	var all []string
	for _, e := range errs {
		all = append(all, e.Error())
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"messages/ru.yaml:1: wait: {s|plural} lacks the form few", "messages/kk.yaml:1: wait: {s|plural} has the form few"} {
		if !strings.Contains(text, want) {
			t.Errorf("CheckCatalogs:\n%s\nwant %q", text, want)
		}
	}
	if len(errs) != 2 {
		t.Errorf("want 2 problems, got:\n%s", text)
	}
}
