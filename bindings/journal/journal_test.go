package journal_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bj "github.com/tokenrun/tokenrun/bindings/journal"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runtime"
)

func run(t *testing.T, store *journal.Store, src string) ([]any, error) {
	reg := runtime.NewRegistry()
	require.NoError(t, reg.Add(bj.Module(store, "enroll")))
	s, err := runtime.Compile("t.lua", []byte(src))
	require.NoError(t, err)
	res, err := runtime.Run(t.Context(), s, runtime.RunOptions{Registry: reg, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return res.Values, nil
}

func TestJournalFromLua(t *testing.T) {
	store, err := journal.Open(t.TempDir())
	require.NoError(t, err)
	got, err := run(t, store, `
		local journal = require("journal")
		assert(journal.load("42") == nil)
		assert(journal.record("42", "key_generated", {key_id = "0a0b"}))
		local e = assert(journal.record("42", "pending", {retry_after = 5}))
		return e.step, e.data.key_id, e.data.retry_after, #e.history, e.procedure`)
	require.NoError(t, err)
	assert.Equal(t, []any{"pending", "0a0b", float64(5), float64(2), "enroll"}, got)

	// The next run continues from it.
	got, err = run(t, store, `local e = require("journal").load("42"); return e.step`)
	require.NoError(t, err)
	assert.Equal(t, []any{"pending"}, got)

	_, err = run(t, store, `local j = require("journal"); return j.record("42", "x", {otp_pin = "AB1CD0EFG2H"})`)
	var se *runtime.ScriptError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "JOURNAL_ERROR", se.Code)
	assert.NotContains(t, err.Error(), "AB1CD0EFG2H")

	// Input that turned out wrong is forgotten; the step stays.
	_, err = store.Forget("42", "nothing_there")
	require.NoError(t, err)
	got, err = run(t, store, `
		local j = require("journal")
		assert(j.record("42", "requested", {user_id = "qq222222_typotypo"}))
		local e = assert(j.forget("42", {"user_id"}))
		return e.step, e.data.user_id == nil, e.data.key_id`)
	require.NoError(t, err)
	assert.Equal(t, []any{"requested", true, "0a0b"}, got)

	got, err = run(t, store, `local j = require("journal"); assert(j.finish("42")); return j.load("42") == nil`)
	require.NoError(t, err)
	assert.Equal(t, []any{true}, got)
}
