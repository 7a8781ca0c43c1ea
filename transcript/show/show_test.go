package show

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/scripts"
)

const small = `{"kind":"header","format":2,"command":"run","procedure":"x","region":"default","language":"en","tokens":[{"label":"evil\u001b[2J\u202e","serial":"s1"}],"start":"2026-12-04T10:00:00Z"}
{"kind":"call","seq":1,"name":"ui.say","module":"ui","func":"say","args":["Token: KAZTOKEN (s1).",{"key":"token_found","args":{"token":"KAZTOKEN (s1)"}}],"results":[],"offset_us":10,"duration_us":1}
{"kind":"call","seq":2,"name":"ui.say","module":"ui","func":"say","args":["line one\nforged\u001b[31m"],"results":[],"offset_us":20,"duration_us":1}
{"kind":"call","seq":3,"name":"ui.confirm","module":"ui","func":"confirm","args":[{"id":"confirm","label":"Go?"}],"results":[true],"prompt":{"id":"confirm","kind":"confirm","answer":true},"offset_us":30,"duration_us":1}
{"kind":"call","seq":4,"name":"token.Token:login","module":"token","type":"token.Token","func":"login","args":["<secret>",{"so":false}],"results":[null,{"code":"PIN_INCORRECT","message":"login: PIN incorrect","retries_left":2}],"offset_us":40,"duration_us":1500}
{"kind":"footer","outcome":"error","code":"PIN_INCORRECT","exit":4,"exit_class":"token","duration_us":2000,"calls":4}
`

func TestRenderKeysEscapesAndWords(t *testing.T) {
	rec, err := Read(strings.NewReader(small))
	require.NoError(t, err)
	o, err := ForLang(scripts.FS, rec.Header, "ru")
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, RenderRecord(&b, rec, o, len(rec.Calls)))
	out := b.String()
	ru, err := region.Catalog(scripts.FS, "ru", nil)
	require.NoError(t, err)
	assert.Contains(t, out, region.Text(ru, "token_found", map[string]any{"token": "KAZTOKEN (s1)"}), "re-rendered from the key the call carries")
	assert.Contains(t, out, region.Text(ru, "answer_yes", nil))
	assert.NotContains(t, out, "\x1b")
	assert.NotContains(t, out, "\u202e")
	assert.Contains(t, out, `evil\x1b[2J\u202e`)
	assert.Contains(t, out, "forged\\x1b[31m", "the lines a script wrote stay, controls are escaped")
	assert.Contains(t, out, "user login refused (1 ms): PIN_INCORRECT, 2 tries left")
	assert.Contains(t, out, "verdict: error PIN_INCORRECT, exit 4 (token)")

	// Up to a point: no verdict.
	b.Reset()
	require.NoError(t, RenderRecord(&b, rec, o, 2))
	assert.NotContains(t, b.String(), "verdict")
	assert.NotContains(t, b.String(), "login")
}

func TestReadRefusesNonTranscript(t *testing.T) {
	_, err := Read(strings.NewReader(`{"kind":"call","seq":1}` + "\n"))
	assert.ErrorContains(t, err, "not a header")
	_, err = Read(strings.NewReader(""))
	assert.Error(t, err)
	_, err = Read(strings.NewReader("{not json\n"))
	assert.Error(t, err)
}
