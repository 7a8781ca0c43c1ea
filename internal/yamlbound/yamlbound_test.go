package yamlbound

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// anchorBomb is the example: one anchor of keys keys, used uses times.
func anchorBomb(keys, uses int) string {
	var b strings.Builder
	b.WriteString("base: &a\n")
	for i := range keys {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString("list:\n")
	for range uses {
		b.WriteString("  - *a\n")
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	nested := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := range 9 {
		name := fmt.Sprintf("b%d", i)
		nested += fmt.Sprintf("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"ordinary", "a: 1\nb: [1, 2]\nc: &x {d: e}\nf: *x\n", ""},
		{"anchor used 3000 times, 3000 keys", anchorBomb(3000, 3000), "holds more than 100000 values and keys"},
		{"laughs", nested, "holds more than"},
		{"many aliases", "a: &a x\nb: [" + strings.Repeat("*a, ", 2000) + "*a]\n", "holds more than 1000 alias (*name) uses"},
		{"long text through aliases", "a: &a " + strings.Repeat("x", 1<<20) + "\nb: [*a, *a, *a, *a, *a]\n", "holds more than 4194304 bytes of text"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tt.doc), &doc))
			start := time.Now()
			err := Check("r.yaml", &doc, Config)
			assert.Less(t, time.Since(start), time.Second)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "r.yaml:"), err.Error())
		})
	}
}

// FuzzCheck: any YAML that parses is checked within the limits' cost, without a panic.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(anchorBomb(30, 30)))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("a: &a {b: &b [x, y]}\nc: [*a, *b, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) != nil {
			return
		}
		start := time.Now()
		_ = Check("f.yaml", &doc, Limits{Nodes: 10_000, Bytes: 1 << 20, Aliases: 100})
		if d := time.Since(start); d > time.Second {
			t.Fatalf("took %v", d)
		}
	})
}
