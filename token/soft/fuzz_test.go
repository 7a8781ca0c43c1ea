package soft

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzState: whatever a token.json holds (another program's, a damaged disk's), opening and
// listing the token ends in a token or an error, never a panic or a hang; the file is never
// changed by reading it.
func FuzzState(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "seed")
	if err := Create(dir, Options{}); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"format":"tokenrun-soft-token","version":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, stateName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Open(Options{}, dir)
		if err != nil {
			return
		}
		defer p.Close()
		_, _ = p.Tokens(context.Background())
		after, err := os.ReadFile(path)
		if err != nil || string(after) != string(data) {
			t.Fatalf("reading the state changed it")
		}
	})
}
