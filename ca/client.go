package ca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenrun/tokenrun/ca/internal/estwire"
)

// The EST exchange (RFC 7030) is done here with net/http rather than with globalsign/est's
// client: that client builds its own tls.Config and dials without the caller's context, so it
// can neither honour a deadline nor insist on TLS 1.2 nor send a token-held client key the way
// we need. What globalsign/est offers beyond that is unexported; its estserver is what the
// interoperability test checks this client against.

// Defaults of ClientConfig.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultRetries         = 3
	DefaultBackoff         = time.Second
	DefaultMaxBackoff      = 30 * time.Second
	DefaultMaxResponseSize = 1 << 20
	// defaultPendingWait is used when a 202 carries no Retry-After (RFC 7030 says it must).
	defaultPendingWait = 10 * time.Second
	// maxReasonBytes bounds what is read of an error answer: only its start is shown.
	maxReasonBytes = 64 << 10
	maxReasonRunes = 300
	estPrefix      = "/.well-known/est"
)

// ClientConfig configures an EST client. Trust is explicit: set exactly one of Roots,
// RootsPEM and SystemRoots.
type ClientConfig struct {
	// URL is https://host[:port], optionally followed by /.well-known/est or
	// /.well-known/est/<label>.
	URL string
	// Label is the RFC 7030 additional path segment (a CA-defined label, e.g. "3y" on the
	// development CA); it may instead be written into URL, but not differently in both.
	Label string

	Roots       *x509.CertPool
	RootsPEM    []byte
	SystemRoots bool // the operating system's roots: only when asked for

	// Identity is the TLS client certificate for cacerts and simpleenroll: the bank's
	// initial key. Nil sends none (for servers that authenticate otherwise).
	Identity *Identity

	// Timeout bounds one attempt (connect, TLS, request, the whole answer); it is cut to what
	// is left of Budget and of ctx.
	Timeout time.Duration
	// Budget bounds the whole call: every attempt, every wait between attempts and every
	// Retry-After wait of a 202 (WaitPending). A CA that hangs, or drips its answer, ends the
	// call when the budget is spent. 0: only ctx (and Timeout per attempt) bound the call.
	Budget time.Duration
	// Retries is how many times a transient failure (network error, timeout, 5xx, 429) is
	// retried: 0 means DefaultRetries, a negative number means never.
	Retries int
	// Backoff is the first wait between attempts; it doubles up to MaxBackoff, with jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// WaitPending makes Enroll and Reenroll wait out an HTTP 202 (Retry-After) and ask again,
	// as long as Budget and ctx allow; otherwise a 202 returns a *PendingError at once. A wait
	// that would leave no time to ask again is not begun: the *PendingError comes back then.
	WaitPending bool

	// OnWait, when set, is told about every wait before asking again, once when it begins and
	// then once a second (Wait.Left counts down in whole seconds), so a person can be shown a
	// countdown. It is called on the goroutine that called the client.
	OnWait func(Wait)
	// OnUnanswered, when set, is told of every attempt of simpleenroll or simplereenroll whose
	// request was sent in full but whose answer never came whole (a timeout, a reset, an answer
	// cut off): the CA may have issued a certificate that never arrived. It is called on the
	// goroutine that called the client, before the attempt is retried or the call returns.
	OnUnanswered func(Unanswered)

	// MaxTLSVersion caps the TLS version (0: Go's default, TLS 1.3). A token that cannot make
	// RSA-PSS signatures needs tls.VersionTLS12 for Reenroll, since TLS 1.3 demands PSS.
	MaxTLSVersion uint16
	// Proxy picks an HTTP proxy; nil means the environment's (HTTPS_PROXY, NO_PROXY), which
	// never applies to loopback addresses.
	Proxy func(*http.Request) (*url.URL, error)
	// MaxResponseSize caps an answer's body; 0 means DefaultMaxResponseSize (1 MiB).
	MaxResponseSize int64
}

// Wait is a wait before asking the CA again.
type Wait struct {
	Op string
	// Pending: the CA answered 202 and asked to come back after Retry-After; otherwise the
	// wait is the backoff after a failed attempt.
	Pending bool
	Attempt int           // the attempts made so far
	Total   time.Duration // the whole wait
	Left    time.Duration // what is left of it: Total rounded up to whole seconds, then each second less
}

// Unanswered is an attempt whose request was sent in full and got no complete answer.
type Unanswered struct {
	Op      string
	Attempt int
	Sent    time.Time // when the request had been written in full
	Failed  time.Time // when the attempt gave up
	Reason  string
}

