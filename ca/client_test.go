package ca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/ca/internal/estwire"
)

// fakeCA answers simpleenroll from a handler chosen per test; n counts requests.
type fakeCA struct {
	n       atomic.Int32
	handler func(n int, w http.ResponseWriter, r *http.Request)
}

func (f *fakeCA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.handler(int(f.n.Add(1)), w, r)
}

func writeCertsOnly(t testing.TB, w http.ResponseWriter, certs ...*x509.Certificate) {
	der, err := estwire.EncodeCertsOnly(certs)
	require.NoError(t, err)
	w.Header().Set("Content-Type", estwire.CertsOnly)
	w.Write(estwire.EncodeBody(der))
}

func TestClientBadResponses(t *testing.T) {
	key := newECKey(t)
	csr := csrFor(t, key, testUser)
	pki := newTestPKI(t, time.Now().AddDate(5, 0, 0))
	issued := pki.leaf(t, key.Public(), time.Now().Add(-time.Minute), time.Now().AddDate(1, 0, 0))
	good := func(t *testing.T) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) { writeCertsOnly(t, w, issued, pki.inter) }
	}
	p7, err := estwire.EncodeCertsOnly([]*x509.Certificate{issued, pki.inter})
	require.NoError(t, err)
	status := func(code int, ctype, body string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) {
			if ctype != "" {
				w.Header().Set("Content-Type", ctype)
			}
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}
	}
	// firstThen answers the first n requests with first, then with good.
	firstThen := func(n int, first func(int, http.ResponseWriter, *http.Request)) func(*testing.T) func(int, http.ResponseWriter, *http.Request) {
		return func(t *testing.T) func(int, http.ResponseWriter, *http.Request) {
			return func(i int, w http.ResponseWriter, r *http.Request) {
				if i <= n {
					first(i, w, r)
					return
				}
				good(t)(i, w, r)
			}
		}
	}
	fixed := func(h func(int, http.ResponseWriter, *http.Request)) func(*testing.T) func(int, http.ResponseWriter, *http.Request) {
		return func(*testing.T) func(int, http.ResponseWriter, *http.Request) { return h }
	}
	hang := func(_ int, _ http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	reset := func(_ int, w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := conn.(*tls.Conn); ok {
				if nc, ok := tc.NetConn().(*net.TCPConn); ok {
					nc.SetLinger(0) // RST, not FIN
				}
			}
			conn.Close()
		}
	}

	cases := []struct {
		name     string
		handler  func(*testing.T) func(int, http.ResponseWriter, *http.Request)
		cfg      func(*ClientConfig)
		timeout  time.Duration // ctx deadline; 0: 10s
		kind     error         // nil: success
		contains []string
		requests int // how many requests the server must have seen; 0: not checked
		within   time.Duration
	}{
		{name: "base64 certs-only", handler: good, requests: 1},
		{name: "DER body (RFC 8951 lenience)", handler: fixed(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", estwire.CertsOnly)
			w.Write(p7)
		})},
		{name: "malformed base64", handler: fixed(status(200, estwire.CertsOnly, "!!!! not base64 ????")),
			kind: ErrBadResponse, contains: []string{"malformed body", "neither base64"}},
		{name: "malformed PKCS#7", handler: fixed(status(200, estwire.CertsOnly, "aGVsbG8gd29ybGQ=")),
			kind: ErrBadResponse, contains: []string{"malformed certs-only PKCS#7"}},
		{name: "empty body", handler: fixed(status(200, estwire.CertsOnly, "")),
			kind: ErrBadResponse, contains: []string{"body is empty"}},
		{name: "wrong content type", handler: fixed(status(200, "text/html", "<html>proxy login</html>")),
			kind: ErrBadResponse, contains: []string{`content type "text/html" where application/pkcs7-mime was expected`, "proxy login"}},
		{name: "no content type", handler: fixed(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write(estwire.EncodeBody(p7))
		}), kind: ErrBadResponse, contains: []string{"no content type"}},
		{name: "enveloped instead of certs-only", handler: fixed(status(200, "application/pkcs7-mime; smime-type=enveloped-data", string(estwire.EncodeBody(p7)))),
			kind: ErrBadResponse, contains: []string{`smime-type "enveloped-data"`}},
		{name: "too large by Content-Length", handler: fixed(status(200, estwire.CertsOnly, strings.Repeat("A", 2<<20))),
			kind: ErrBadResponse, contains: []string{"response too large"}},
		{name: "too large streamed", handler: fixed(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", estwire.CertsOnly)
			chunk := bytes.Repeat([]byte("A"), 64<<10)
			for i := 0; i < 40; i++ {
				w.Write(chunk)
				w.(http.Flusher).Flush()
			}
		}), kind: ErrBadResponse, contains: []string{"response too large: more than 1048576 bytes"}},
		{name: "refused with reason", handler: fixed(status(403, "text/plain", "user qq111111_qwertyui is blocked\n")),
			kind: ErrRefused, contains: []string{"HTTP 403 Forbidden", `"user qq111111_qwertyui is blocked"`}, requests: 1},
		{name: "long reason is capped", handler: fixed(status(400, "text/plain", strings.Repeat("very long reason ", 10000))),
			kind: ErrRefused, contains: []string{"…"}},
		{name: "binary reason is not shown", handler: fixed(status(400, "application/octet-stream", "\x00\x01\x02")),
			kind: ErrRefused, contains: []string{"3 bytes of application/octet-stream"}},
		{name: "not found", handler: fixed(status(404, "text/plain", "404 page not found")),
			kind: ErrRefused, contains: []string{"check the EST URL and label"}},
		{name: "unauthorized", handler: fixed(status(401, "", "")),
			kind: ErrRefused, contains: []string{"right initial key"}},
		{name: "redirect", handler: fixed(func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/.well-known/est/simpleenroll", http.StatusFound)
		}), kind: ErrBadResponse, contains: []string{"redirects to", "elsewhere.example"}, requests: 1},
		{name: "5xx after every retry", handler: fixed(status(500, "text/plain", "database down")),
			kind: ErrUnavailable, contains: []string{"HTTP 500", "database down", "(3 attempts)"}, requests: 3},
		{name: "5xx then success", handler: firstThen(1, status(502, "text/plain", "bad gateway")), requests: 2},
		{name: "503 Retry-After then success", handler: firstThen(1, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		}), requests: 2, within: 3 * time.Second},
		{name: "connection reset then success", handler: firstThen(1, reset), requests: 2},
		{name: "connection reset every time", handler: fixed(reset), kind: ErrUnavailable, requests: 3},
		{name: "202 returns a pending error", handler: fixed(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, "queued for approval")
		}), kind: ErrPending, contains: []string{"again in 7s", "queued for approval"}, requests: 1},
		{name: "202 then success when waiting", handler: firstThen(1, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusAccepted)
		}), cfg: func(c *ClientConfig) { c.WaitPending = true }, requests: 2, within: 3 * time.Second},
		{name: "202 waiting but the deadline is nearer", handler: fixed(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusAccepted)
		}), cfg: func(c *ClientConfig) { c.WaitPending = true }, timeout: 2 * time.Second,
			kind: ErrPending, requests: 1, within: time.Second},
		{name: "hanging server, ctx deadline", handler: fixed(hang), timeout: 300 * time.Millisecond,
			kind: ErrUnavailable, contains: []string{"no answer before the deadline", "context deadline exceeded"}, within: 1500 * time.Millisecond},
		{name: "hanging once, attempt timeout, then success", handler: firstThen(1, hang),
			cfg: func(c *ClientConfig) { c.Timeout = 200 * time.Millisecond }, requests: 2, within: 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCA{handler: tc.handler(t)}
			url, roots := tlsServer(t, f)
			cfg := ClientConfig{URL: url, Roots: roots, Retries: 2, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			c := newClient(t, cfg)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			e, err := c.Enroll(ctx, csr)
			elapsed := time.Since(start)
			if tc.kind == nil {
				require.NoError(t, err)
				assert.True(t, e.Certificate.Equal(issued))
				assert.NoError(t, CheckIssued(e.Certificate, e.Chain, key.Public(), pki.roots(), Year))
			} else {
				t.Log(err)
				require.ErrorIs(t, err, tc.kind)
				for _, s := range tc.contains {
					assert.Contains(t, err.Error(), s)
				}
				assert.Less(t, len(err.Error()), 1000, "messages stay readable")
			}
			if tc.requests != 0 {
				assert.Equal(t, tc.requests, int(f.n.Load()), "requests seen by the server")
			}
			if tc.within != 0 {
				assert.Less(t, elapsed, tc.within)
			}
		})
	}
}

