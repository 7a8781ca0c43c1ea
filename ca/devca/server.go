package devca

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/ca/internal/estwire"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// The EST server is written on net/http rather than on globalsign/est's router: the router's
// CA interface cannot give 401 and 403 answers their own reasons for initial keys, and having
// our own framing means two independent implementations check each other: this server is
// checked by curl and OpenSSL, our client by globalsign's estserver.
//
// Validity is asked for with the RFC 7030 label: /.well-known/est/1y/simpleenroll issues for
// one year, /.well-known/est/3y/simpleenroll for three; without a label the default applies
// (ServerOptions). Any client that can choose a URL can do that, curl included, and the CSR
// needs nothing special.
//
// User binding: the user is the owner of the initial key presented as the TLS client
// certificate (simpleenroll), or the subject of the certificate being renewed
// (simplereenroll). A simpleenroll request must carry exactly one CN, equal to that user's ID;
// any other is refused with 403 rather than overwritten, because a mismatch means the user ID
// was typed wrongly on the client, and quietly issuing a certificate the client did not ask
// for would hide that. A simplereenroll request must keep the subject of the certificate
// being renewed (RFC 7030 4.2.2).

// DefaultListenAddr is where Serve listens when given no address: loopback only.
const DefaultListenAddr = "127.0.0.1:8443"