// Client is an EST client. It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	base string // https://host:port/.well-known/est[/label]
	tls  *tls.Config
	hc   *http.Client
}

// Enrollment is what simpleenroll or simplereenroll returned.
type Enrollment struct {
	Certificate *x509.Certificate
	// Chain holds the other certificates of the answer, if the CA sent any.
	Chain []*x509.Certificate
	// PKCS7 is the answer's certs-only PKCS#7 (DER), as received.
	PKCS7 []byte
}

// NewClient checks cfg and makes a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := estBase(cfg.URL, cfg.Label)
	if err != nil {
		return nil, err
	}
	set := 0
	for _, b := range []bool{cfg.Roots != nil, len(cfg.RootsPEM) > 0, cfg.SystemRoots} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("est client: set exactly one of Roots, RootsPEM and SystemRoots (got %d): "+
			"the CA's root certificate must be given explicitly", set)
	}
	roots := cfg.Roots
	if len(cfg.RootsPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(cfg.RootsPEM) {
			return nil, errors.New("est client: RootsPEM holds no PEM certificate")
		}
	}
	if cfg.Identity != nil {
		if err := checkIdentity(cfg.Identity); err != nil {
			return nil, fmt.Errorf("est client: identity: %w", err)
		}
	}
	if cfg.MaxTLSVersion != 0 && cfg.MaxTLSVersion < tls.VersionTLS12 {
		return nil, errors.New("est client: MaxTLSVersion is below TLS 1.2, the minimum")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = DefaultMaxResponseSize
	}
	if cfg.Proxy == nil {
		cfg.Proxy = http.ProxyFromEnvironment
	}
	c := &Client{
		cfg:  cfg,
		base: base,
		tls: &tls.Config{
			MinVersion: tls.VersionTLS12,
			MaxVersion: cfg.MaxTLSVersion,
			RootCAs:    roots, // nil only with SystemRoots
		},
	}
	c.hc = c.httpClient(cfg.Identity)
	return c, nil
}

// estBase validates the URL and returns the EST base path with its label.
func estBase(raw, label string) (string, error) {
	if raw == "" {
		return "", errors.New("est client: no URL: set ClientConfig.URL to https://host:port")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("est client: URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return "", fmt.Errorf("est client: URL %q: the scheme must be https (EST runs over TLS)", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("est client: URL %q names no host", raw)
	case u.User != nil:
		return "", errors.New("est client: the URL must not carry a user name or password")
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("est client: URL %q: remove the query or fragment", raw)
	}
	p := strings.TrimSuffix(u.Path, "/")
	urlLabel := ""
	switch {
	case p == "" || p == estPrefix:
	case strings.HasPrefix(p, estPrefix+"/"):
		urlLabel = strings.TrimPrefix(p, estPrefix+"/")
	default:
		return "", fmt.Errorf("est client: URL %q: the path must be empty, %s or %s/<label>", raw, estPrefix, estPrefix)
	}
	if urlLabel != "" && label != "" && urlLabel != label {
		return "", fmt.Errorf("est client: the URL's label %q differs from Label %q: give it once", urlLabel, label)
	}
	if label == "" {
		label = urlLabel
	}
	if label != "" && !validLabel(label) {
		return "", fmt.Errorf("est client: label %q: use letters, digits, '-', '.', '_' and '~' only", label)
	}
	base := "https://" + u.Host + estPrefix
	if label != "" {
		base += "/" + label
	}
	return base, nil
}

func validLabel(s string) bool {
	for _, r := range s {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-._~", r))) {
			return false
		}
	}
	return s != ""
}

func checkIdentity(id *Identity) error {
	switch {
	case id.Certificate == nil:
		return errors.New("no certificate")
	case id.Key == nil:
		return errors.New("no key")
	case !samePublicKey(id.Certificate.PublicKey, id.Key.Public()):
		return errors.New("the certificate is not for this key")
	}
	return nil
}

