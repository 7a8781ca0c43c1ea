package wizard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// maxPageMessage bounds one message from the page: an answer line carrying a key file
// (ui.MaxFileData in base64) and its envelope.
const maxPageMessage = 3 << 20

// page is the one page connected over the WebSocket.
type page struct {
	conn *websocket.Conn
	ctx  context.Context
	mu   sync.Mutex
	conv *conversation // the run (or the agent's request) the page takes part in now
}

// pageMessage is what the page sends.
type pageMessage struct {
	Op        string          `json:"op"` // start, sign, line, cancel
	Procedure string          `json:"procedure"`
	Lang      string          `json:"lang"`
	Document  string          `json:"document"`
	Detached  bool            `json:"detached"`
	Line      json.RawMessage `json:"line"`
}

// serverMessage is what the server sends the page.
type serverMessage struct {
	Op       string          `json:"op"` // ready, busy, line, ended, refused, consent
	Line     json.RawMessage `json:"line,omitempty"`
	Exit     *int            `json:"exit,omitempty"`
	Key      string          `json:"key,omitempty"`
	Document string          `json:"document,omitempty"`
	Signed   bool            `json:"signed,omitempty"`
	Consent  *Consent        `json:"consent,omitempty"`
}

// Consent is what a request for the person shows beside its procedure's questions: who
// asks and, for each document, what the procedure cannot (it never sees the content): the
// start of a text document.
type Consent struct {
	Title     string            `json:"title"`
	Documents []ConsentDocument `json:"documents,omitempty"`
}

