package wizard

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenLoopbackOnly(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"", true},
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"192.0.2.1:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			s := New(Options{})
			ln, err := s.Listen(tt.addr)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			defer ln.Close()
			assert.True(t, s.hostAllowed(s.Addr()))
			assert.Regexp(t, `^http://[^/]+/launch/[0-9a-f]{64}$`, s.URL())
		})
	}
}

func TestSafeName(t *testing.T) {
	tests := map[string]string{
		"order.txt":             "order.txt",
		`C:\Users\a\order.txt`:  "order.txt",
		"../../etc/passwd":      "passwd",
		"..":                    "document",
		"":                      "document",
		"a\x1b[31mb.txt":        "a_[31mb.txt",
		"inv\u202eoice.exe.txt": "inv_oice.exe.txt",
		`pay"ment:order?.txt`:   "pay_ment_order_.txt",
		"платёжка №5.xml":       "платёжка №5.xml",
	}
	for in, want := range tests {
		assert.Equal(t, want, safeName(in), "%q", in)
	}
}

// TestServeEndsWhenThePageCloses: the wizard serves until its page is closed (and not
// reopened within Linger), so a client who closes the tab leaves no server behind.
func TestServeEndsWhenThePageCloses(t *testing.T) {
	s := New(Options{Linger: 200 * time.Millisecond})
	ln, err := s.Listen("")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	conn := connectPage(ctx, t, s)
	select {
	case <-served:
		t.Fatal("the server stopped while its page was open")
	case <-time.After(400 * time.Millisecond):
	}
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept serving after its page closed")
	}
}

// connectPage launches s as a browser would and opens the page's WebSocket.
func connectPage(ctx context.Context, t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(s.URL())
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, resp.Cookies(), 1)
	h := http.Header{}
	h.Set("Origin", "http://"+s.Addr())
	h.Set("Cookie", resp.Cookies()[0].String())
	conn, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws", &websocket.DialOptions{HTTPHeader: h})
	require.NoError(t, err)
	_, msg, err := conn.Read(ctx)
	require.NoError(t, err)
	assert.JSONEq(t, `{"op":"ready"}`, string(msg))
	return conn
}

// TestStoppingStopsTheRun: Ctrl-C of the wizard cancels the run in progress (which then
// writes its journal and transcript), and Serve returns only once it has ended.
func TestStoppingStopsTheRun(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	s := New(Options{
		Procedures: func(string) ([]Procedure, error) { return []Procedure{{Name: "slow", Argv: []string{"slow"}}}, nil },
		Run: func(ctx context.Context, _ []string, _ io.Reader, _, _ io.Writer) int {
			close(started)
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond) // the run writing its journal
			close(ended)
			return 6
		},
	})
	ln, err := s.Listen("")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	conn := connectPage(ctx, t, s)
	defer conn.CloseNow()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"op":"start","procedure":"slow"}`)))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not start")
	}
	cancel()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	select {
	case <-ended:
	default:
		t.Fatal("Serve returned before the run had ended")
	}
}

// TestARunThatReadsNothing: a command that fails before it reads a line (a usage error, a
// sign with no profile) ends, and the page can start the next run: the wizard does not wait
// for the run to take the cancel it is given.
func TestARunThatReadsNothing(t *testing.T) {
	runs := 0
	s := New(Options{
		Procedures: func(string) ([]Procedure, error) { return []Procedure{{Name: "bad", Argv: []string{"bad"}}}, nil },
		Run: func(context.Context, []string, io.Reader, io.Writer, io.Writer) int {
			runs++
			return 2
		},
	})
	ln, err := s.Listen("")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = s.Serve(ctx, ln) }()
	conn := connectPage(ctx, t, s)
	defer conn.CloseNow()
	for i := 0; i < 2; i++ {
		require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"op":"start","procedure":"bad"}`)))
		_, msg, err := conn.Read(ctx)
		require.NoError(t, err, "run %d did not end", i+1)
		assert.JSONEq(t, `{"op":"ended","exit":2,"key":"wizard_error_internal"}`, string(msg))
	}
	assert.Equal(t, 2, runs)
}
