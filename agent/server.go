// Package agent is `tokenrun agent`: a local signing agent a bank's unchanged web page reaches
// as it reaches NCALayer (the same WebSocket protocol, as ncalayer-js-client speaks it), and
// that closes what NCALayer leaves open. Only pages whose origin the region allows connect
// (agent.origins), through a loopback Host; each request that signs or shows the certificate
// is confirmed by the person on their side (Person: the wizard page, a terminal, a JSON
// driver), never in the page; the signing itself is the sign_request procedure, run with the
// safety floor, token lock and transcript of every procedure; one request runs at a time; the
// documents are capped in size and count, an origin in rate; and every request is written to
// an audit log without its content.
package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/bindings/errcode"
	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/ui"
)

// DefaultListen is NCALayer's address, where pages look for it.
const DefaultListen = "127.0.0.1:13579"

// maxConnections bounds the WebSocket connections open at once: a page holds one, a person
// has a few tabs open; more is a page opening connections in a loop.
const maxConnections = 32

// Options configure a Server.
type Options struct {
	Runner *Runner
	Person Person
	// Audit is the audit log every request and refused connection is written to.
	Audit *audit.Log
	// Log gets one line per refused connection and per request (stderr); nil discards them.
	Log io.Writer
	// Version is what the hello line says (NCALayer's version string there).
	Version string
	// Now is the clock of the rate limit; nil is time.Now.
	Now func() time.Time
	// Context, when it ends, ends every connection and the request each has with the person
	// (the agent stopped by Ctrl-C): Wait then waits for them. nil: never.
	Context context.Context
}

// Server serves the protocol on a listener.
type Server struct {
	o       Options
	origins map[string]bool
	policy  region.Agent
	limit   *rateLimit
	running turn // one request with the person and the token at a time
	conns   chan struct{}
	active  sync.WaitGroup // the connections being served
	logMu   sync.Mutex
	// onFailure, when set, is told every failure answered, with its words (Once's exit code).
	onFailure func(f *failure, text string)
}

// New checks o and the region's policy.
func New(o Options) (*Server, error) {
	if o.Runner == nil || o.Person == nil || o.Audit == nil {
		return nil, errors.New("agent: Runner, Person and Audit are needed")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	p := o.Runner.Policy()
	s := &Server{o: o, origins: map[string]bool{}, policy: p, running: newTurn(), conns: make(chan struct{}, maxConnections)}
	for _, raw := range p.Origins {
		n, err := region.NormalizeOrigin(raw)
		if err != nil {
			return nil, fmt.Errorf("agent.origins: %w", err)
		}
		s.origins[n] = true
	}
	s.limit = newRateLimit(p.RequestsPerMinute, o.Now)
	return s, nil
}

// Origins are the allowed origins, normalised.
func (s *Server) Origins() []string {
	var out []string
	for o := range s.origins {
		out = append(out, o)
	}
	return out
}

// logf writes one line of the agent's log.
func (s *Server) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.o.Log, "tokenrun agent: "+format+"\n", args...)
}

// Handler serves the protocol for a listener on port: the WebSocket at any path, as
// NCALayer does.
func (s *Server) Handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveHTTP(w, r, port) })
}

// refuse answers a request refused before the WebSocket opens, and logs and audits why.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, code, reason string) {
	origin := r.Header.Get("Origin")
	s.logf("refused a connection from %q (Host %q): %s", origin, r.Host, reason)
	_ = s.o.Audit.Write(audit.Entry{Origin: origin, Method: "connect", Outcome: audit.Refused, Code: code, Reason: reason})
	http.Error(w, reason, status)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request, port int) {
	// The Host check first: a page on another site that resolves its own name to 127.0.0.1
	// (DNS rebinding) arrives with that name, never with a loopback address of ours.
	if !loopbackHost(r.Host, port) {
		s.refuse(w, r, http.StatusForbidden, "BAD_HOST", fmt.Sprintf("Host %q is not this agent's loopback address (127.0.0.1:%d, localhost:%d)", r.Host, port, port))
		return
	}
	origin := r.Header.Get("Origin")
	switch {
	case origin == "":
		// Browsers send Origin with every WebSocket handshake; only a program leaves it out,
		// and a program on this machine needs no agent to reach the token.
		s.refuse(w, r, http.StatusForbidden, "NO_ORIGIN", "no Origin header: only web pages whose origin the region allows connect")
		return
	case !s.allowed(origin):
		s.refuse(w, r, http.StatusForbidden, "ORIGIN_REFUSED", fmt.Sprintf("origin %q is not in agent.origins of region %s", origin, s.o.Runner.RegionName()))
		return
	}
	select {
	case s.conns <- struct{}{}:
		defer func() { <-s.conns }()
	default:
		s.refuse(w, r, http.StatusServiceUnavailable, "TOO_MANY_CONNECTIONS", fmt.Sprintf("%d connections are open already", maxConnections))
		return
	}
	norm, _ := region.NormalizeOrigin(origin)
	// The origin is decided above, exactly (scheme, host and port, as agent.origins names
	// them); the library's own check, which compares hosts only, is given that same origin.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{originPattern(origin)}})
	if err != nil {
		s.logf("handshake with %s failed: %v", origin, err)
		return
	}
	c.SetReadLimit(maxMessage)
	s.serveConn(r.Context(), c, norm)
}

// allowed reports whether origin, as the browser sent it, is in agent.origins.
func (s *Server) allowed(origin string) bool {
	n, err := region.NormalizeOrigin(origin)
	return err == nil && s.origins[n]
}

// originPattern is origin for websocket.AcceptOptions.OriginPatterns, which matches with
// path.Match: its brackets (an IPv6 host) must not read as a character class.
func originPattern(origin string) string {
	r := strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `*`, `\*`, `?`, `\?`)
	return r.Replace(origin)
}