func TestClientPendingError(t *testing.T) {
	f := &fakeCA{handler: func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusAccepted)
	}}
	url, roots := tlsServer(t, f)
	c := newClient(t, ClientConfig{URL: url, Roots: roots})
	_, err := c.Enroll(context.Background(), csrFor(t, newECKey(t), testUser))
	var pe *PendingError
	require.ErrorAs(t, err, &pe)
	assert.InDelta(t, 90, pe.RetryAfter.Seconds(), 2, "an HTTP date is understood")
	assert.Equal(t, "simpleenroll", pe.Op)
}

func TestClientTransportFailures(t *testing.T) {
	// Nobody listens here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()

	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	url, roots := tlsServer(t, http.NotFoundHandler())
	otherRoots := newTestPKI(t, time.Now().Add(time.Hour)).roots()

	cases := []struct {
		name     string
		url      string
		roots    *x509.CertPool
		kind     error
		contains string
		attempts int
	}{
		{"connection refused", "https://" + closed, roots, ErrUnavailable, "connection refused", 3},
		{"server not trusted", url, otherRoots, ErrUntrustedServer, "check the CA root certificate", 1},
		{"not TLS", "https://" + strings.TrimPrefix(plain.URL, "http://"), roots, ErrBadResponse, "does not speak TLS", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, ClientConfig{URL: tc.url, Roots: tc.roots, Retries: 2, Backoff: 10 * time.Millisecond})
			_, err := c.CACerts(context.Background())
			t.Log(err)
			require.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.contains)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.attempts, e.Attempts)
		})
	}
}

