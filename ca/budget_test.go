package ca

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBudgetDecisions: what the budget allows, decided from the time given, without a clock.
func TestBudgetDecisions(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s := time.Second
	cases := []struct {
		name        string
		budget      time.Duration
		ctxDeadline time.Duration // 0: ctx has none
		at          time.Duration // since t0
		per         time.Duration // ClientConfig.Timeout
		wait        time.Duration
		attempt     time.Duration // attemptTimeout
		canWait     bool
	}{
		{name: "unbounded", per: 30 * s, wait: time.Hour, attempt: 30 * s, canWait: true},
		{name: "budget longer than the attempt", budget: 300 * s, per: 30 * s, wait: 10 * s, attempt: 30 * s, canWait: true},
		{name: "attempt cut to the budget", budget: 3 * s, per: 3 * s, at: s, wait: s, attempt: 2 * s, canWait: true},
		{name: "attempt cut, wait too long", budget: 3 * s, per: 3 * s, at: s, wait: s + time.Millisecond, attempt: 2 * s, canWait: false},
		{name: "a wait leaving a second fits", budget: 10 * s, per: 10 * s, at: 4 * s, wait: 5 * s, attempt: 6 * s, canWait: true},
		{name: "a wait leaving less than a second does not", budget: 10 * s, per: 10 * s, at: 4 * s, wait: 5*s + time.Millisecond, attempt: 6 * s, canWait: false},
		{name: "Retry-After past the budget", budget: 3 * s, per: 3 * s, wait: 5 * s, attempt: 3 * s, canWait: false},
		{name: "a short attempt timeout needs only itself", budget: 3 * s, per: 200 * time.Millisecond, wait: 2700 * time.Millisecond, attempt: 200 * time.Millisecond, canWait: true},
		{name: "spent", budget: 3 * s, per: 3 * s, at: 3 * s, wait: 0, attempt: 0, canWait: false},
		{name: "overspent", budget: 3 * s, per: 3 * s, at: 4 * s, wait: 0, attempt: -s, canWait: false},
		{name: "ctx deadline nearer than the budget", budget: 300 * s, ctxDeadline: 5 * s, per: 30 * s, wait: 4 * s, attempt: 5 * s, canWait: true},
		{name: "ctx deadline nearer, wait too long", budget: 300 * s, ctxDeadline: 5 * s, per: 30 * s, wait: 4*s + time.Millisecond, attempt: 5 * s, canWait: false},
		{name: "budget nearer than ctx", budget: 2 * s, ctxDeadline: 50 * s, per: 30 * s, wait: 2 * s, attempt: 2 * s, canWait: false},
		{name: "ctx deadline only", ctxDeadline: 2 * s, per: 30 * s, wait: s, attempt: 2 * s, canWait: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(t0, tc.budget, t0.Add(tc.ctxDeadline), tc.ctxDeadline != 0)
			now := t0.Add(tc.at)
			assert.Equal(t, tc.attempt, b.attemptTimeout(now, tc.per), "attempt timeout")
			assert.Equal(t, tc.canWait, b.canWait(now, tc.wait, tc.per), "can wait %s", tc.wait)
		})
	}
}

// TestBudgetCut: an attempt that would outlast the budget is cut to end on its deadline.
func TestBudgetCut(t *testing.T) {
	t0 := time.Now()
	for _, tc := range []struct {
		budget, per time.Duration
		cut         bool
	}{
		{0, 30 * time.Second, false},
		{300 * time.Second, 30 * time.Second, false},
		{3 * time.Second, 3 * time.Second, true},
		{3 * time.Second, 30 * time.Second, true},
	} {
		_, cut := newBudget(t0, tc.budget, time.Time{}, false).attempt(t0, tc.per)
		assert.Equal(t, tc.cut, cut, "budget %s, attempt timeout %s", tc.budget, tc.per)
	}
}

