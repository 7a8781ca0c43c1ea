package ca

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Errors of the EST client, for errors.Is. Every failure is an *Error (or a *PendingError)
// that wraps one of them and says which operation, which URL and what the server said.
var (
	// ErrPending: the CA accepted the request but has not issued the certificate yet
	// (HTTP 202). The error is a *PendingError carrying when to come back.
	ErrPending = errors.New("the certificate authority has not issued the certificate yet")
	// ErrRefused: the CA answered and said no (HTTP 4xx), or refused our TLS client
	// certificate. The server's reason is in the message.
	ErrRefused = errors.New("the certificate authority refused the request")
	// ErrUnavailable: no usable answer after the retries (network failures, timeouts, 5xx).
	ErrUnavailable = errors.New("the certificate authority is unavailable")
	// ErrBadResponse: an answer that is not what RFC 7030 says (wrong content type, bad
	// base64 or PKCS#7, too large, no certificate).
	ErrBadResponse = errors.New("the certificate authority sent a response that cannot be used")
	// ErrUntrustedServer: the server's TLS certificate does not chain to the configured
	// roots, or names another host.
	ErrUntrustedServer = errors.New("the certificate authority's server is not trusted")
)

// Error is a failed EST exchange.
type Error struct {
	Op       string // "cacerts", "simpleenroll", "simplereenroll"
	URL      string
	Kind     error // ErrRefused, ErrUnavailable, ErrBadResponse or ErrUntrustedServer
	Status   int   // HTTP status; 0 when there was no HTTP answer
	Reason   string
	Attempts int
	Err      error // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "est %s %s: %s", e.Op, e.URL, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	}
	return b.String()
}

func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// PendingError is an HTTP 202: the request was accepted and the certificate is to be fetched
// later by sending the same request again (RFC 7030 4.2.3). A resumable enrollment keeps the
// key and the CSR and comes back after RetryAfter.
type PendingError struct {
	Op         string
	URL        string
	RetryAfter time.Duration // 0 when the server did not say
	Reason     string
}

func (e *PendingError) Error() string {
	s := fmt.Sprintf("est %s %s: %s", e.Op, e.URL, ErrPending)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(": send the same request again in %s", e.RetryAfter)
	} else {
		s += ": send the same request again later"
	}
	if e.Reason != "" {
		s += " (server: " + e.Reason + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrPending }
