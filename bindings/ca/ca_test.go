package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bca "github.com/tokenrun/tokenrun/bindings/ca"
	"github.com/tokenrun/tokenrun/ca"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runtime"
)

const pin = "AB1CD0EFG2HJ"

func serve(t *testing.T) (url, roots, keyFile string) {
	return serveWith(t, devca.ServerOptions{})
}

func serveWith(t *testing.T, opts devca.ServerOptions) (url, roots, keyFile string) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := devca.Init(dir)
	require.NoError(t, err)
	keyFile = filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, a.AddUser("qq111111_qwertyui", pin, keyFile))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(ctx, ln, opts) }()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String(), filepath.Join(dir, devca.RootCertFile), keyFile
}

func TestCAModule(t *testing.T) {
	url, roots, keyFile := serve(t)
	tests := []struct {
		name, src string
		want      []any
		code, err string
	}{
		{name: "initial key fields", src: `local id = assert(ca.load_pkcs12(KEY, PIN)); return id.common_name`, want: []any{"qq111111_qwertyui"}},
		{name: "wrong password", src: `return ca.load_pkcs12(KEY, "ZZZZZZZZZZZ")`, code: "CA_WRONG_PASSWORD"},
		{name: "missing file", src: `return ca.load_pkcs12("no/such/Key.pfx", PIN)`, code: "CA_CONTAINER_MISSING"},
		{name: "missing file under home", src: `return ca.load_pkcs12("~/no-such-dir-tokenrun/Key.pfx", PIN)`, code: "CA_CONTAINER_MISSING", err: "no-such-dir-tokenrun"},
		{name: "GOST container named", src: `return ca.load_pkcs12("../../ca/testdata/gost-streebog256-mac.pfx", PIN)`, code: "CA_UNSUPPORTED_CONTAINER", err: "1.2.643"},
		{name: "cacerts", src: `local c = assert(ca.cacerts{server = URL, roots = ROOTS}); return #c, c[1]:sub(1, 27)`,
			want: []any{float64(1), "-----BEGIN CERTIFICATE-----"}},
		{name: "roots as PEM text", src: `local c = assert(ca.cacerts{server = URL, roots = ca.cacerts{server = URL, roots = ROOTS}[1]}); return #c`,
			want: []any{float64(1)}},
		{name: "unreachable CA", src: `return ca.cacerts{server = "https://127.0.0.1:1", roots = ROOTS, timeout = 2}`, code: "CA_UNAVAILABLE"},
		{name: "missing roots raises", src: `ca.cacerts{server = URL}`, err: "missing option 'roots'"},
		{name: "bad roots file raises", src: `ca.cacerts{server = URL, roots = "/nonexistent.pem"}`, err: "neither PEM text nor a readable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := runtime.NewRegistry()
			require.NoError(t, reg.Add(bca.Module()))
			// The chunk receives ctx as its vararg: the values come through ctx.args.
			src := `local ca = require("ca")
			       local a = (...).args
			       local KEY, PIN, URL, ROOTS = a.key, a.pin, a.url, a.roots
			       ` + tt.src
			s, err := runtime.Compile("t.lua", []byte(src))
			require.NoError(t, err)
			res, err := runtime.Run(context.Background(), s, runtime.RunOptions{Registry: reg, Timeout: 20 * time.Second,
				Args: map[string]any{"key": keyFile, "pin": pin, "url": url, "roots": roots}})
			if tt.code != "" || tt.err != "" {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), pin)
				assert.NotContains(t, err.Error(), "ZZZZZZZZZZZ")
				if tt.code != "" {
					var se *runtime.ScriptError
					require.ErrorAs(t, err, &se)
					assert.Equal(t, tt.code, se.Code, err.Error())
				}
				if tt.err != "" {
					assert.Contains(t, err.Error(), tt.err)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.Values)
		})
	}
}

// TestEnrollWaitsWithinTimeout: a 202 is waited out with on_wait told each second, within
// opts.timeout; past it the call gives CA_PENDING at once. Both carry how long the call took.
func TestEnrollWaitsWithinTimeout(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	csr, err := ca.CSR(key, ca.CSRRequest{Subject: pkix.Name{CommonName: "qq111111_qwertyui"}})
	require.NoError(t, err)
	url, roots, keyFile := serveWith(t, devca.ServerOptions{PendingFirst: 2, RetryAfter: time.Second})
	run := func(src string) ([]any, error) {
		reg := runtime.NewRegistry()
		require.NoError(t, reg.Add(bca.Module()))
		s, err := runtime.Compile("t.lua", []byte(`local ca = require("ca")
			local a = (...).args
			local auth = assert(ca.load_pkcs12(a.key, a.pin))
			`+src))
		require.NoError(t, err)
		res, err := runtime.Run(context.Background(), s, runtime.RunOptions{Registry: reg, Timeout: 20 * time.Second,
			Args: map[string]any{"key": keyFile, "pin": pin, "url": url, "roots": roots, "csr": string(csr)}})
		if err != nil {
			return nil, err
		}
		return res.Values, nil
	}

	// Retry-After (1 s) leaves no time to ask again within 1.5 s: pending at once.
	v, err := run(`local cert, err = ca.enroll { csr = a.csr, auth = auth, server = a.url, roots = a.roots, timeout = 1.5,
			on_wait = function() error("no wait expected") end }
		return err.code, err.retry_after, type(err.seconds), err.started ~= nil and err.ended ~= nil`)
	require.NoError(t, err)
	assert.Equal(t, []any{"CA_PENDING", float64(1), "number", true}, v)

	// The second 202, then issued: one wait heard as "1 s left", then the certificate.
	v, err = run(`local heard = {}
		local cert = assert(ca.enroll { csr = a.csr, auth = auth, server = a.url, roots = a.roots, timeout = 10,
			on_wait = function(w) heard[#heard + 1] = ("%s %s"):format(tostring(w.pending), w.seconds) end })
		return table.concat(heard, ","), cert.seconds >= 1 and cert.seconds < 5, cert.pem:sub(1, 27)`)
	require.NoError(t, err)
	assert.Equal(t, []any{"true 1", true, "-----BEGIN CERTIFICATE-----"}, v)

	// A callback that raises stops the call and raises.
	url, roots, keyFile = serveWith(t, devca.ServerOptions{PendingFirst: 5, RetryAfter: time.Second})
	_, err = run(`return ca.enroll { csr = a.csr, auth = auth, server = a.url, roots = a.roots, timeout = 10,
			on_wait = function() error("boom") end }`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a callback of the CA call raised")
	assert.Contains(t, err.Error(), "boom")
}
