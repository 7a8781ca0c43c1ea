package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/journal"
)

// The CA step's budget (ca.timeout) against a CA that hangs, drips its answer or asks to wait.
// Durations are asserted from what the run recorded in its journal (the CA step's seconds),
// with slack, never by timing the test.

// caSlack is what the issue allows past ca.timeout.
const caSlack = 2 * time.Second

// faultyCA is the development CA's own EST handler behind a server that, while its mode says
// so, misbehaves after the CA has done its work: "hang" keeps the answer (the certificate is
// issued, and never sent), "drip" sends the answer's headers, then its body one byte a second.
// Mode "" answers normally.
type faultyCA struct {
	mu   sync.Mutex
	mode string
	stop chan struct{}
}

func (f *faultyCA) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

// startFaulty serves the CA on its listener behind a faultyCA in mode.
func (c *enrollCA) startFaulty(t *testing.T, mode string, opts devca.ServerOptions) *faultyCA {
	t.Helper()
	est := c.a.Server(opts)
	f := &faultyCA{mode: mode, stop: make(chan struct{})}
	srv := &http.Server{TLSConfig: c.a.TLSConfig(), ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			mode := f.mode
			f.mu.Unlock()
			if mode == "" {
				est.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			est.ServeHTTP(rec, r)
			if mode == "hang" {
				select {
				case <-r.Context().Done():
				case <-f.stop:
				}
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			for _, b := range rec.Body.Bytes() {
				if _, err := w.Write([]byte{b}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-f.stop:
					return
				case <-time.After(time.Second):
				}
			}
		})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(c.ln, "", "") }()
	t.Cleanup(func() {
		close(f.stop)
		srv.Close()
		<-done
	})
	return f
}

