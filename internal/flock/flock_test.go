package flock

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTryLockExcludesAnotherOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if ok, err := TryLock(a, true); !ok || err != nil {
		t.Fatalf("first lock: ok=%v err=%v", ok, err)
	}
	if ok, err := TryLock(b, true); ok || err != nil {
		t.Fatalf("second open got the lock too: ok=%v err=%v", ok, err)
	}
	a.Close() // closing releases it, as a killed process does
	if ok, err := TryLock(b, true); !ok || err != nil {
		t.Fatalf("after the holder closed: ok=%v err=%v", ok, err)
	}
}
