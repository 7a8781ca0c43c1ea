// Package wizard is the client's local web wizard (tokenrun ui): a page served on loopback
// that drives the procedures through the JSON protocol (docs/protocol.md) carried over a
// WebSocket, lists the tokens, signs and checks documents, and hands support its bundle.
//
// The page can drive a token, so the server trusts nothing but the page it launched: it
// listens on loopback only; the first request must carry a one-time launch token (in the
// URL printed or opened by tokenrun ui), exchanged for an HttpOnly, SameSite=Strict session
// cookie; every request's Host must be the loopback address and port (DNS rebinding), and
// every WebSocket and POST must come from the page's own Origin; no CORS; a strict
// Content-Security-Policy; one page and one run at a time.
//
// What runs is the CLI's business: Options.Run runs a tokenrun command line in process
// with the JSON front-end on the given streams, and the page only relays its lines.
package wizard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// Procedure is one procedure the page offers: a shipped one or one a bank added.
type Procedure struct {
	Name  string `json:"name"`  // enroll, change_pin, or the bank's own
	Title string `json:"title"` // in the page's language
	// Argv is the command line that runs it, without the --ui, --lang and source flags:
	// ["enroll"], ["run", "renew"].
	Argv []string `json:"-"`
}

// Options are what the server needs from the CLI.
type Options struct {
	// Lang is the language the page starts in unless the person chose one before (the
	// region's, or --lang); Languages are those the catalogs hold.
	Lang      string
	Languages []string
	// Catalog is the message catalog in lang: the page's words and the procedures' titles.
	Catalog func(lang string) (map[string]string, error)
	// Procedures lists the procedures of the active scripts set, titled in lang.
	Procedures func(lang string) ([]Procedure, error)
	// Run runs a tokenrun command line (argv without "tokenrun"; the CLI adds its token,
	// scripts and region flags) with the JSON front-end reading in and writing out, and
	// returns its exit code. Stderr is for the server's log.
	Run func(ctx context.Context, argv []string, in io.Reader, out, stderr io.Writer) int
	// Tokens describes the tokens present for the tokens screen.
	Tokens func(ctx context.Context) ([]Token, error)
	// Verify checks a signature file, with its document for a detached one ("" for none).
	Verify func(ctx context.Context, signature, content string) (any, error)
	// Support writes the support bundle (a zip) to w.
	Support func(ctx context.Context, w io.Writer) error
	// WorkDir is where documents to sign and their signatures stay during a session
	// (under the data directory); it is emptied when the server stops.
	WorkDir string
	// Linger is how long the server waits for a page after the last one closed, before
	// Serve returns (a reload reconnects within it). Default 20 s. Stay keeps serving when the
	// page is closed (the signing agent opens it again for each request).
	Linger time.Duration
	Stay   bool
	// Log gets one line per refused request and per run (never a secret).
	Log io.Writer
}

// Token is one token on the tokens screen.
type Token struct {
	Label        string    `json:"label"`
	Serial       string    `json:"serial"`
	Manufacturer string    `json:"manufacturer"`
	Model        string    `json:"model"`
	Blank        bool      `json:"blank"` // no profile: a fresh or formatted token
	Initialized  bool      `json:"initialized"`
	UserPIN      PINState  `json:"user_pin"`
	SOPIN        PINState  `json:"so_pin"`
	Profiles     []Profile `json:"profiles"`
}

// PINState is what the token says of one PIN.
type PINState struct {
	Set         bool `json:"set"`
	Locked      bool `json:"locked"`
	FinalTry    bool `json:"final_try"`
	CountLow    bool `json:"count_low"`
	RetriesLeft int  `json:"retries_left"` // -1 when the token does not say
}

