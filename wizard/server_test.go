package wizard

import (
	"testing"

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