// enrollJournal is the token's enrollment journal: the open one, else the last finished.
func enrollJournal(t *testing.T, serial string) *journal.Entry {
	t.Helper()
	dir := filepath.Join(os.Getenv("TOKENRUN_HOME"), "journal")
	s, err := journal.Open(dir)
	require.NoError(t, err)
	if e, err := s.Load(serial); err == nil {
		return e
	}
	done, err := filepath.Glob(filepath.Join(dir, "done", serial+"-*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, done, "no journal for %s", serial)
	sort.Strings(done)
	b, err := os.ReadFile(done[len(done)-1])
	require.NoError(t, err)
	var e journal.Entry
	require.NoError(t, json.Unmarshal(b, &e))
	return &e
}

// caStep is one CA step as the journal keeps it.
type caStep struct {
	Started, Ended, Outcome string
	Seconds                 float64
}

func caSteps(t *testing.T, e *journal.Entry) []caStep {
	t.Helper()
	var out []caStep
	b, err := json.Marshal(e.Data["ca_steps"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	for _, s := range out {
		start, err1 := time.Parse(time.RFC3339, s.Started)
		end, err2 := time.Parse(time.RFC3339, s.Ended)
		require.NoError(t, err1)
		require.NoError(t, err2)
		assert.InDelta(t, end.Sub(start).Seconds(), s.Seconds, 0.002, "seconds is ended - started")
	}
	return out
}

func unansweredOf(e *journal.Entry) []any {
	l, _ := e.Data["ca_unanswered"].([]any)
	return l
}

// assertOnePair: exactly one key and one certificate on the token, for each other (same id,
// and a CMS signature with the pair is made, which refuses a certificate for another key).
func assertOnePair(t *testing.T, dir, pin string) {
	t.Helper()
	script := writeFile(t, filepath.Join(t.TempDir(), "pair.lua"), `
local token = require("token")
local sign = require("sign")
local ui = require("ui")
local tok = assert(token.wait { timeout = 5 })
assert(tok:login(ui.secret { id = "current_pin", label = "pin" }))
local keys, certs = tok:keys(), tok:certificates()
assert(#keys == 1 and #certs == 1, ("%d keys, %d certs"):format(#keys, #certs))
assert(keys[1].id == certs[1].id, "the certificate is stored under another id than the key")
assert(sign.cms { key = keys[1], cert = certs[1].pem, data = "pair", detached = true })
ui.say("one matching pair")
`)
	r := tokenrun(t, "", "run", script, "--soft", dir, "--answers", writeAnswers(t, map[string]any{"current_pin": pin}))
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "one matching pair")
}

// TestEnrollCAHangsOrDrips: a CA that takes the request and never answers, or drips its
// answer a byte a second, ends the CA step within ca.timeout (+2 s): the run stops as
// resumable, the journal says the request was sent in full and never answered, and a rerun
// against a working CA ends with one key and one certificate.
func TestEnrollCAHangsOrDrips(t *testing.T) {
	const budget = 3 * time.Second
	for _, mode := range []string{"hang", "drip"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("TOKENRUN_HOME", t.TempDir())
			ca := newEnrollCA(t)
			f := ca.startFaulty(t, mode, devca.ServerOptions{})
			dir, serial := softToken(t)

			out, code := enrollJSON(t, dir, ca, "--set", "ca.timeout="+budget.String())
			require.Equal(t, exitCA, code, out)
			assert.Contains(t, out, "cannot be reached")
			assert.Contains(t, out, "run the registration again: it continues where it stopped")
			e := enrollJournal(t, serial)
			assert.Equal(t, "requested", e.Step, "resumable: the key is kept, the request is to be sent again")
			steps := caSteps(t, e)
			require.Len(t, steps, 1)
			t.Logf("%s: CA step took %.3f s (ca.timeout %s)", mode, steps[0].Seconds, budget)
			assert.Equal(t, "CA_UNAVAILABLE", steps[0].Outcome)
			assert.LessOrEqual(t, steps[0].Seconds, (budget + caSlack).Seconds(), "the CA step ends within its budget")
			assert.GreaterOrEqual(t, steps[0].Seconds, budget.Seconds()-0.1, "it kept trying for its budget")
			unanswered := unansweredOf(e)
			require.NotEmpty(t, unanswered, "a request sent in full and never answered is journalled")
			first := unanswered[0].(map[string]any)
			assert.Equal(t, "simpleenroll", first["op"])
			assert.NotEmpty(t, first["sent"])
			assert.NotEmpty(t, first["failed"])
			issued, err := ca.a.Issued()
			require.NoError(t, err)
			assert.Len(t, issued, len(unanswered), "every certificate the CA issued and never delivered is in the journal")

			f.set("")
			out, code = enrollJSON(t, dir, ca)
			require.Equal(t, exitOK, code, out)
			assert.Contains(t, out, "Continuing the registration")
			assert.Contains(t, out, "no new key is made")
			done := enrollJournal(t, serial)
			steps = caSteps(t, done)
			require.Len(t, steps, 2, "one CA step per run")
			assert.Equal(t, "issued", steps[1].Outcome)
			assert.Len(t, unansweredOf(done), len(unanswered), "kept for support after the rerun")
			assertOnePair(t, dir, newPIN)
		})
	}
}

// TestEnrollCAPendingWaitedOut: a 202 with Retry-After is waited out inside ca.timeout with a
// countdown shown, then asked again, and a single run finishes; when the waits do not fit in
// ca.timeout, the run stops as pending (resumable) within its budget, and a rerun finishes.
func TestEnrollCAPendingWaitedOut(t *testing.T) {
	t.Run("within the budget", func(t *testing.T) {
		t.Setenv("TOKENRUN_HOME", t.TempDir())
		ca := newEnrollCA(t)
		ca.startFaulty(t, "", devca.ServerOptions{PendingFirst: 2, RetryAfter: time.Second})
		dir, serial := softToken(t)
		out, code := enrollJSON(t, dir, ca, "--set", "ca.timeout=10s")
		require.Equal(t, exitOK, code, out)
		assert.Equal(t, 2, strings.Count(out, "asked to wait: asking again in 1 s"), out)
		assert.NotContains(t, out, "Continuing the registration")
		e := enrollJournal(t, serial)
		steps := caSteps(t, e)
		require.Len(t, steps, 1)
		t.Logf("pending twice, Retry-After 1 s: CA step took %.3f s (ca.timeout 10s)", steps[0].Seconds)
		assert.Equal(t, "issued", steps[0].Outcome)
		assert.GreaterOrEqual(t, steps[0].Seconds, 2.0, "both Retry-After waits were waited out")
		assert.LessOrEqual(t, steps[0].Seconds, 10+caSlack.Seconds())
		for _, h := range e.History {
			assert.NotEqual(t, "pending", h.Name, "no stop on the way")
		}
		assert.Empty(t, unansweredOf(e))
		assertOnePair(t, dir, newPIN)
	})
	t.Run("past the budget", func(t *testing.T) {
		t.Setenv("TOKENRUN_HOME", t.TempDir())
		ca := newEnrollCA(t)
		ca.startFaulty(t, "", devca.ServerOptions{PendingFirst: 4, RetryAfter: time.Second})
		dir, serial := softToken(t)
		out, code := enrollJSON(t, dir, ca, "--set", "ca.timeout=3s")
		require.Equal(t, exitCA, code, out)
		assert.Contains(t, out, "asked to wait: asking again in 1 s")
		assert.Contains(t, out, "Run the registration again in 1 second or later")
		e := enrollJournal(t, serial)
		assert.Equal(t, "pending", e.Step)
		steps := caSteps(t, e)
		require.Len(t, steps, 1)
		t.Logf("pending past the budget: CA step took %.3f s (ca.timeout 3s)", steps[0].Seconds)
		assert.Equal(t, "CA_PENDING", steps[0].Outcome)
		assert.LessOrEqual(t, steps[0].Seconds, 3+caSlack.Seconds())

		out, code = enrollJSON(t, dir, ca)
		require.Equal(t, exitOK, code, out)
		assert.Contains(t, out, "Continuing the registration")
		steps = caSteps(t, enrollJournal(t, serial))
		require.Len(t, steps, 2)
		t.Logf("rerun: CA step took %.3f s (ca.timeout 5m)", steps[1].Seconds)
		assertOnePair(t, dir, newPIN)
	})
}