// ConsentDocument is one document of a request.
type ConsentDocument struct {
	Index     int    `json:"index"`
	Size      int    `json:"size"`
	SHA256    string `json:"sha256"`
	Preview   string `json:"preview,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

func (p *page) send(m serverMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	return p.conn.Write(ctx, websocket.MessageText, b)
}

// handleSocket is the page's channel: one page at a time; a second tab is told the
// wizard is open elsewhere.
func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	// The Origin was checked by guard against the Host, which hostAllowed checked.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{r.Host}})
	if err != nil {
		fmt.Fprintf(s.o.Log, "wizard: websocket: %v\n", err)
		return
	}
	conn.SetReadLimit(maxPageMessage)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p := &page{conn: conn, ctx: ctx}
	s.mu.Lock()
	other := s.page != nil
	if !other {
		s.page = p
	}
	s.mu.Unlock()
	if other {
		_ = p.send(serverMessage{Op: "busy", Key: "wizard_already_open"})
		conn.Close(websocket.StatusPolicyViolation, "already open in another tab")
		return
	}
	defer func() {
		s.mu.Lock()
		s.page = nil
		s.mu.Unlock()
		if c := p.current(); c != nil {
			c.abandon() // the page is gone: its run must not wait for answers
		}
		select {
		case s.pageGone <- struct{}{}:
		default:
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}()
	if err := p.send(serverMessage{Op: "ready"}); err != nil {
		return
	}
	go s.offerConsents(p)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var m pageMessage
		if err := json.Unmarshal(data, &m); err != nil {
			_ = p.send(serverMessage{Op: "refused", Key: "wizard_error_bad_request"})
			continue
		}
		s.handlePageMessage(p, m)
	}
}

func (p *page) current() *conversation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conv
}

func (s *Server) handlePageMessage(p *page, m pageMessage) {
	switch m.Op {
	case "start":
		procs, err := s.o.Procedures(m.Lang)
		if err != nil {
			_ = p.send(serverMessage{Op: "refused", Key: "wizard_error_internal"})
			return
		}
		for _, pr := range procs {
			if pr.Name == m.Procedure {
				s.startRun(p, withLang(pr.Argv, m.Lang), "")
				return
			}
		}
		_ = p.send(serverMessage{Op: "refused", Key: "wizard_error_no_procedure"})
	case "sign":
		doc, ok := s.docs.get(m.Document)
		if !ok {
			_ = p.send(serverMessage{Op: "refused", Key: "wizard_error_no_document"})
			return
		}
		doc.signature = doc.path + ".p7s"
		argv := []string{"sign", "--force", "--out", doc.signature}
		if m.Detached {
			argv = append(argv, "--detached")
		}
		s.startRun(p, append(withLang(argv, m.Lang), "--", doc.path), m.Document)
	case "line", "cancel":
		c := p.current()
		if c == nil {
			_ = p.send(serverMessage{Op: "refused", Key: "wizard_error_no_run"})
			return
		}
		line := m.Line
		if m.Op == "cancel" {
			line = json.RawMessage(`{"cancel":true}`)
		}
		c.answer(line)
	default:
		_ = p.send(serverMessage{Op: "refused", Key: "wizard_error_bad_request"})
	}
}

func withLang(argv []string, lang string) []string {
	out := append([]string{}, argv...)
	out = append(out, "--ui", "json")
	if validLang(lang) {
		out = append(out, "--lang", lang)
	}
	return out
}

// conversation is one run's JSON-lines exchange, relayed between the run and the page.
type conversation struct {
	in     *io.PipeWriter // the run's stdin
	mu     sync.Mutex
	closed bool
}

// answer passes one driver line to the run. A line is one JSON value: the page cannot
// smuggle a second line into it.
func (c *conversation) answer(line json.RawMessage) {
	var compact bytes.Buffer
	if json.Compact(&compact, line) != nil {
		return
	}
	compact.WriteByte('\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		_, _ = c.in.Write(compact.Bytes())
	}
}

// abandon ends the run's input: the run stops as cancelled while it works, or with
// NO_ANSWER at its next prompt.
// The cancel line is written from a goroutine: a run that reads nothing now (it failed
// before its front-end started, or has ended) must not block the caller; the write ends
// when the run reads it or its end closes the pipe's reading side.
func (c *conversation) abandon() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	go func() {
		_, _ = c.in.Write([]byte("{\"cancel\":true}\n"))
		_ = c.in.Close()
	}()
}

// startRun runs argv for the page, one run at a time.
func (s *Server) startRun(p *page, argv []string, document string) {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		_ = p.send(serverMessage{Op: "refused", Key: "wizard_busy_run"})
		return
	}
	s.running = true
	s.mu.Unlock()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	conv := &conversation{in: inW}
	p.mu.Lock()
	p.conv = conv
	p.mu.Unlock()
	fmt.Fprintf(s.o.Log, "wizard: run tokenrun %s\n", strings.Join(argv, " "))
	relayed := make(chan struct{})
	var sawResult bool
	go func() {
		defer close(relayed)
		sawResult = relay(p, outR)
	}()
	s.mu.Lock()
	base := s.base
	s.mu.Unlock()
	s.runs.Add(1)
	go func() {
		defer s.runs.Done()
		var stderr bytes.Buffer
		code := s.o.Run(base, argv, inR, outW, &stderr)
		_ = outW.Close()
		_ = inR.Close() // the run is over: nothing reads its input any more
		<-relayed
		conv.abandon()
		if stderr.Len() > 0 {
			fmt.Fprintf(s.o.Log, "wizard: tokenrun %s: exit %d: %s", argv[0], code, lastLines(stderr.String(), 3))
		}
		p.mu.Lock()
		if p.conv == conv {
			p.conv = nil
		}
		p.mu.Unlock()
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
		m := serverMessage{Op: "ended", Exit: &code}
		if !sawResult && code != 0 {
			m.Key = "wizard_error_internal" // it failed before it could say why: the log has it
		}
		if document != "" {
			m.Document, m.Signed = document, code == 0
		}
		_ = p.send(m)
	}()
}

// relay sends the run's lines to the page as they come, and reports whether the result
// line was among them.
func relay(p *page, out io.Reader) (sawResult bool) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue // not a protocol line
		}
		sawResult = sawResult || head.Type == "result"
		_ = p.send(serverMessage{Op: "line", Line: append(json.RawMessage{}, line...)})
	}
	_, _ = io.Copy(io.Discard, out)
	return sawResult
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// consent is a conversation another part of tokenrun (the signing agent) needs the person
// for: its lines are relayed to the page like a run's.
type consent struct {
	info  Consent
	out   io.ReadCloser // what the requester's front-end writes, for the page
	conv  *conversation // the page's answers go here
	taken chan struct{} // closed once a page took it
	done  chan struct{} // closed by release
	once  sync.Once
}

// ErrNoPage is returned by Converse when no page took the request in time.
var ErrNoPage = errors.New("the wizard page did not take the request")

// Converse puts a conversation before the person: it waits until the page is connected and
// no run is going, then relays. in is what the page answers and out where the caller's
// front-end writes (ui.NewJSON(in, out)); call release once the conversation has ended.
// info says who asks (the requesting web page's origin) and what, for the page's banner.
func (s *Server) Converse(ctx context.Context, info Consent) (in io.Reader, out io.WriteCloser, release func(), err error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &consent{info: info, out: outR, conv: &conversation{in: inW}, taken: make(chan struct{}), done: make(chan struct{})}
	select {
	case s.consents <- c:
	case <-ctx.Done():
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrNoPage, ctx.Err())
	}
	// Wake a connected page that waits for nothing.
	s.mu.Lock()
	p := s.page
	s.mu.Unlock()
	if p != nil {
		go s.offerConsents(p)
	}
	select {
	case <-c.taken:
	case <-ctx.Done():
		c.release()
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrNoPage, ctx.Err())
	}
	return inR, outW, func() { _ = outW.Close(); _ = inR.Close(); c.release() }, nil
}

func (c *consent) release() {
	c.once.Do(func() { close(c.done) })
}

// offerConsents relays waiting requests to p, one at a time, between its runs.
func (s *Server) offerConsents(p *page) {
	for {
		s.mu.Lock()
		if s.page != p || s.running {
			s.mu.Unlock()
			return
		}
		var c *consent
		select {
		case c = <-s.consents:
		default:
		}
		if c == nil {
			s.mu.Unlock()
			return
		}
		s.running = true
		s.mu.Unlock()
		p.mu.Lock()
		p.conv = c.conv
		p.mu.Unlock()
		close(c.taken)
		_ = p.send(serverMessage{Op: "consent", Consent: &c.info})
		relayed := make(chan struct{})
		go func() { defer close(relayed); relay(p, c.out) }()
		select {
		case <-c.done:
		case <-p.ctx.Done():
			c.conv.abandon()
			<-c.done
		}
		<-relayed
		c.conv.abandon()
		p.mu.Lock()
		if p.conv == c.conv {
			p.conv = nil
		}
		p.mu.Unlock()
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
		zero := 0
		_ = p.send(serverMessage{Op: "ended", Exit: &zero})
	}
}