// TestClientCertificateRefusedInHandshake: a server that verifies client certificates in the
// handshake and does not know our issuer ends the connection with an alert. That is a
// refusal, not an outage: no retries, and the message says what was refused.
func TestClientCertificateRefusedInHandshake(t *testing.T) {
	d := newDevCA(t)
	other := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			ts := httptest.NewUnstartedServer(http.NotFoundHandler())
			ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: other.roots(),
				MinVersion: version, MaxVersion: version}
			ts.Config.ErrorLog = quietLog
			ts.StartTLS()
			defer ts.Close()
			roots := x509.NewCertPool()
			roots.AddCert(ts.Certificate())
			c := newClient(t, ClientConfig{URL: ts.URL, Roots: roots, Identity: d.initial, Retries: 2, Backoff: 10 * time.Millisecond})
			_, err := c.CACerts(context.Background())
			t.Log(err)
			require.ErrorIs(t, err, ErrRefused)
			assert.Contains(t, err.Error(), "did not accept our client certificate")
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, 1, e.Attempts)
		})
	}
}

func TestClientRequiresTLS12(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	ts.Config.ErrorLog = quietLog
	ts.StartTLS()
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	c := newClient(t, ClientConfig{URL: ts.URL, Roots: roots, Retries: -1})
	_, err := c.CACerts(context.Background())
	t.Log(err)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "protocol version")
}

func TestNewClientConfig(t *testing.T) {
	roots := x509.NewCertPool()
	cases := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"no URL", ClientConfig{Roots: roots}, "no URL"},
		{"http", ClientConfig{URL: "http://127.0.0.1:8443", Roots: roots}, "scheme must be https"},
		{"no host", ClientConfig{URL: "https:///.well-known/est", Roots: roots}, "names no host"},
		{"credentials", ClientConfig{URL: "https://u:secret@127.0.0.1", Roots: roots}, "must not carry a user name or password"},
		{"query", ClientConfig{URL: "https://127.0.0.1/?x=1", Roots: roots}, "remove the query"},
		{"other path", ClientConfig{URL: "https://127.0.0.1/est", Roots: roots}, "the path must be empty"},
		{"nested label", ClientConfig{URL: "https://127.0.0.1/.well-known/est/a/b", Roots: roots}, "label \"a/b\""},
		{"two labels", ClientConfig{URL: "https://127.0.0.1/.well-known/est/1y", Label: "3y", Roots: roots}, "differs from Label"},
		{"no roots", ClientConfig{URL: "https://127.0.0.1"}, "set exactly one of Roots, RootsPEM and SystemRoots (got 0)"},
		{"two roots", ClientConfig{URL: "https://127.0.0.1", Roots: roots, SystemRoots: true}, "(got 2)"},
		{"bad PEM", ClientConfig{URL: "https://127.0.0.1", RootsPEM: []byte("nope")}, "holds no PEM certificate"},
		{"identity without key", ClientConfig{URL: "https://127.0.0.1", Roots: roots, Identity: &Identity{Certificate: &x509.Certificate{}}}, "no key"},
		{"identity for another key", ClientConfig{URL: "https://127.0.0.1", Roots: roots,
			Identity: &Identity{Certificate: newTestPKI(t, time.Now().Add(time.Hour)).root, Key: newECKey(t)}}, "not for this key"},
		{"TLS 1.1", ClientConfig{URL: "https://127.0.0.1", Roots: roots, MaxTLSVersion: tls.VersionTLS11}, "below TLS 1.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "secret")
		})
	}
	for _, ok := range []struct{ url, label, base string }{
		{"https://127.0.0.1:8443", "", "https://127.0.0.1:8443/.well-known/est"},
		{"https://127.0.0.1:8443/", "3y", "https://127.0.0.1:8443/.well-known/est/3y"},
		{"https://[::1]:8443/.well-known/est/", "", "https://[::1]:8443/.well-known/est"},
		{"https://localhost/.well-known/est/1y", "1y", "https://localhost/.well-known/est/1y"},
	} {
		c, err := NewClient(ClientConfig{URL: ok.url, Label: ok.label, Roots: roots})
		require.NoError(t, err, ok.url)
		assert.Equal(t, ok.base, c.base)
	}
}

