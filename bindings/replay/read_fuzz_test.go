package replay

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenrun/tokenrun/transcript"
)

// FuzzRead: any transcript is read or refused with an error naming the line, quickly and
// without a panic; what is read has calls in increasing seq order and a footer.
func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.jsonl")
	more, _ := filepath.Glob("../../cmd/tokenrun/testdata/*/*.jsonl")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"kind":"header","format":2,"procedure":"change_pin","version":"1.0.0"}
{"kind":"call","seq":1,"name":"ui.secret","module":"ui","func":"secret","args":[{"id":"current_pin"}],"results":["<secret>"],"prompt":{"id":"current_pin","kind":"secret","answer":"<secret>"}}
{"kind":"call","seq":2,"name":"sign.verify","module":"sign","func":"verify","args":[{"$truncated":"ab","bytes":16777216}],"results":[true]}
{"kind":"footer","outcome":"ok","exit":0,"calls":2}
`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if rec.Footer.Kind != transcript.KindFooter {
			t.Fatal("read a transcript without a footer")
		}
		for i := 1; i < len(rec.Calls); i++ {
			if rec.Calls[i].Seq <= rec.Calls[i-1].Seq {
				t.Fatal("calls out of order")
			}
		}
		_ = rec.StartKeys()
	})
}
