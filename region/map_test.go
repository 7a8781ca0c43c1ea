package region

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMapDefault(t *testing.T) {
	want := map[string]any{
		"region":   "default",
		"language": "ru",
		"token": map[string]any{
			"wait": 60.0, "default_user_pin": "12345678", "default_so_pin": "87654321", "label": "KAZTOKEN",
		},
		"user_id": map[string]any{"pattern": "^[a-z]{2}[0-9]{6}_[a-z]{8}$", "example": "qq111111_qwertyui"},
		"otp_pin": map[string]any{"length": 11, "pattern": "^[A-Z0-9]+$", "uppercase": true},
		"password": map[string]any{
			"min_length": 8, "max_length": 16, "pattern": "^[A-Za-z0-9]+$", "max_sequence": 2,
		},
		"validity": []any{
			map[string]any{"id": "1y", "years": 1, "label": map[string]any{"kk": "1 жыл", "ru": "1 год", "en": "1 year"}},
			map[string]any{"id": "3y", "years": 3, "label": map[string]any{"kk": "3 жыл", "ru": "3 года", "en": "3 years"}},
		},
		"key":     map[string]any{"type": "rsa", "bits": 2048},
		"subject": map[string]any{"C": "KZ"},
		"ca": map[string]any{
			"protocol": "est", "url": "https://127.0.0.1:8443", "roots": "", "timeout": 300.0, "label_from_validity": true,
		},
		"profile": map[string]any{"default_name": ""},
	}
	assert.Equal(t, want, loadDefault(t).Map())
}

// TestMapVendorKey: the key table is what tok:generate_key takes: templates as lists of
// {type, value} with booleans, numbers and hex strings.
func TestMapVendorKey(t *testing.T) {
	r, err := Load(fixtureTree(t), "key_vendor_ok")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"type":      "vendor",
		"mechanism": uint64(0x80000001),
		"public_template": []any{
			map[string]any{"type": uint64(0x100), "value": uint64(0x80000001)},
			map[string]any{"type": uint64(0x10A), "value": true},
			map[string]any{"type": uint64(0x80000002), "value": "06082a"},
		},
		"private_template": []any{
			map[string]any{"type": uint64(0x108), "value": true},
			map[string]any{"type": uint64(0x80000003), "value": uint64(102)}, // unquoted 0102 is a number
		},
	}, r.Map()["key"])
}

func TestMapOverlayRoots(t *testing.T) {
	fsys := fixtureTree(t)
	r, err := Load(fsys, "almaty")
	require.NoError(t, err)
	m := r.Map()
	assert.Equal(t, "almaty", m["region"])
	assert.Equal(t, string(fsys["regions/almaty-roots.pem"].Data), m["ca"].(map[string]any)["roots"],
		"scripts get the PEM text, which works from an embedded tree too")
}

// TestMapIsPlainData: ctx.config must convert to Lua, which takes maps with string keys,
// lists, strings, numbers and booleans, and nothing else (no durations, no Go structs).
func TestMapIsPlainData(t *testing.T) {
	r, err := Load(fixtureTree(t), "key_vendor_ok")
	require.NoError(t, err)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[]", e)
			}
		case string, bool, int, uint64, float64:
		default:
			t.Errorf("%s is a %T", path, v)
		}
	}
	walk("config", r.Map())
	walk("config", loadDefault(t).Map())
}

func TestMapIsACopy(t *testing.T) {
	r := loadDefault(t)
	m := r.Map()
	m["subject"].(map[string]any)["C"] = "XX"
	m["validity"].([]any)[0].(map[string]any)["id"] = "zz"
	assert.Equal(t, "KZ", r.Subject["C"])
	assert.Equal(t, "1y", r.Validity[0].ID)
}