// ServerOptions configures the EST server. The zero value is a working server.
type ServerOptions struct {
	// PendingFirst answers the first N simpleenroll requests of each user with 202 and
	// Retry-After before issuing, to exercise resumable enrollment.
	PendingFirst int
	// RetryAfter is the Retry-After sent with 202 (rounded up to whole seconds; default 1s).
	RetryAfter time.Duration
	// ValidityYears lists the periods that may be asked for by label ("1y", "3y"); default
	// 1 and 3.
	ValidityYears []int
	// DefaultYears is the validity without a label; default 1.
	DefaultYears int
	// Log receives one line per request (never a secret: the server sees none). Nil: none.
	Log *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Issuance is one line of the issuance log.
type Issuance struct {
	Time            time.Time `json:"time"`
	Op              string    `json:"op"`
	User            string    `json:"user"`
	Serial          string    `json:"serial"`
	Subject         string    `json:"subject"`
	NotBefore       time.Time `json:"not_before"`
	NotAfter        time.Time `json:"not_after"`
	PublicKeySHA256 string    `json:"public_key_sha256"`
}

const maxCSRBody = 64 << 10

type server struct {
	ca      *CA
	opts    ServerOptions
	log     *slog.Logger
	mu      sync.Mutex
	pending map[string]int // user ID -> 202 answers given so far
}

// Server is the EST handler, for use behind TLSConfig (it needs the TLS client certificate).
func (ca *CA) Server(opts ServerOptions) http.Handler {
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if len(opts.ValidityYears) == 0 {
		opts.ValidityYears = []int{1, 3}
	}
	if opts.DefaultYears <= 0 {
		opts.DefaultYears = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &server{ca: ca, opts: opts, log: opts.Log, pending: map[string]int{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	for _, prefix := range []string{"/.well-known/est/", "/.well-known/est/{label}/"} {
		mux.HandleFunc("GET "+prefix+"cacerts", s.cacerts)
		mux.HandleFunc("POST "+prefix+"simpleenroll", s.simpleenroll)
		mux.HandleFunc("POST "+prefix+"simplereenroll", s.simplereenroll)
	}
	return mux
}

// Serve runs the EST server on listenAddr ("" means DefaultListenAddr) until ctx ends. An
// address without a host (":8443") is refused: listening on every interface must be asked for
// by name (0.0.0.0:8443).
func (ca *CA) Serve(ctx context.Context, listenAddr string, opts ServerOptions) error {
	if listenAddr == "" {
		listenAddr = DefaultListenAddr
	}
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return fmt.Errorf("devca serve: listen address %q: %w", listenAddr, err)
	}
	if host == "" {
		return fmt.Errorf("devca serve: listen address %q has no host: use 127.0.0.1%s, or 0.0.0.0%s to listen on every interface on purpose",
			listenAddr, listenAddr, listenAddr)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("devca serve: %w", err)
	}
	return ca.ServeListener(ctx, ln, opts)
}

// ServeListener runs the EST server on ln until ctx ends, then shuts down gracefully.
func (ca *CA) ServeListener(ctx context.Context, ln net.Listener, opts ServerOptions) error {
	errLog := log.New(io.Discard, "", 0)
	if opts.Log != nil {
		errLog = slog.NewLogLogger(opts.Log.Handler(), slog.LevelDebug)
	}
	srv := &http.Server{
		Handler:           ca.Server(opts),
		TLSConfig:         ca.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("devca serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("devca serve: %w", err)
	}
	return nil
}

// Issued reads the issuance log.
func (ca *CA) Issued() ([]Issuance, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	b, err := readfile.Read(filepath.Join(ca.dir, IssuedLogFile), readfile.Record)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Issuance
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var is Issuance
		if err := json.Unmarshal([]byte(line), &is); err != nil {
			return out, fmt.Errorf("%s line %d: %w", IssuedLogFile, i+1, err)
		}
		out = append(out, is)
	}
	return out, nil
}

// refusal is an HTTP error answer with its reason.
type refusal struct {
	status int
	reason string
}

func (s *server) answerError(w http.ResponseWriter, r *http.Request, user string, f *refusal) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if f.status == http.StatusAccepted {
		w.Header().Set("Retry-After", strconv.Itoa(s.retryAfterSeconds()))
	}
	w.WriteHeader(f.status)
	fmt.Fprintln(w, f.reason)
	s.log.Info("est request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
		"user", user, "status", f.status, "reason", f.reason)
}

func (s *server) writeCerts(w http.ResponseWriter, r *http.Request, user string, contentType string, cert *x509.Certificate) {
	der, err := estwire.EncodeCertsOnly([]*x509.Certificate{cert})
	if err != nil {
		s.answerError(w, r, user, &refusal{http.StatusInternalServerError, "cannot encode the answer"})
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(http.StatusOK)
	w.Write(estwire.EncodeBody(der))
	s.log.Info("est request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
		"user", user, "status", http.StatusOK)
}

func (s *server) retryAfterSeconds() int {
	return int((s.opts.RetryAfter + time.Second - 1) / time.Second)
}

// years maps the label onto a validity period.
func (s *server) years(r *http.Request) (int, *refusal) {
	label := r.PathValue("label")
	if label == "" {
		return s.opts.DefaultYears, nil
	}
	var allowed []string
	for _, y := range s.opts.ValidityYears {
		l := strconv.Itoa(y) + "y"
		if l == label {
			return y, nil
		}
		allowed = append(allowed, l)
	}
	return 0, &refusal{http.StatusNotFound, fmt.Sprintf("unknown label %q: this CA issues for %s (e.g. /.well-known/est/%s/simpleenroll)",
		label, strings.Join(allowed, ", "), allowed[0])}
}

func (s *server) cacerts(w http.ResponseWriter, r *http.Request) {
	if _, f := s.years(r); f != nil {
		s.answerError(w, r, "", f)
		return
	}
	s.writeCerts(w, r, "", estwire.MediaPKCS7, s.ca.root)
}

// clientCert verifies the TLS client certificate against the root.
func (s *server) clientCert(r *http.Request) (*x509.Certificate, *refusal) {
	if r.TLS == nil {
		return nil, &refusal{http.StatusUnauthorized, "EST needs TLS: use https"}
	}
	if len(r.TLS.PeerCertificates) == 0 {
		return nil, &refusal{http.StatusUnauthorized,
			"no TLS client certificate: present the user's initial key (Key.pfx) to enroll, or the certificate being renewed to re-enroll"}
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.ca.RootPool(),
		Intermediates: inter,
		CurrentTime:   s.opts.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, &refusal{http.StatusForbidden, fmt.Sprintf("the TLS client certificate %q was not issued by this CA for client authentication, or is not valid now: %v",
			leaf.Subject.String(), err)}
	}
	return leaf, nil
}

func isInitialKey(cert *x509.Certificate) bool {
	return slices.Contains(cert.Subject.OrganizationalUnit, InitialKeyOU)
}

func (s *server) simpleenroll(w http.ResponseWriter, r *http.Request) {
	user, cert, f := s.enrollRequest(r)
	if f != nil {
		s.answerError(w, r, user, f)
		return
	}
	s.issue(w, r, "simpleenroll", user, cert)
}

func (s *server) enrollRequest(r *http.Request) (string, *x509.Certificate, *refusal) {
	years, f := s.years(r)
	if f != nil {
		return "", nil, f
	}
	client, f := s.clientCert(r)
	if f != nil {
		return "", nil, f
	}
	u, known, err := s.ca.userByCert(client)
	if err != nil {
		s.log.Error("users file", "err", err)
		return "", nil, &refusal{http.StatusInternalServerError, "the CA cannot read its users file"}
	}
	if !known {
		if isInitialKey(client) {
			return "", nil, &refusal{http.StatusForbidden, fmt.Sprintf(
				"the initial key of %q is not registered with this CA (it was replaced by a newer one, or never added)", client.Subject.CommonName)}
		}
		return "", nil, &refusal{http.StatusForbidden,
			"this certificate was issued by enrollment, not an initial key: renew it with simplereenroll"}
	}
	csr, f := readCSR(r)
	if f != nil {
		return u.ID, nil, f
	}
	var cns []string
	for _, atv := range csr.Subject.Names {
		if atv.Type.String() == "2.5.4.3" {
			cns = append(cns, fmt.Sprint(atv.Value))
		}
	}
	switch {
	case len(cns) != 1:
		return u.ID, nil, &refusal{http.StatusForbidden, fmt.Sprintf(
			"the request must carry exactly one CN, the user ID %q; it has %d", u.ID, len(cns))}
	case cns[0] != u.ID:
		return u.ID, nil, &refusal{http.StatusForbidden, fmt.Sprintf(
			"the request names user %q but the initial key belongs to user %q: check the user ID on the acceptance act", cns[0], u.ID)}
	case publicKeysEqual(csr.PublicKey, client.PublicKey):
		return u.ID, nil, &refusal{http.StatusForbidden,
			"the request is for the initial key itself: generate a new key on the token"}
	}
	s.mu.Lock()
	n := s.pending[u.ID]
	if n < s.opts.PendingFirst {
		s.pending[u.ID] = n + 1
	}
	s.mu.Unlock()
	if n < s.opts.PendingFirst {
		return u.ID, nil, &refusal{http.StatusAccepted, fmt.Sprintf(
			"issuance pending (%d of %d): send the same request again in %d s", n+1, s.opts.PendingFirst, s.retryAfterSeconds())}
	}
	cert, f := s.sign(csr, years)
	return u.ID, cert, f
}

func (s *server) simplereenroll(w http.ResponseWriter, r *http.Request) {
	user, cert, f := s.reenrollRequest(r)
	if f != nil {
		s.answerError(w, r, user, f)
		return
	}
	s.issue(w, r, "simplereenroll", user, cert)
}

func (s *server) reenrollRequest(r *http.Request) (string, *x509.Certificate, *refusal) {
	years, f := s.years(r)
	if f != nil {
		return "", nil, f
	}
	client, f := s.clientCert(r)
	if f != nil {
		return "", nil, f
	}
	if _, known, _ := s.ca.userByCert(client); known || isInitialKey(client) {
		return "", nil, &refusal{http.StatusForbidden,
			"an initial key cannot re-enroll: enroll with simpleenroll, then renew with the issued certificate"}
	}
	issued, err := s.ca.Issued()
	if err != nil {
		s.log.Error("issuance log", "err", err)
		return "", nil, &refusal{http.StatusInternalServerError, "the CA cannot read its issuance log"}
	}
	serial := client.SerialNumber.Text(16)
	if !slices.ContainsFunc(issued, func(is Issuance) bool { return is.Serial == serial }) {
		return "", nil, &refusal{http.StatusForbidden, fmt.Sprintf(
			"certificate serial %s is not in this CA's issuance log: only certificates it issued by enrollment can re-enroll", serial)}
	}
	user := client.Subject.CommonName
	csr, f := readCSR(r)
	if f != nil {
		return user, nil, f
	}
	if string(csr.RawSubject) != string(client.RawSubject) {
		return user, nil, &refusal{http.StatusForbidden, fmt.Sprintf(
			"the request's subject %q differs from the certificate being renewed %q: RFC 7030 4.2.2 wants them identical",
			csr.Subject.String(), client.Subject.String())}
	}
	cert, f := s.sign(csr, years)
	return user, cert, f
}

// readCSR reads a base64 (or DER) PKCS#10 body.
func readCSR(r *http.Request) (*x509.CertificateRequest, *refusal) {
	mt, _, err := estwire.MediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != estwire.MediaPKCS10 {
		return nil, &refusal{http.StatusUnsupportedMediaType, fmt.Sprintf(
			"content type %q: send the request as %s (base64 body)", r.Header.Get("Content-Type"), estwire.MediaPKCS10)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCSRBody+1))
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "cannot read the request body"}
	}
	if len(body) > maxCSRBody {
		return nil, &refusal{http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxCSRBody)}
	}
	der, err := estwire.DecodeBody(body)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "the body is not a base64 PKCS#10 request: " + err.Error()}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "the body is not a PKCS#10 request: " + err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &refusal{http.StatusBadRequest, "the request's signature does not verify: " + err.Error()}
	}
	return csr, nil
}