// TestWaitCountsDown: OnWait hears the whole seconds left, from the wait's length rounded up
// down to 1, once each.
func TestWaitCountsDown(t *testing.T) {
	for _, tc := range []struct {
		total time.Duration
		want  []time.Duration
	}{
		{0, nil},
		{300 * time.Millisecond, []time.Duration{time.Second}},
		{time.Second, []time.Duration{time.Second}},
		{2100 * time.Millisecond, []time.Duration{3 * time.Second, 2 * time.Second, time.Second}},
	} {
		t.Run(tc.total.String(), func(t *testing.T) {
			var got []time.Duration
			c := &Client{cfg: ClientConfig{OnWait: func(w Wait) { got = append(got, w.Left) }}}
			start := time.Now()
			require.True(t, c.wait(context.Background(), Wait{Total: tc.total}))
			assert.GreaterOrEqual(t, time.Since(start), tc.total)
			assert.Equal(t, tc.want, got)
		})
	}
	c := &Client{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, c.wait(ctx, Wait{Total: time.Hour}), "a cancelled context ends the wait")
}

// faultCA answers simpleenroll from the test PKI, badly on purpose: hang accepts and reads the
// request, then never answers; drip sends the headers of a good answer and then one byte of
// its body a second; pending answers 202 + Retry-After first. The first n requests misbehave,
// the others are answered at once (n < 0: all misbehave).
type faultCA struct {
	mode       string
	n          int
	retryAfter string
	answer     func(w http.ResponseWriter)
	mu         sync.Mutex
	seen       int
	stop       chan struct{}
}

func (f *faultCA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen++
	bad := f.n < 0 || f.seen <= f.n
	f.mu.Unlock()
	if !bad {
		f.answer(w)
		return
	}
	switch f.mode {
	case "hang":
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
	case "drip":
		rec := &recorder{h: http.Header{}}
		f.answer(rec)
		for k, v := range rec.h {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		for _, b := range rec.body {
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
	case "pending":
		w.Header().Set("Retry-After", f.retryAfter)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, "queued")
	}
}

func (f *faultCA) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

type recorder struct {
	h    http.Header
	body []byte
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(int)             {}
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }

// TestClientBudget: the budget bounds the whole call, every attempt and wait included, against
// a CA that hangs, drips its answer or asks to wait; requests sent in full and never answered
// are reported. Timing assertions are upper bounds with 2 s of slack, and lower bounds
// where a wait must really have happened.
func TestClientBudget(t *testing.T) {
	pki := newTestPKI(t, time.Now().AddDate(2, 0, 0))
	key := newECKey(t)
	csr := csrFor(t, key, testUser)
	issued := pki.leaf(t, key.Public(), time.Now().Add(-time.Minute), time.Now().AddDate(1, 0, 0))
	answer := func(w http.ResponseWriter) { writeCertsOnly(t, w, issued, pki.inter) }
	s := time.Second

	cases := []struct {
		name       string
		mode       string
		n          int
		retryAfter string
		budget     time.Duration
		retries    int
		kind       error // nil: issued
		within     time.Duration
		atLeast    time.Duration
		waits      []time.Duration // Left values OnWait heard, pending waits only
		unanswered int
		requests   int
	}{
		{name: "hang: one attempt takes the whole budget", mode: "hang", n: -1, budget: 2 * s,
			kind: ErrUnavailable, atLeast: 2 * s, within: 4 * s, unanswered: 1, requests: 1},
		{name: "drip: the body read is bounded too", mode: "drip", n: -1, budget: 2 * s,
			kind: ErrUnavailable, atLeast: 2 * s, within: 4 * s, unanswered: 1, requests: 1},
		{name: "pending twice, then issued within the budget", mode: "pending", n: 2, retryAfter: "1", budget: 10 * s,
			atLeast: 2 * s, within: 5 * s, waits: []time.Duration{s, s}, requests: 3},
		{name: "pending for longer than the budget", mode: "pending", n: -1, retryAfter: "1", budget: 3 * s,
			kind: ErrPending, atLeast: s, within: 5 * s, waits: []time.Duration{s}, requests: 2},
		{name: "Retry-After past the budget: pending at once", mode: "pending", n: -1, retryAfter: "30", budget: 3 * s,
			kind: ErrPending, within: 2 * s, requests: 1},
		{name: "a 2 s Retry-After counts down", mode: "pending", n: 1, retryAfter: "2", budget: 10 * s,
			atLeast: 2 * s, within: 5 * s, waits: []time.Duration{2 * s, s}, requests: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultCA{mode: tc.mode, n: tc.n, retryAfter: tc.retryAfter, answer: answer, stop: make(chan struct{})}
			url, roots := tlsServer(t, f)
			t.Cleanup(func() { close(f.stop) })
			var waits []time.Duration
			var unanswered []Unanswered
			c := newClient(t, ClientConfig{URL: url, Roots: roots, Timeout: tc.budget, Budget: tc.budget,
				WaitPending: true, Retries: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
				OnWait: func(w Wait) {
					if w.Pending {
						waits = append(waits, w.Left)
					}
				},
				OnUnanswered: func(u Unanswered) { unanswered = append(unanswered, u) }})
			start := time.Now()
			e, err := c.Enroll(context.Background(), csr)
			elapsed := time.Since(start)
			t.Logf("%s: %v after %s", tc.name, err, elapsed.Round(time.Millisecond))
			if tc.kind == nil {
				require.NoError(t, err)
				assert.True(t, e.Certificate.Equal(issued))
			} else {
				require.ErrorIs(t, err, tc.kind)
			}
			assert.Less(t, elapsed, tc.within, "the budget bounds the whole call")
			assert.GreaterOrEqual(t, elapsed, tc.atLeast)
			assert.Equal(t, tc.waits, waits, "countdown heard")
			require.Len(t, unanswered, tc.unanswered)
			for _, u := range unanswered {
				assert.Equal(t, "simpleenroll", u.Op)
				assert.False(t, u.Sent.IsZero())
				assert.False(t, u.Failed.Before(u.Sent))
				assert.NotEmpty(t, u.Reason)
			}
			assert.Equal(t, tc.requests, f.requests(), "requests seen by the CA")
		})
	}
}

