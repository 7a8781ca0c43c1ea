package journal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordAndResume(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	_, err = s.Load("0123")
	require.ErrorIs(t, err, ErrNotFound)

	_, err = s.Record("0123", "enroll", "key_generated", map[string]any{"key_id": "0a0b", "user_id": "qq111111_qwertyui"})
	require.NoError(t, err)
	_, err = s.Record("0123", "enroll", "issued", map[string]any{"certificate": "-----BEGIN CERTIFICATE-----"})
	require.NoError(t, err)

	// A new process (a rerun) sees both steps.
	s2, err := Open(dir)
	require.NoError(t, err)
	e, err := s2.Load("0123")
	require.NoError(t, err)
	assert.Equal(t, "issued", e.Step)
	assert.Equal(t, "0a0b", e.Data["key_id"])
	assert.Equal(t, "-----BEGIN CERTIFICATE-----", e.Data["certificate"])
	require.Len(t, e.History, 2)
	assert.Equal(t, "key_generated", e.History[0].Name)

	open, err := s2.Open()
	require.NoError(t, err)
	assert.Len(t, open, 1)

	require.NoError(t, s2.Finish("0123"))
	_, err = s2.Load("0123")
	require.ErrorIs(t, err, ErrNotFound)
	done, err := filepath.Glob(filepath.Join(dir, "done", "0123-*.json"))
	require.NoError(t, err)
	assert.Len(t, done, 1, "a finished journal is kept, never deleted")
	require.ErrorIs(t, s2.Finish("0123"), ErrNotFound)
}

func TestRefusesSecrets(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	for _, data := range []map[string]any{
		{"otp_pin": "AB1CD0EFG2H"},
		{"nested": map[string]any{"Password": "x"}},
		{"list": []any{map[string]any{"secret": "x"}}},
	} {
		_, err := s.Record("01", "enroll", "x", data)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "secrets are never written down")
		assert.NotContains(t, err.Error(), "AB1CD0EFG2H")
	}
	_, err = s.Load("01")
	require.ErrorIs(t, err, ErrNotFound, "nothing written")
}

func TestDamagedJournalIsNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	p := filepath.Join(dir, "77.json")
	require.NoError(t, os.WriteFile(p, []byte("{half"), 0o600))
	_, err = s.Record("77", "enroll", "x", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "damaged")
	b, _ := os.ReadFile(p)
	assert.Equal(t, "{half", string(b))
}

func TestSerialMustNameAFile(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	for _, bad := range []string{"", "../x", "a/b", string(make([]byte, 65))} {
		_, err := s.Record(bad, "enroll", "x", nil)
		require.Error(t, err, bad)
	}
}