// Profile is a certificate on the token: who holds it and until when.
type Profile struct {
	KeyID    []byte    `json:"-"` // the certificate's CKA_ID: its key's
	Label    string    `json:"label"`
	Holder   string    `json:"holder"`
	Issuer   string    `json:"issuer"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Expired  bool      `json:"expired"`
}

// Server is one wizard: one launch token, one session, one page, one run at a time.
type Server struct {
	o      Options
	addr   string // host:port it listens on
	launch string // the launch token, until used

	mu       sync.Mutex
	session  string // the session cookie's value, once launched
	page     *page  // the page connected now, nil for none
	pageGone chan struct{}
	running  bool
	docs     *documents
	consents chan *consent // requests from the signing agent, waiting for the page

	// base is Serve's context: runs go on when their page reloads (abandon ends them
	// gracefully) but stop with the server; runs counts them, for Serve to wait.
	base context.Context
	runs sync.WaitGroup
}

const cookieName = "tokenrun_session"

// New returns a server for o; Listen opens its socket.
func New(o Options) *Server {
	if o.Linger <= 0 {
		o.Linger = 20 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return &Server{o: o, launch: randomToken(), pageGone: make(chan struct{}, 1), docs: newDocuments(o.WorkDir),
		consents: make(chan *consent, 8), base: context.Background()}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Listen opens the server's socket on addr ("" for a free port on 127.0.0.1). Anything but
// a loopback address is refused: the page drives a token.
func (s *Server) Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want 127.0.0.1:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--listen %q: the wizard listens on loopback only (127.0.0.1 or ::1), since its page can drive the token", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	return ln, nil
}

// URL is the launch address: it works once, and the browser that opens it gets the session.
func (s *Server) URL() string {
	return "http://" + s.addr + "/launch/" + s.launch
}

// Connected reports whether a page is connected now.
func (s *Server) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.page != nil
}

// Relaunch makes a new one-time launch address (and ends the old session once it is used):
// for a request that needs the person while no page is open, such as the signing agent's.
func (s *Server) Relaunch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.launch = randomToken()
	return "http://" + s.addr + "/launch/" + s.launch
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Serve serves ln until ctx ends, or the page was closed and none came back within Linger
// (once a page has connected). It then stops runs and removes the work files.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	s.mu.Lock()
	s.base = ctx
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer s.docs.removeAll()
	defer s.waitRuns()
	for {
		select {
		case <-ctx.Done():
			shutdown(srv)
			return nil
		case err := <-errc:
			return err
		case <-s.pageGone:
			if s.o.Stay {
				continue
			}
			select {
			case <-time.After(s.o.Linger):
				s.mu.Lock()
				idle := s.page == nil && !s.running
				s.mu.Unlock()
				if idle {
					fmt.Fprintln(s.o.Log, "wizard: the page was closed; stopping")
					shutdown(srv)
					return nil
				}
			case <-ctx.Done():
				shutdown(srv)
				return nil
			}
		}
	}
}

// waitRuns waits for the runs, which Serve's context has cancelled, to write their journal
// and transcript; a token call in progress cannot be abandoned, so the wait is bounded.
func (s *Server) waitRuns() {
	done := make(chan struct{})
	go func() { s.runs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		fmt.Fprintln(s.o.Log, "wizard: a run did not stop within a minute of the wizard")
	}
}

func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Handler is the server's routes behind its checks.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /launch/{token}", s.handleLaunch)
	mux.Handle("GET /", s.sessionOnly(http.HandlerFunc(s.handleStatic)))
	mux.Handle("GET /api/state", s.sessionOnly(http.HandlerFunc(s.handleState)))
	mux.Handle("GET /api/catalog", s.sessionOnly(http.HandlerFunc(s.handleCatalog)))
	mux.Handle("GET /api/tokens", s.sessionOnly(http.HandlerFunc(s.handleTokens)))
	mux.Handle("POST /api/documents", s.sessionOnly(http.HandlerFunc(s.handleUpload)))
	mux.Handle("GET /api/documents/{id}/signature", s.sessionOnly(http.HandlerFunc(s.handleDownload)))
	mux.Handle("POST /api/verify", s.sessionOnly(http.HandlerFunc(s.handleVerify)))
	mux.Handle("GET /api/support", s.sessionOnly(http.HandlerFunc(s.handleSupport)))
	mux.Handle("GET /ws", s.sessionOnly(http.HandlerFunc(s.handleSocket)))
	return s.guard(mux)
}

// guard applies the checks every request passes: the Host (DNS rebinding), the Origin of a
// POST or WebSocket (another site's page), the security headers.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self' ws://"+s.addr+"; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !s.hostAllowed(r.Host) {
			s.refuse(w, r, http.StatusMisdirectedRequest, "wizard_refused_host", "Host "+strconv.Quote(r.Host)+" is not this wizard's address")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
			s.refuse(w, r, http.StatusMethodNotAllowed, "wizard_refused_origin", "method "+r.Method)
			return
		}
		if (r.Method == http.MethodPost || isWebSocket(r)) && !s.originAllowed(r) {
			s.refuse(w, r, http.StatusForbidden, "wizard_refused_origin", "Origin "+strconv.Quote(r.Header.Get("Origin"))+" is not this page's")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed: the Host a browser sends for this server's own address. A page on
// evil.example whose name resolves to 127.0.0.1 sends Host evil.example:PORT.
func (s *Server) hostAllowed(host string) bool {
	_, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		return false
	}
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]"} {
		if host == h+":"+port {
			return true
		}
	}
	return host == s.addr
}

func (s *Server) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o != "" && o == "http://"+r.Host
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// refuse answers a request the server will not serve, in the page's words, and logs why.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, key, why string) {
	fmt.Fprintf(s.o.Log, "wizard: refused %s %s: %s\n", r.Method, r.URL.Path, why)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, s.word(requestLang(r, s.o.Lang), key))
}

// word is one catalog message, or its key when the catalog lacks it (a bank's catalog
// under construction: the key says what is missing).
func (s *Server) word(lang, key string) string {
	if s.o.Catalog != nil {
		if m, err := s.o.Catalog(lang); err == nil && m[key] != "" {
			return m[key]
		}
	}
	return key
}

// requestLang is the language a request asks for: ?lang=, the page's cookie, else def.
func requestLang(r *http.Request, def string) string {
	if l := r.URL.Query().Get("lang"); validLang(l) {
		return l
	}
	if c, err := r.Cookie("tokenrun_lang"); err == nil && validLang(c.Value) {
		return c.Value
	}
	return def
}

func validLang(l string) bool { return l == "kk" || l == "ru" || l == "en" }

// handleLaunch exchanges the one-time launch token for the session cookie.
func (s *Server) handleLaunch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.launch != "" && subtle.ConstantTimeCompare([]byte(r.PathValue("token")), []byte(s.launch)) == 1
	if ok {
		s.launch = "" // once
		s.session = randomToken()
	}
	session := s.session
	s.mu.Unlock()
	if !ok {
		s.refuse(w, r, http.StatusForbidden, "wizard_refused_launch", "launch token unknown or used")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// sessionOnly serves only the browser that used the launch token.
func (s *Server) sessionOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		s.mu.Lock()
		session := s.session
		s.mu.Unlock()
		if err != nil || session == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(session)) != 1 {
			s.refuse(w, r, http.StatusForbidden, "wizard_refused_session", "no session: open the address tokenrun ui printed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(static, "static")
	if r.URL.Path == "/" {
		page, err := fs.ReadFile(sub, "index.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
		return
	}
	http.FileServerFS(sub).ServeHTTP(w, r)
}

var errBusy = errors.New("busy")