func TestClientAgainstDevCA(t *testing.T) {
	d := newDevCA(t)
	url := d.serve(t, devca.ServerOptions{})
	ctx := context.Background()

	c := newClient(t, ClientConfig{URL: url, RootsPEM: d.ca.RootPEM(), Identity: d.initial, Label: "3y"})
	cacerts, err := c.CACerts(ctx)
	require.NoError(t, err)
	require.Len(t, cacerts, 1)
	assert.True(t, cacerts[0].Equal(d.ca.Root()))

	// The token key is seen only through crypto.Signer.
	token := tokenSigner{newECKey(t)}
	csr := csrFor(t, token, testUser)
	e, err := c.Enroll(ctx, csr)
	require.NoError(t, err)
	require.NoError(t, CheckIssued(e.Certificate, cacerts, token.Public(), d.ca.RootPool(), 3*Year))
	assert.Equal(t, testUser, e.Certificate.Subject.CommonName)
	err = CheckIssued(e.Certificate, cacerts, token.Public(), d.ca.RootPool(), Year)
	assert.ErrorIs(t, err, ErrValidityMismatch, "asked for 3 years, not 1")

	// Re-enrollment authenticates with the token's certificate and key, for a new key.
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		rc := newClient(t, ClientConfig{URL: url, Roots: d.ca.RootPool(), Label: "1y", MaxTLSVersion: version})
		next := tokenSigner{newECKey(t)}
		re, err := rc.Reenroll(ctx, csrFor(t, next, testUser), &Identity{Certificate: e.Certificate, Key: token})
		require.NoError(t, err, tls.VersionName(version))
		require.NoError(t, CheckIssued(re.Certificate, cacerts, next.Public(), d.ca.RootPool(), Year))
	}

	// The initial key cannot re-enroll, and the server's reason reaches the caller.
	_, err = c.Reenroll(ctx, csr, d.initial)
	require.ErrorIs(t, err, ErrRefused)
	assert.Contains(t, err.Error(), "initial key cannot re-enroll")

	// Another user's ID is refused with the server's explanation.
	_, err = c.Enroll(ctx, csrFor(t, token, "qq999999_intruder"))
	require.ErrorIs(t, err, ErrRefused)
	var ee *Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, http.StatusForbidden, ee.Status)
	assert.Contains(t, err.Error(), "check the user ID on the acceptance act")

	issued, err := d.ca.Issued()
	require.NoError(t, err)
	assert.Len(t, issued, 3)
}

func TestClientPendingAgainstDevCA(t *testing.T) {
	d := newDevCA(t)
	url := d.serve(t, devca.ServerOptions{PendingFirst: 1, RetryAfter: time.Second})
	key := newECKey(t)
	csr := csrFor(t, key, testUser)

	// A resumable enrollment: told to come back, it comes back with the same request.
	c := newClient(t, ClientConfig{URL: url, Roots: d.ca.RootPool(), Identity: d.initial})
	_, err := c.Enroll(context.Background(), csr)
	var pe *PendingError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, time.Second, pe.RetryAfter)
	e, err := c.Enroll(context.Background(), csr)
	require.NoError(t, err)
	assert.NoError(t, CheckIssued(e.Certificate, nil, key.Public(), d.ca.RootPool(), Year))

	// Or it waits within its context.
	d2 := newDevCA(t)
	url2 := d2.serve(t, devca.ServerOptions{PendingFirst: 2, RetryAfter: 200 * time.Millisecond})
	c2 := newClient(t, ClientConfig{URL: url2, Roots: d2.ca.RootPool(), Identity: d2.initial, WaitPending: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c2.Enroll(ctx, csr)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "Retry-After is whole seconds: 1s twice")
}

func TestClientErrorsNameOperationAndURL(t *testing.T) {
	e := &Error{Op: "simpleenroll", URL: "https://ca.example/.well-known/est/simpleenroll", Kind: ErrRefused,
		Status: 403, Reason: `"blocked"`, Attempts: 1}
	assert.Equal(t, `est simpleenroll https://ca.example/.well-known/est/simpleenroll: the certificate authority refused the request: HTTP 403 Forbidden: "blocked"`, e.Error())
	assert.True(t, errors.Is(e, ErrRefused))
	assert.False(t, errors.Is(e, ErrUnavailable))
	pe := &PendingError{Op: "simpleenroll", URL: "u", RetryAfter: 3 * time.Second}
	assert.True(t, errors.Is(pe, ErrPending))
	assert.Contains(t, pe.Error(), "send the same request again in 3s")
}