// httpClient makes an HTTP client presenting id (nil: none). One per identity, since TLS
// client certificates belong to connections: connections must not be shared between them.
func (c *Client) httpClient(id *Identity) *http.Client {
	tc := c.tls.Clone()
	if id != nil {
		cert := id.TLSCertificate()
		// Go's default only sends a certificate whose issuer is in the server's list of
		// acceptable CAs; sending it regardless lets a server whose list names another CA
		// (an intermediate, a renamed root) see it and say why it refuses, instead of
		// answering as if no certificate had been given.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	tr := &http.Transport{
		Proxy: c.cfg.Proxy,
		// The attempt's context bounds the dial and the TLS handshake: a timer of the
		// transport's own would race the budget's deadline and be reported as retryable.
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		// A redirect could carry the client certificate's session elsewhere; EST servers do
		// not need them, so one is reported instead of followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// CACerts fetches the CA certificates (/cacerts). They are trusted because the TLS server was
// verified against the configured roots.
func (c *Client) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	certs, _, err := c.exchange(ctx, c.hc, "cacerts", nil)
	return certs, err
}

// Enroll asks for a certificate for csrDER (simpleenroll), authenticated by the initial key.
func (c *Client) Enroll(ctx context.Context, csrDER []byte) (*Enrollment, error) {
	return c.enroll(ctx, c.hc, "simpleenroll", csrDER)
}

// Reenroll renews (simplereenroll), authenticated by the certificate being renewed and its
// token key. RFC 7030 wants the CSR's subject to be that certificate's.
func (c *Client) Reenroll(ctx context.Context, csrDER []byte, current *Identity) (*Enrollment, error) {
	if current == nil {
		return nil, errors.New("est simplereenroll: no current certificate and key to authenticate with")
	}
	if err := checkIdentity(current); err != nil {
		return nil, fmt.Errorf("est simplereenroll: current identity: %w", err)
	}
	hc := c.httpClient(current)
	defer hc.CloseIdleConnections()
	return c.enroll(ctx, hc, "simplereenroll", csrDER)
}

func (c *Client) enroll(ctx context.Context, hc *http.Client, op string, csrDER []byte) (*Enrollment, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("est %s: the request is not a PKCS#10 certificate request: %w", op, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("est %s: the request's signature does not verify: %w", op, err)
	}
	certs, der, err := c.exchange(ctx, hc, op, estwire.EncodeBody(csrDER))
	if err != nil {
		return nil, err
	}
	// The issued certificate is the one for the request's key; when none is, the first one is
	// returned and CheckIssued will say that it is for another key.
	leaf := 0
	for i, cert := range certs {
		if samePublicKey(cert.PublicKey, csr.PublicKey) {
			leaf = i
			break
		}
	}
	e := &Enrollment{Certificate: certs[leaf], PKCS7: der}
	for i, cert := range certs {
		if i != leaf {
			e.Chain = append(e.Chain, cert)
		}
	}
	return e, nil
}

// outcome is one attempt's result, before retry decisions.
type outcome struct {
	certs      []*x509.Certificate
	der        []byte
	err        error         // *Error or *PendingError
	transient  bool          // worth another attempt
	retryAfter time.Duration // the server's hint for the next attempt
	// unanswered: the request was written in full at sent, and no complete answer came.
	unanswered bool
	sent       time.Time
}

// errBudgetSpent is the cause of the budget's context when ClientConfig.Budget runs out.
var errBudgetSpent = errors.New("est client: the time allowed for the call is spent")

// minAttemptTime is the least time a wait must leave for the attempt after it: a wait that
// would end closer to the deadline is not begun, since the attempt after it could only fail
// with a timeout and hide the answer that was true (pending, unavailable).
const minAttemptTime = time.Second

// budget is the time an EST call has: the earlier of ClientConfig.Budget and ctx's deadline.
// Its methods take the time now, so the decisions they make can be tested without a clock.
type budget struct {
	deadline time.Time // zero: unbounded
}

func newBudget(now time.Time, d time.Duration, ctxDeadline time.Time, hasCtxDeadline bool) budget {
	var b budget
	if d > 0 {
		b.deadline = now.Add(d)
	}
	if hasCtxDeadline && (b.deadline.IsZero() || ctxDeadline.Before(b.deadline)) {
		b.deadline = ctxDeadline
	}
	return b
}

// left is the time left at now; ok is false for an unbounded budget.
func (b budget) left(now time.Time) (d time.Duration, ok bool) {
	if b.deadline.IsZero() {
		return 0, false
	}
	return b.deadline.Sub(now), true
}

// attemptTimeout is how long an attempt begun at now may take: per, cut to what is left. It
// is 0 or less when nothing is left.
func (b budget) attemptTimeout(now time.Time, per time.Duration) time.Duration {
	d, _ := b.attempt(now, per)
	return d
}

// attempt is attemptTimeout, and whether it was cut: then the attempt ends with the budget,
// on the budget's own deadline.
func (b budget) attempt(now time.Time, per time.Duration) (d time.Duration, cut bool) {
	if left, ok := b.left(now); ok && left <= per {
		return left, true
	}
	return per, false
}

// canWait says whether a wait of d begun at now leaves time for the attempt after it: at
// least minAttemptTime, or per when the attempt timeout is shorter.
func (b budget) canWait(now time.Time, d, per time.Duration) bool {
	left, ok := b.left(now)
	if !ok {
		return true
	}
	return d+min(minAttemptTime, per) <= left
}

// exchange runs one EST operation with retries. body nil means GET. Retrying a simpleenroll
// resends the same CSR: at worst the CA issues twice for the same token key (RFC 7030 4.2.3
// has clients resend after a 202 anyway), never a certificate for another key. Every attempt
// and wait fits in the budget (ClientConfig.Budget and ctx's deadline).
func (c *Client) exchange(ctx context.Context, hc *http.Client, op string, body []byte) ([]*x509.Certificate, []byte, error) {
	u := c.base + "/" + op
	dl, hasDL := ctx.Deadline()
	b := newBudget(time.Now(), c.cfg.Budget, dl, hasDL)
	bctx := ctx
	if c.cfg.Budget > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithDeadlineCause(ctx, b.deadline, errBudgetSpent)
		defer cancel()
	}
	failures, attempts := 0, 0
	for {
		attempts++
		timeout, cut := b.attempt(time.Now(), c.cfg.Timeout)
		o := c.attempt(ctx, bctx, hc, op, u, body, timeout, cut)
		if o.unanswered && c.cfg.OnUnanswered != nil {
			reason := o.err.Error()
			if e, ok := o.err.(*Error); ok {
				reason = e.Reason
				if e.Err != nil {
					reason = joinReason(reason, e.Err.Error())
				}
			}
			c.cfg.OnUnanswered(Unanswered{Op: op, Attempt: attempts, Sent: o.sent, Failed: time.Now(), Reason: reason})
		}
		if o.err == nil {
			return o.certs, o.der, nil
		}
		if pe, ok := o.err.(*PendingError); ok {
			if !c.cfg.WaitPending {
				return nil, nil, pe
			}
			wait := pe.RetryAfter
			if wait <= 0 {
				wait = defaultPendingWait
			}
			// Waiting past the budget would only turn a useful answer ("come back later")
			// into a timeout, so the pending error is handed back instead.
			if !b.canWait(time.Now(), wait, c.cfg.Timeout) ||
				!c.wait(bctx, Wait{Op: op, Pending: true, Attempt: attempts, Total: wait}) {
				return nil, nil, pe
			}
			continue
		}
		e := o.err.(*Error)
		failures++
		e.Attempts = failures
		if !o.transient || failures > c.cfg.Retries {
			return nil, nil, e
		}
		wait := c.cfg.Backoff << (failures - 1)
		if wait > c.cfg.MaxBackoff || wait <= 0 {
			wait = c.cfg.MaxBackoff
		}
		wait = time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		if o.retryAfter > wait {
			wait = min(o.retryAfter, c.cfg.MaxBackoff)
		}
		if !b.canWait(time.Now(), wait, c.cfg.Timeout) ||
			!c.wait(bctx, Wait{Op: op, Attempt: attempts, Total: wait}) {
			e.Reason = strings.TrimPrefix(e.Reason+"; no time left to retry", "; ")
			return nil, nil, e
		}
	}
}