// loopbackHost reports whether the Host header names this agent on loopback.
func loopbackHost(host string, port int) bool {
	h, p, err := net.SplitHostPort(host)
	if err != nil || p != strconv.Itoa(port) {
		return false
	}
	switch strings.ToLower(h) {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// connection is one page's WebSocket.
type connection struct {
	c      *websocket.Conn
	origin string
	lang   string // set by changeLocale
}

// Wait waits, up to limit, for the connections to end once Options.Context has: a request
// with the person is then cancelled, and its run writes its transcript and audit line.
func (s *Server) Wait(limit time.Duration) bool {
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

// serveConn says hello and answers requests one at a time until the page goes.
func (s *Server) serveConn(ctx context.Context, c *websocket.Conn, origin string) {
	s.active.Add(1)
	defer s.active.Done()
	defer c.CloseNow()
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	// With the agent's own cause (the signal), so that a run it stops ends as a procedure a
	// signal stopped: its transcript's outcome cancelled, the token's state noted.
	defer context.AfterFunc(s.o.Context, func() { cancelCause(context.Cause(s.o.Context)) })()
	conn := &connection{c: c, origin: origin}
	if err := s.send(ctx, conn, map[string]any{"result": map[string]string{"version": s.o.Version}}); err != nil {
		return
	}
	// A reader keeps reading, so that a page that goes away (closed tab) cancels the
	// request it left with the person.
	msgs := make(chan []byte)
	go func() {
		defer cancel()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if typ != websocket.MessageText {
				continue
			}
			select {
			case msgs <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-msgs:
			if err := s.send(ctx, conn, s.answer(ctx, conn, b)); err != nil {
				return
			}
		}
	}
}

func (s *Server) send(ctx context.Context, conn *connection, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return conn.c.Write(ctx, websocket.MessageText, b)
}

// answer is the response to one message.
func (s *Server) answer(ctx context.Context, conn *connection, b []byte) any {
	var c call
	err := json.Unmarshal(b, &c)
	b = nil // the message may be tens of MiB: only what was parsed out of it stays live
	if err != nil {
		// Nothing says which module's shape the page expects: commonUtils' is the one every
		// client reads as an error.
		return s.utilsError(conn.lang, badRequest("the message is not a JSON object with module and method (%v)", err))
	}
	switch c.Module {
	case ModuleBasics:
		if c.Method != "sign" {
			return s.basicsError(conn.lang, &failure{code: CodeUnsupported, key: "agent_error_unknown_method", args: map[string]any{"method": c.Module + "." + c.Method},
				details: fmt.Sprintf("module %s has no method %q here (only sign)", c.Module, c.Method)})
		}
		sc, f := parseBasicsSign(c.Args)
		if f != nil {
			return s.basicsError(nonEmpty(languageOf(c.Args), conn.lang), f)
		}
		return s.request(ctx, conn, sc)
	case ModuleCommonUtils:
		return s.commonUtils(ctx, conn, c)
	}
	// kz.digiflow.mobile.extensions (KAZTOKEN desktop, which the client probes on connect)
	// and the rest: an error in the shape the client reads as "not there".
	return utilsAnswer{Code: "500", Message: s.text(conn.lang, "agent_error_unknown_method", map[string]any{"method": c.Module + "." + c.Method}) +
		" (" + CodeModuleNotFound + ": " + strconv.Quote(c.Module) + ")"}
}

// languageOf is the locale of basics' args, for an error before they parsed.
func languageOf(raw json.RawMessage) string {
	var a struct {
		Locale string `json:"locale"`
	}
	_ = json.Unmarshal(raw, &a)
	return language(a.Locale)
}

func (s *Server) commonUtils(ctx context.Context, conn *connection, c call) any {
	switch c.Method {
	case "getActiveTokens":
		present, err := s.tokenPresent(ctx)
		if err != nil {
			return s.utilsError(conn.lang, &failure{code: errcode.Of(err), key: "error_token_other", args: map[string]any{"code": errcode.Of(err)}, details: err.Error()})
		}
		stores := []string{}
		if present {
			stores = append(stores, StorageKaztoken)
		}
		return utilsAnswer{Code: "200", ResponseObject: stores}
	case "getKeyInfo":
		sc, f := parseKeyInfo(c.Args)
		if f != nil {
			return s.utilsError(conn.lang, f)
		}
		return s.request(ctx, conn, sc)
	case "createCAdESFromBase64", "createCMSSignatureFromBase64", "createCAdESFromBase64Hash":
		sc, f := parseUtilsSign(c.Method, c.Args, c.Method == "createCAdESFromBase64Hash")
		if f != nil {
			return s.utilsError(conn.lang, f)
		}
		return s.request(ctx, conn, sc)
	case "changeLocale":
		list, f := positional(c.Args, c.Method, 1)
		if f != nil {
			return s.utilsError(conn.lang, f)
		}
		l, f := argString(list, 0, c.Method)
		if f != nil {
			return s.utilsError(conn.lang, f)
		}
		conn.lang = language(l)
		return utilsAnswer{Code: "200"}
	case "signXml", "signXmls":
		return s.utilsError(conn.lang, &failure{code: CodeUnsupported, key: "agent_error_xml", details: c.Method + ": XML signing (XMLDSig) is not supported yet"})
	}
	return s.utilsError(conn.lang, &failure{code: CodeUnsupported, key: "agent_error_unknown_method", args: map[string]any{"method": c.Module + "." + c.Method},
		details: fmt.Sprintf("module %s has no method %q here", c.Module, c.Method)})
}

// tokenPresent reports whether an initialised token is there (getActiveTokens).
func (s *Server) tokenPresent(ctx context.Context) (bool, error) {
	infos, err := s.o.Runner.Provider().Tokens(ctx)
	if err != nil {
		return false, err
	}
	for _, i := range infos {
		if i.Initialized && (s.o.Runner.o.URI == nil || s.o.Runner.o.URI.MatchToken(i)) {
			return true, nil
		}
	}
	return false, nil
}

// request runs one request that needs the person and answers it.
func (s *Server) request(ctx context.Context, conn *connection, sc *signCall) any {
	req := sc.req
	req.ID, req.Origin, req.Received = newRequestID(), conn.origin, s.o.Now()
	if req.Language == "" {
		req.Language = conn.lang
	}
	req.Language = s.o.Runner.Language(req.Language)
	req.describe(sc.docs)
	if req.Operation == OpKeyInfo {
		req.Summary = s.text(req.Language, "agent_key_info_summary", map[string]any{"origin": req.Origin})
	} else {
		req.Summary = s.text(req.Language, "agent_summary", map[string]any{"origin": req.Origin, "count": len(req.Documents), "bytes": req.TotalSize()})
	}
	entry := audit.Entry{Time: req.Received, Origin: req.Origin, Method: req.Module + "." + req.Method, RequestID: req.ID,
		Attached: req.Attached, Digested: req.Digested}
	for _, d := range req.Documents {
		entry.Documents = append(entry.Documents, audit.Doc{SHA256: d.SHA256, Size: d.Size})
	}
	out := s.run(ctx, sc, &entry)
	entry.DurationMS = s.o.Now().Sub(req.Received).Milliseconds()
	if err := s.o.Audit.Write(entry); err != nil {
		// A signature that cannot be recorded is not handed out: the log is the client's
		// account of what pages signed with their key.
		s.logf("request %s: %v", req.ID, err)
		out = &failure{code: CodeInternal, key: "error_other", args: map[string]any{"code": CodeInternal}, details: "the audit log cannot be written: " + err.Error()}
	}
	s.logf("request %s from %s: %s %d document(s): %s %s", req.ID, req.Origin, entry.Method, len(req.Documents), entry.Outcome, entry.Code)
	return s.reply(req.Language, sc, out)
}

// run asks the person and runs the procedure; the result is a signatures' answer or a
// *failure. entry gets the outcome.
func (s *Server) run(ctx context.Context, sc *signCall, entry *audit.Entry) any {
	req := sc.req
	if !s.limit.allow(req.Origin) {
		entry.Outcome, entry.Code, entry.Reason = audit.Refused, CodeRateLimited, fmt.Sprintf("more than %d requests in a minute", s.policy.RequestsPerMinute)
		return &failure{code: CodeRateLimited, key: "agent_error_rate_limited", details: entry.Reason}
	}
	if err := s.running.take(ctx); err != nil {
		entry.Outcome, entry.Code = audit.Cancelled, errcode.Cancelled
		return &failure{cancelled: true}
	}
	defer s.running.give()
	fe, release, err := s.o.Person.Attend(ctx, *req)
	if err != nil {
		entry.Outcome, entry.Code = audit.Cancelled, errcode.Cancelled
		return &failure{cancelled: true, details: err.Error()}
	}
	res, err := s.o.Runner.run(ctx, sc, fe)
	release()
	return s.outcome(sc, res, err, entry)
}

// outcome reads what the run did: the signatures kept with the documents, or the
// certificate the procedure showed; a failure otherwise.
func (s *Server) outcome(sc *signCall, res *runtime.Result, err error, entry *audit.Entry) any {
	if err != nil {
		if errors.Is(err, ui.ErrCancelled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			entry.Outcome, entry.Code = audit.Cancelled, errcode.Cancelled
			return &failure{cancelled: true, err: err}
		}
		code, msg := personText(err, s.o.Runner.Messages(sc.req.Language))
		if code == errcode.Cancelled {
			entry.Outcome, entry.Code = audit.Cancelled, code
			return &failure{cancelled: true, err: err}
		}
		entry.Outcome, entry.Code = audit.Failed, code
		return &failure{code: code, message: msg, details: err.Error(), err: err}
	}
	if sc.req.Operation == OpKeyInfo {
		info, serial, ferr := keyInfo(res)
		if ferr != nil {
			entry.Outcome, entry.Code = audit.Failed, CodeInternal
			return ferr
		}
		entry.Outcome, entry.CertificateSerial = audit.Shown, serial
		return info
	}
	sigs := make([][]byte, len(sc.docs))
	for i, d := range sc.docs {
		sig, cert, ok := d.Signature()
		if !ok {
			entry.Outcome, entry.Code = audit.Failed, CodeInternal
			return &failure{code: CodeInternal, key: "error_other", args: map[string]any{"code": CodeInternal},
				details: fmt.Sprintf("the procedure %s ended without signing document %d", Procedure, d.Index())}
		}
		sigs[i] = sig
		entry.CertificateSerial = bindsign.Serial(cert)
	}
	entry.Outcome = audit.Signed
	return sigs
}

// keyInfo is getKeyInfo's answer from the certificate the procedure returned, with the
// fields NCALayer gives (times in milliseconds since 1970, as strings).
func keyInfo(res *runtime.Result) (map[string]any, string, *failure) {
	var table map[string]any
	if res != nil && len(res.Values) > 0 {
		table, _ = res.Values[0].(map[string]any)
	}
	pemText, _ := table["certificate"].(string)
	cert, err := bindsign.ParseCertificate([]byte(pemText))
	if err != nil {
		return nil, "", &failure{code: CodeInternal, key: "error_other", args: map[string]any{"code": CodeInternal},
			details: fmt.Sprintf("the procedure %s returned no certificate: %v", Procedure, err)}
	}
	alg := cert.PublicKeyAlgorithm.String() // RSA, ECDSA, Ed25519
	keyID, _ := table["key_id"].(string)
	return map[string]any{
		"alias": keyID, "keyId": keyID, "algorithm": alg,
		"subjectCn": cert.Subject.CommonName, "subjectDn": cert.Subject.String(),
		"issuerCn": cert.Issuer.CommonName, "issuerDn": cert.Issuer.String(),
		"serialNumber":           strings.ToLower(cert.SerialNumber.Text(16)),
		"certNotBefore":          strconv.FormatInt(cert.NotBefore.UnixMilli(), 10),
		"certNotAfter":           strconv.FormatInt(cert.NotAfter.UnixMilli(), 10),
		"authorityKeyIdentifier": fmt.Sprintf("%x", cert.AuthorityKeyId),
		"pem":                    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
	}, bindsign.Serial(cert), nil
}

// reply is out in the request's shape: basics gives PEM CMS, commonUtils base64 DER; a
// single document gets a single signature, an array an array.
func (s *Server) reply(lang string, sc *signCall, out any) any {
	if f, ok := out.(*failure); ok {
		if sc.reply == replyBasics {
			return s.basicsError(lang, f)
		}
		return s.utilsError(lang, f)
	}
	if info, ok := out.(map[string]any); ok {
		return utilsAnswer{Code: "200", ResponseObject: info}
	}
	sigs := out.([][]byte)
	enc := make([]string, len(sigs))
	for i, sig := range sigs {
		if sc.reply == replyBasics {
			enc[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: sig}))
		} else {
			enc[i] = base64.StdEncoding.EncodeToString(sig)
		}
	}
	var result any = enc
	if !sc.array {
		result = enc[0]
	}
	if sc.reply == replyBasics {
		return basicsAnswer{Status: true, Body: &basicsBody{Result: result}}
	}
	return utilsAnswer{Code: "200", ResponseObject: result}
}

// basicsError is f in basics' shape; a cancel is a body with no result.
func (s *Server) basicsError(lang string, f *failure) basicsAnswer {
	if f.cancelled {
		if s.onFailure != nil {
			s.onFailure(f, "")
		}
		return basicsAnswer{Status: true, Body: &basicsBody{}}
	}
	details := f.details
	return basicsAnswer{Status: false, Code: f.code, Message: s.failureText(lang, f), Details: &details}
}

// utilsError is f in commonUtils' shape: "500" with the words; NCALayer's action.canceled
// for a cancel.
func (s *Server) utilsError(lang string, f *failure) utilsAnswer {
	if f.cancelled {
		if s.onFailure != nil {
			s.onFailure(f, "")
		}
		return utilsAnswer{Code: "500", Message: canceledMessage}
	}
	msg := s.failureText(lang, f)
	if f.code != "" {
		msg += " (" + f.code + ": " + f.details + ")"
	}
	return utilsAnswer{Code: "500", Message: msg}
}

func (s *Server) failureText(lang string, f *failure) string {
	text := f.message
	if text == "" {
		text = s.text(lang, f.key, f.args)
	}
	if s.onFailure != nil {
		s.onFailure(f, text)
	}
	return text
}

// text is key's catalog text in lang.
func (s *Server) text(lang, key string, args map[string]any) string {
	return catalogText(s.o.Runner.Messages(lang), key, "error_other", args)
}

// rateLimit counts the requests each origin made in the last minute.
type rateLimit struct {
	mu   sync.Mutex
	per  int
	now  func() time.Time
	seen map[string][]time.Time
}

func newRateLimit(per int, now func() time.Time) *rateLimit {
	return &rateLimit{per: per, now: now, seen: map[string][]time.Time{}}
}

// allow counts a request of origin, unless it made per of them in the last minute.
func (l *rateLimit) allow(origin string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	recent := l.seen[origin][:0]
	for _, t := range l.seen[origin] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	if len(recent) >= l.per {
		l.seen[origin] = recent
		return false
	}
	l.seen[origin] = append(recent, now)
	return true
}