// TestClientUnansweredRetried: an attempt whose request was sent and that timed out is
// reported before it is retried; a failure before the request was sent is not.
func TestClientUnansweredRetried(t *testing.T) {
	pki := newTestPKI(t, time.Now().AddDate(2, 0, 0))
	key := newECKey(t)
	csr := csrFor(t, key, testUser)
	issued := pki.leaf(t, key.Public(), time.Now().Add(-time.Minute), time.Now().AddDate(1, 0, 0))
	f := &faultCA{mode: "hang", n: 1, answer: func(w http.ResponseWriter) { writeCertsOnly(t, w, issued, pki.inter) }, stop: make(chan struct{})}
	url, roots := tlsServer(t, f)
	t.Cleanup(func() { close(f.stop) })
	var got []Unanswered
	c := newClient(t, ClientConfig{URL: url, Roots: roots, Timeout: 500 * time.Millisecond, Budget: 10 * time.Second,
		Backoff: 10 * time.Millisecond, OnUnanswered: func(u Unanswered) { got = append(got, u) }})
	e, err := c.Enroll(context.Background(), csr)
	require.NoError(t, err)
	assert.True(t, e.Certificate.Equal(issued))
	require.Len(t, got, 1)
	assert.Equal(t, 1, got[0].Attempt)
	assert.Contains(t, got[0].Reason, "no complete answer within 500ms")

	// Nobody listens: nothing was sent, nothing to report.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	got = nil
	c = newClient(t, ClientConfig{URL: "https://" + addr, Roots: roots, Budget: 5 * time.Second, Backoff: 10 * time.Millisecond,
		OnUnanswered: func(u Unanswered) { got = append(got, u) }})
	_, err = c.Enroll(context.Background(), csr)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Empty(t, got)
}

// TestClientBudgetSilentListener: a CA that accepts the connection and never even shakes hands
// is bounded by the budget too; nothing was sent, so nothing is reported unanswered.
func TestClientBudgetSilentListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	pki := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	var unanswered int
	c := newClient(t, ClientConfig{URL: "https://" + ln.Addr().String(), Roots: pki.roots(), Timeout: 2 * time.Second,
		Budget: 2 * time.Second, OnUnanswered: func(Unanswered) { unanswered++ }})
	start := time.Now()
	_, err = c.Enroll(context.Background(), csrFor(t, newECKey(t), testUser))
	elapsed := time.Since(start)
	t.Logf("%v after %s", err, elapsed.Round(time.Millisecond))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "within 2s, the time allowed")
	assert.Less(t, elapsed, 4*time.Second)
	assert.Zero(t, unanswered)
}
