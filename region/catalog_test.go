package region

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShippedCatalogs fails when a key is missing in kk or ru, or a translation changed a
// placeholder: every message must exist, with the same {names}, in all three languages.
func TestShippedCatalogs(t *testing.T) {
	for _, err := range CheckCatalogs(shipped) {
		t.Error(err)
	}
}

func TestCheckCatalogsFindsGaps(t *testing.T) {
	fsys := fstest.MapFS{
		"messages/en.yaml": {Data: []byte("a: \"A {x}\"\nb: B\nc: \"C {y}\"\n")},
		"messages/ru.yaml": {Data: []byte("a: \"А {x}\"\nb: Б\nc: \"С {z}\"\n")},
		"messages/kk.yaml": {Data: []byte("a: \"А {x}\"\nd: Д\n")},
		"messages/de.yaml": {Data: []byte("a: \"A {x}\"\n")},
	}
	var got []string
	for _, err := range CheckCatalogs(fsys) {
		got = append(got, err.Error())
	}
	assert.Equal(t, []string{
		"messages/kk.yaml: b: missing: translate messages/en.yaml:2",
		"messages/kk.yaml: c: missing: translate messages/en.yaml:3",
		"messages/kk.yaml:2: d: is not in messages/en.yaml: add it there first, or remove it",
		"messages/ru.yaml:3: c: uses {z} but messages/en.yaml:3 uses {y}: placeholders are not translated",
		`messages/de.yaml: "de" is not a language the procedures speak (kk, ru, en): nothing would read this file`,
	}, got)
}

func TestCheckCatalogsBadFiles(t *testing.T) {
	tests := []struct {
		name string
		en   string
		want string
	}{
		{"not YAML", "a: [\n", "messages/en.yaml:1: did not find expected node content (the file is not valid YAML)"},
		{"not a mapping", "- a\n", "messages/en.yaml: expected key: text lines"},
		{"key not snake_case", "EnrollDone: x\n", "messages/en.yaml:1: EnrollDone: a message key is snake_case: lower-case letters, digits and _"},
		{"duplicate", "a: x\nb: y\na: z\n", "messages/en.yaml:3: a: given twice (first on line 1): keep one"},
		{"empty text", "a: \"\"\n", `messages/en.yaml:1: a: expected a text, got ""`},
		{"not a text", "a: {b: c}\n", "messages/en.yaml:1: a: expected a text, got a section (key: value lines)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckCatalogs(fstest.MapFS{"messages/en.yaml": {Data: []byte(tt.en)}})
			require.Len(t, errs, 1)
			assert.Equal(t, tt.want, errs[0].Error())
		})
	}
}

func TestCatalog(t *testing.T) {
	fsys := fstest.MapFS{
		"messages/en.yaml": {Data: []byte("a: \"A {x}\"\nb: B\nc: C\n")},
		"messages/ru.yaml": {Data: []byte("a: \"А {x}\"\nstale: S\n")}, // b and c missing: English stays
		"messages/kk.yaml": {Data: []byte("a: \"Ә {x}\"\nb: Б\nc: С\n")},
	}
	tests := []struct {
		name      string
		lang      string
		overrides map[string]map[string]string
		want      map[string]string
	}{
		{"en", "en", nil, map[string]string{"a": "A {x}", "b": "B", "c": "C"}},
		{"missing keys fall back to en; stale ones are dropped", "ru", nil, map[string]string{"a": "А {x}", "b": "B", "c": "C"}},
		{"region overrides last", "kk", map[string]map[string]string{"kk": {"b": "ББ"}, "ru": {"b": "no"}}, map[string]string{"a": "Ә {x}", "b": "ББ", "c": "С"}},
		{"an en override does not hide a translation", "kk", map[string]map[string]string{"en": {"a": "AA {x}", "c": "CC"}}, map[string]string{"a": "Ә {x}", "b": "Б", "c": "С"}},
		{"an en override shows where there is no translation", "ru", map[string]map[string]string{"en": {"c": "CC"}}, map[string]string{"a": "А {x}", "b": "B", "c": "CC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Catalog(fsys, tt.lang, tt.overrides)
			require.NoError(t, err)
			assert.Equal(t, tt.lang, got[LangKey], "the catalog names its language")
			delete(got, LangKey)
			assert.Equal(t, tt.want, got)
		})
	}

	_, err := Catalog(fsys, "de", nil)
	assert.EqualError(t, err, `language "de": use kk, ru or en`)
	_, err = Catalog(fsys, "ru", map[string]map[string]string{"ru": {"aa": "x", "a": "{y}"}, "de": {"a": "x"}})
	assert.EqualError(t, err, "messages.de: \"de\" is not a language: use kk, ru or en\n"+
		"messages.ru.a: {y} is not filled in by the procedure for this message: use {x}\n"+
		`messages.ru.aa: unknown message key "aa": did you mean "a"? (the keys are those of messages/en.yaml)`)
}

func TestRegionMessageOverrides(t *testing.T) {
	r, err := Load(fixtureTree(t), "almaty")
	require.NoError(t, err)
	kk, err := r.Catalog("")
	require.NoError(t, err, "\"\" is the region's language")
	assert.Equal(t, "Тіркеу аяқталды. Алматы филиалы: «{token_name}».", kk["enroll_done"])
	ru, err := r.Catalog("ru")
	require.NoError(t, err)
	assert.Equal(t, "Регистрация завершена. Теперь можно выбрать профиль «{token_name}» и открыть его новым паролем токена.", ru["enroll_done"])

	require.NoError(t, r.Set("messages.ru.enroll_done=Готово: «{token_name}»."))
	ru, err = r.Catalog("ru")
	require.NoError(t, err)
	assert.Equal(t, "Готово: «{token_name}».", ru["enroll_done"])
}

// TestCatalogsAreTranslated guards against a text copied instead of translated: ru and kk
// texts differ from en's; kk is Kazakh in Cyrillic, not Russian (it differs from ru and uses
// the letters Kazakh has and Russian lacks).
func TestCatalogsAreTranslated(t *testing.T) {
	en, err := Catalog(shipped, "en", nil)
	require.NoError(t, err)
	ru, err := Catalog(shipped, "ru", nil)
	require.NoError(t, err)
	kk, err := Catalog(shipped, "kk", nil)
	require.NoError(t, err)
	sameInRuAndKk := []string{"token_found"} // "Токен: {token}." is both
	kazakh := 0
	delete(en, LangKey)
	for k, text := range en {
		assert.NotEqual(t, text, ru[k], "ru %s is the English text", k)
		assert.NotEqual(t, text, kk[k], "kk %s is the English text", k)
		if !slices.Contains(sameInRuAndKk, k) {
			assert.NotEqual(t, ru[k], kk[k], "kk %s is the Russian text", k)
		}
		assert.True(t, hasCyrillic(ru[k]) && hasCyrillic(kk[k]), "%s: ru and kk are written in Cyrillic", k)
		if strings.ContainsAny(kk[k], "әғқңөұүһіӘҒҚҢӨҰҮҺІ") {
			kazakh++
		}
	}
	assert.Greater(t, kazakh, len(en)*3/4, "most Kazakh texts use Kazakh letters")
}

func hasCyrillic(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }) >= 0
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "Tries left: 3.", Format("Tries left: {retries_left}.", map[string]any{"retries_left": 3}))
	assert.Equal(t, "{a} and b", Format("{a} and {b}", map[string]any{"b": "b"}), "a missing value stays visible")
	assert.Equal(t, "{Not} {a-b}", Format("{Not} {a-b}", map[string]any{"Not": 1}), "only snake_case names are placeholders")
}