// sign issues the certificate. NotAfter is a whole number of calendar years after NotBefore,
// which is back-dated a minute for clients whose clocks run a little behind.
func (s *server) sign(csr *x509.CertificateRequest, years int) (*x509.Certificate, *refusal) {
	nb := s.opts.Now().Add(-time.Minute).Truncate(time.Second)
	na := nb.AddDate(years, 0, 0)
	if na.After(s.ca.root.NotAfter) {
		// A certificate cannot outlive its issuer; the client's validity check says so.
		na = s.ca.root.NotAfter
	}
	ku := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:   mustSerial(),
		RawSubject:     csr.RawSubject,
		NotBefore:      nb,
		NotAfter:       na,
		KeyUsage:       ku,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
		DNSNames:       csr.DNSNames,
		EmailAddresses: csr.EmailAddresses,
		IPAddresses:    csr.IPAddresses,
		URIs:           csr.URIs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca.root, csr.PublicKey, s.ca.rootKey)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "cannot issue a certificate for this request: " + err.Error()}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &refusal{http.StatusInternalServerError, "cannot parse the issued certificate"}
	}
	return cert, nil
}

// issue logs the issuance and answers with the certificate. A certificate that cannot be
// logged is not handed out: the log is the CA's memory of what it issued.
func (s *server) issue(w http.ResponseWriter, r *http.Request, op, user string, cert *x509.Certificate) {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	entry := Issuance{
		Time:            s.opts.Now().UTC(),
		Op:              op,
		User:            user,
		Serial:          cert.SerialNumber.Text(16),
		Subject:         cert.Subject.String(),
		NotBefore:       cert.NotBefore.UTC(),
		NotAfter:        cert.NotAfter.UTC(),
		PublicKeySHA256: hex.EncodeToString(sum[:]),
	}
	if err := s.ca.appendIssued(entry); err != nil {
		s.log.Error("issuance log", "err", err)
		s.answerError(w, r, user, &refusal{http.StatusInternalServerError, "the CA cannot record the issuance; nothing was issued"})
		return
	}
	s.writeCerts(w, r, user, estwire.CertsOnly, cert)
}

func (ca *CA) appendIssued(e Issuance) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(ca.dir, IssuedLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// One write per line: O_APPEND keeps lines whole even with another writer.
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
