package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Lines are appended, the tail reads the latest in order, and a full log is rotated once.
func TestLog(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	require.NoError(t, err)
	tail, err := Tail(dir, 5)
	require.NoError(t, err)
	assert.Empty(t, tail, "no log yet")
	for i := 0; i < 3; i++ {
		require.NoError(t, l.Write(Entry{Origin: "https://ib.bank.kz", Method: "kz.gov.pki.knca.basics.sign", RequestID: string(rune('a' + i)),
			Documents: []Doc{{SHA256: strings.Repeat("ab", 32), Size: 10}}, Outcome: Signed}))
	}
	fi, err := os.Stat(l.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	tail, err = Tail(dir, 2)
	require.NoError(t, err)
	require.Len(t, tail, 2)
	assert.Equal(t, []string{"b", "c"}, []string{tail[0].RequestID, tail[1].RequestID})
	assert.WithinDuration(t, time.Now(), tail[1].Time, time.Minute)

	// Fill it past MaxLog: the old log becomes audit.jsonl.1 and a new one starts.
	require.NoError(t, os.WriteFile(l.Path(), []byte(strings.Repeat("x", MaxLog)+"\n"), 0o600))
	require.NoError(t, l.Write(Entry{Outcome: Refused, Reason: "after rotation"}))
	_, err = os.Stat(l.Path() + ".1")
	require.NoError(t, err)
	tail, err = Tail(dir, 10)
	require.NoError(t, err)
	require.Len(t, tail, 1)
	assert.Equal(t, "after rotation", tail[0].Reason)
}

func TestState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	s, err := ReadState(dir)
	require.NoError(t, err)
	assert.Nil(t, s)
	require.NoError(t, WriteState(dir, State{PID: os.Getpid(), URL: "ws://127.0.0.1:13579", Origins: []string{"https://ib.bank.kz"}}))
	s, err = ReadState(dir)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), s.PID)
	assert.True(t, s.Running())
	assert.False(t, (&State{PID: 1 << 30}).Running(), "no such process")
	require.NoError(t, RemoveState(dir))
	require.NoError(t, RemoveState(dir), "removing twice is fine")
	s, err = ReadState(dir)
	require.NoError(t, err)
	assert.Nil(t, s)
}