// wait sleeps w.Total unless ctx ends first, telling OnWait at its start and then each
// second. The ticks are planned from the start, so a wait of N whole seconds is reported
// exactly N times (N s left, ..., 1 s left) however late the timers fire.
func (c *Client) wait(ctx context.Context, w Wait) bool {
	if w.Total <= 0 {
		return ctx.Err() == nil
	}
	end := time.Now().Add(w.Total)
	n := int((w.Total + time.Second - 1) / time.Second)
	for i := n; i >= 1; i-- {
		if c.cfg.OnWait != nil {
			w.Left = time.Duration(i) * time.Second
			c.cfg.OnWait(w)
		}
		if !sleepUntil(ctx, end.Add(-time.Duration(i-1)*time.Second)) {
			return false
		}
	}
	return true
}

// sleepUntil waits until t unless ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attempt makes one request and reads its whole answer within timeout. ctx is the caller's
// context, bctx the budget's (ctx itself when there is no Budget); cut says that timeout is
// what is left of the budget, so the attempt ends on bctx's deadline rather than a timer of
// its own that could fire a moment earlier and be taken for a retryable timeout.
func (c *Client) attempt(ctx, bctx context.Context, hc *http.Client, op, u string, body []byte, timeout time.Duration, cut bool) outcome {
	fail := func(kind error, status int, reason string, cause error) *Error {
		return &Error{Op: op, URL: u, Kind: kind, Status: status, Reason: reason, Err: cause}
	}
	if err := ctx.Err(); err != nil {
		return outcome{err: fail(ErrUnavailable, 0, "gave up before asking", err)}
	}
	if timeout <= 0 || bctx.Err() != nil {
		return outcome{err: fail(ErrUnavailable, 0, "no time left to ask", nil)}
	}
	actx, cancel := context.WithTimeout(bctx, timeout)
	if cut {
		actx, cancel = context.WithCancel(bctx)
	}
	defer cancel()
	// The request counts as sent once it has been written in full (headers and body,
	// flushed); the transport reports that from its own goroutine.
	var sentAt atomic.Int64
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				sentAt.Store(time.Now().UnixNano())
			}
		},
	})
	// unanswered marks a failure after the request was sent in full, for a request that
	// asks the CA to issue (a GET issues nothing).
	unanswered := func(o outcome) outcome {
		if n := sentAt.Load(); n != 0 && body != nil {
			o.unanswered, o.sent = true, time.Unix(0, n)
		}
		return o
	}
	method := http.MethodGet
	var rd io.Reader
	if body != nil {
		method = http.MethodPost
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, u, rd)
	if err != nil {
		return outcome{err: fail(ErrBadResponse, 0, "cannot build the request", err)}
	}
	req.Header.Set("User-Agent", "tokenrun-est")
	req.Header.Set("Accept", estwire.MediaPKCS7)
	if body != nil {
		req.Header.Set("Content-Type", estwire.MediaPKCS10)
		req.Header.Set("Content-Transfer-Encoding", "base64")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return unanswered(c.transportFailure(ctx, bctx, actx, timeout, fail, err))
	}
	defer resp.Body.Close()

	switch st := resp.StatusCode; {
	case st == http.StatusOK:
		o := c.readCerts(ctx, bctx, actx, timeout, resp, fail)
		if o.unanswered {
			// The answer was cut off: the CA issued, and the certificate never arrived.
			o.unanswered = false
			o = unanswered(o)
		}
		return o
	case st == http.StatusAccepted:
		return outcome{err: &PendingError{Op: op, URL: u,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Reason: reasonOf(resp)}}
	case st >= 300 && st < 400:
		return outcome{err: fail(ErrBadResponse, st,
			fmt.Sprintf("the server redirects to %q: configure that URL instead", resp.Header.Get("Location")), nil)}
	case st == http.StatusTooManyRequests || st >= 500:
		return outcome{err: fail(ErrUnavailable, st, reasonOf(resp), nil), transient: true,
			retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case st >= 400:
		reason := reasonOf(resp)
		switch st {
		case http.StatusUnauthorized:
			reason = joinReason(reason, "the server wants a client certificate it accepts: check that the right initial key (Key.pfx) was given")
		case http.StatusNotFound:
			reason = joinReason(reason, "check the EST URL and label")
		}
		return outcome{err: fail(ErrRefused, st, reason, nil)}
	default:
		return outcome{err: fail(ErrBadResponse, st, "unexpected status: "+reasonOf(resp), nil)}
	}
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// transportFailure classifies an error from http.Client.Do.
func (c *Client) transportFailure(ctx, bctx, actx context.Context, timeout time.Duration, fail func(error, int, string, error) *Error, err error) outcome {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		rec              tls.RecordHeaderError
		op               *net.OpError
	)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return outcome{err: fail(ErrUnavailable, 0, "cancelled before the answer came", ctx.Err())}
	case ctx.Err() != nil:
		return outcome{err: fail(ErrUnavailable, 0, "no answer before the deadline", ctx.Err())}
	case bctx.Err() != nil:
		// The whole call's budget is spent (the attempt's timeout was cut to it).
		return outcome{err: fail(ErrUnavailable, 0, fmt.Sprintf("no complete answer within %s, the time allowed", c.cfg.Budget), nil)}
	case actx.Err() != nil:
		return outcome{err: fail(ErrUnavailable, 0, fmt.Sprintf("no complete answer within %s", timeout), actx.Err()), transient: true}
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return outcome{err: fail(ErrUntrustedServer, 0,
			"its TLS certificate does not verify against the configured roots: check the CA root certificate and the URL's host", unwrapURL(err))}
	case errors.As(err, &rec), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return outcome{err: fail(ErrBadResponse, 0, "the server does not speak TLS on this port: check the URL", unwrapURL(err))}
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the server: during or right after the handshake this is the server
		// rejecting our client certificate or our TLS settings, and retrying will not help.
		return outcome{err: fail(ErrRefused, 0,
			"the server ended the TLS connection: it did not accept our client certificate or TLS settings", unwrapURL(err))}
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcome{err: fail(ErrUnavailable, 0, "connection refused: is the CA's server running at this address?", unwrapURL(err)), transient: true}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return outcome{err: fail(ErrUnavailable, 0, "the connection was closed or reset before the answer came", unwrapURL(err)), transient: true}
	default:
		// DNS and routing failures and the like: the network's problems, which
		// may pass.
		return outcome{err: fail(ErrUnavailable, 0, "", unwrapURL(err)), transient: true}
	}
}

