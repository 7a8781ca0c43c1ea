package ui

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseAnswers: any file is read or refused with an error, quickly and without a panic;
// what is read answers every prompt id it holds with at most MaxAnswer bytes.
func FuzzParseAnswers(f *testing.F) {
	for _, dir := range []string{"testdata", "../testdata/answers"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("a: &x [1, 2]\nb: *x\nc: *x\n"))
	f.Add([]byte("user_id: 0123\n---\nx: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAnswers(data, AnswersOptions{Name: "fuzz.yaml", AllowConfirm: true})
		if err != nil {
			return
		}
		for _, id := range a.order {
			for _, kind := range []Kind{Text, Secret, Confirm} {
				p := Prompt{ID: id, Kind: kind, Label: "x"}
				if p.Check() != nil {
					continue
				}
				v, err := a.Ask(context.Background(), p)
				if err == nil && len(v) > MaxAnswer {
					t.Fatalf("answer for %q is %d bytes", id, len(v))
				}
			}
		}
	})
}
