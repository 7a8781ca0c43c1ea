package replay

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/transcript"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name      string
		rec, got  any
		wantMatch bool
	}{
		{"secret matches anything", "<secret>", map[string]any{"a": 1.0}, true},
		{"secret inside a table", map[string]any{"pin": "<secret>", "so": false}, map[string]any{"pin": "x", "so": false}, true},
		{"other field", map[string]any{"so": false}, map[string]any{"so": true}, false},
		{"extra field", map[string]any{"so": false}, map[string]any{"so": false, "x": 1.0}, false},
		{"arrays", []any{"a", nil, 2.0}, []any{"a", nil, 2.0}, true},
		{"array length", []any{"a"}, []any{"a", "b"}, false},
		{"bytes", map[string]any{"$bytes": "AAE="}, map[string]any{"$bytes": "AAE="}, true},
		{"number vs string", 1.0, "1", false},
		{"a new secret is no wildcard", "x", "<secret>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.wantMatch, Match(tt.rec, tt.got)) })
	}
}

func TestRead(t *testing.T) {
	const h = `{"kind":"header","format":1,"procedure":"p","version":"1.0.0"}` + "\n"
	const c1 = `{"kind":"call","seq":1,"name":"ui.say","module":"ui","func":"say","args":["hi"],"results":[]}` + "\n"
	const f = `{"kind":"footer","outcome":"ok","exit":0}` + "\n"
	rec, err := Read(strings.NewReader(h + c1 + f))
	require.NoError(t, err)
	assert.Equal(t, "p", rec.Header.Procedure)
	require.Len(t, rec.Calls, 1)
	assert.Equal(t, "ui.say", rec.Calls[0].Name)
	assert.Equal(t, "ok", rec.Footer.Outcome)

	for text, want := range map[string]string{
		"":                            "empty",
		h + c1:                        "no footer",
		c1 + f:                        "want a header",
		h + f + c1:                    "after the footer",
		h + h + f:                     "second header",
		h + "[]\n" + f:                "line 2",
		h + `{"kind":"x"}` + "\n" + f: `unknown kind "x"`,
		h + c1 + c1 + f:               "seq 1 after seq 1",
	} {
		_, err := Read(strings.NewReader(text))
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want)
	}
}

// TestSearch: secrets before the divergence are guessed, latest first, within the limit;
// the replay that came furthest is reported.
func TestSearch(t *testing.T) {
	rec := &Record{Calls: []transcript.Call{
		{Seq: 1, Name: "ui.secret", Results: []any{"<secret>"}},
		{Seq: 2, Name: "ui.secret", Results: []any{"<secret>"}},
		{Seq: 3, Name: "ui.say"},
	}}
	var tried []map[uint64]string
	err := Search(rec, []string{"", "0000"}, 100, func(p *Player) error {
		tried = append(tried, p.secrets)
		if p.secrets[1] == "0000" && p.secrets[2] == "" {
			return nil
		}
		return &Divergence{Seq: 3}
	})
	require.NoError(t, err)
	require.NotEmpty(t, tried)
	assert.Equal(t, map[uint64]string{}, tried[0], "placeholders first")
	assert.Equal(t, map[uint64]string{2: ""}, tried[1], "the latest secret first")

	n := 0
	err = Search(rec, []string{""}, 3, func(*Player) error { n++; return &Divergence{Seq: uint64(n) + 2} })
	var d *Divergence
	require.ErrorAs(t, err, &d)
	assert.Equal(t, 3, n, "the limit")
	assert.Equal(t, uint64(5), d.Seq, "the furthest")

	// The furthest replay was not the last: it runs once more, so that what it leaves
	// behind (a reproduction token) is its own.
	tried = nil
	err = Search(rec, []string{"", "0000"}, 100, func(p *Player) error {
		tried = append(tried, p.secrets)
		if len(p.secrets) == 0 {
			return &Divergence{Seq: 3}
		}
		return &Divergence{Seq: 2}
	})
	require.ErrorAs(t, err, &d)
	assert.Equal(t, uint64(3), d.Seq)
	require.Greater(t, len(tried), 2)
	assert.Equal(t, map[uint64]string{}, tried[len(tried)-1], "the furthest replay's guesses, again")
}

// TestRecordedFields: a replayed handle's fields are the recorded ones, binary strings
// restored; a handle recorded as text alone (format 1) has none.
func TestRecordedFields(t *testing.T) {
	const raw = `{"bits":2048,"id":"0a0b","der":{"$bytes":"AAE="}}`
	want := map[string]any{"bits": 2048.0, "id": "0a0b", "der": "\x00\x01"}
	assert.Equal(t, want, recordedFields(bare{raw}))
	assert.Equal(t, want, recordedFields(named{"text", raw}))
	assert.Nil(t, recordedFields(bare{}))
	assert.Equal(t, bare{raw}, bare{raw}, "equal records are the same handle")
}

// TestStartKeys: the keys on the token at the start are those the first successful
// tok:keys() listed, unless the script changed an object before it.
func TestStartKeys(t *testing.T) {
	key := func(id string) map[string]any {
		return map[string]any{"$handle": "token.Key", "type": "token.Key", "fields": map[string]any{"id": id, "type": "ec"}}
	}
	keys := func(ids ...string) transcript.Call {
		list := []any{}
		for _, id := range ids {
			list = append(list, key(id))
		}
		return transcript.Call{Name: "token.Token:keys", Results: []any{list}}
	}
	tests := []struct {
		name  string
		calls []transcript.Call
		want  []string
	}{
		{"listed", []transcript.Call{{Name: "token.Token:login"}, keys("0a", "0b"), keys("0c")}, []string{"0a", "0b"}},
		{"a failed listing is skipped", []transcript.Call{{Name: "token.Token:keys", Error: "boom"}, keys("0a")}, []string{"0a"}},
		{"generated before the listing", []transcript.Call{{Name: "token.Token:generate_key"}, keys("0a")}, nil},
		{"never listed", []transcript.Call{{Name: "token.Token:login"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range (&Record{Calls: tt.calls}).StartKeys() {
				got = append(got, f["id"].(string))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