// unwrapURL drops *url.Error's "Post \"https://...\":" prefix: our Error already names the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readCerts reads and decodes a 200 answer.
// An answer cut off while its body was read is marked unanswered.
func (c *Client) readCerts(ctx, bctx, actx context.Context, timeout time.Duration, resp *http.Response, fail func(error, int, string, error) *Error) outcome {
	limit := c.cfg.MaxResponseSize
	tooLarge := fmt.Sprintf("response too large: more than %d bytes", limit)
	if resp.ContentLength > limit {
		return outcome{err: fail(ErrBadResponse, 0, tooLarge, nil)}
	}
	// An answer that cannot be used, seen once the attempt's time has run out, is an answer
	// cut off by the deadline rather than a bad one: when the deadline closes the connection,
	// a server watching its request context may end its answer cleanly (an empty 200, or the
	// chunked body so far) in the moment between our TLS close_notify and the TCP close, and
	// the read then ends in a plain EOF.
	cutOff := func(reason string, err error) outcome {
		if actx.Err() == nil {
			return outcome{err: fail(ErrBadResponse, 0, reason, err)}
		}
		o := c.transportFailure(ctx, bctx, actx, timeout, fail, actx.Err())
		o.err.(*Error).Reason = joinReason("the answer was cut off", o.err.(*Error).Reason)
		o.unanswered = true
		return o
	}
	mt, params, err := estwire.MediaType(resp.Header.Get("Content-Type"))
	if err == nil && mt != estwire.MediaPKCS7 {
		err = fmt.Errorf("content type %q where %s was expected", mt, estwire.MediaPKCS7)
	}
	if err == nil && params["smime-type"] != "" && !strings.EqualFold(params["smime-type"], "certs-only") {
		err = fmt.Errorf("smime-type %q where certs-only was expected", params["smime-type"])
	}
	if err != nil {
		return cutOff(joinReason(err.Error(), reasonOf(resp)), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		o := c.transportFailure(ctx, bctx, actx, timeout, fail, err)
		o.err.(*Error).Reason = joinReason("the answer was cut off", o.err.(*Error).Reason)
		o.unanswered = true
		return o
	}
	if int64(len(body)) > limit {
		return outcome{err: fail(ErrBadResponse, 0, tooLarge, nil)}
	}
	der, err := estwire.DecodeBody(body)
	if err != nil {
		return cutOff("malformed body", err)
	}
	certs, err := estwire.DecodeCertsOnly(der)
	if err != nil {
		return cutOff("malformed certs-only PKCS#7", err)
	}
	return outcome{certs: certs, der: der}
}

// retryAfter parses Retry-After: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		if s > int64(30*24*time.Hour/time.Second) {
			s = int64(30 * 24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// reasonOf reads the start of an answer's body as the server's reason: text only, one line,
// capped, so that a hostile or verbose server cannot flood the message a person reads.
func reasonOf(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReasonBytes))
	if len(b) == 0 {
		return ""
	}
	mt, _, _ := estwire.MediaType(resp.Header.Get("Content-Type"))
	textual := mt == "" || strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "json") || strings.HasSuffix(mt, "xml")
	if !textual || !utf8.Valid(b) {
		return fmt.Sprintf("%d bytes of %s", len(b), orUnknown(mt))
	}
	s := strings.Join(strings.FieldsFunc(string(b), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if utf8.RuneCountInString(s) > maxReasonRunes {
		s = string([]rune(s)[:maxReasonRunes]) + "…"
	}
	return strconv.Quote(s)
}

func orUnknown(mt string) string {
	if mt == "" {
		return "unknown type"
	}
	return mt
}
