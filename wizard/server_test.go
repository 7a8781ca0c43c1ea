package wizard

import (
	"context"
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
