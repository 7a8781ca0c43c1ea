package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/agent/agenttest"
	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

// The page every test connects as, and the token's password.
const (
	bankOrigin = "https://ib.bank.kz"
	pin        = "12345678"
)

// fixture is an agent serving on loopback over a software token that holds a key and a
// certificate from a development CA, as enrollment leaves them, with agenttest playing the
// person.
type fixture struct {
	srv    *agent.Server
	http   *httptest.Server
	url    string // ws://127.0.0.1:PORT
	person *agenttest.Driver
	roots  *x509.CertPool
	home   string
	tokDir string
}

type fixtureOptions struct {
	set       []string // more --set overrides
	noProfile bool     // a blank token: no key, no certificate
	// wrap, when set, wraps the person the server asks (the driver is still f.person).
	wrap func(agent.Person) agent.Person
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{home: t.TempDir(), tokDir: filepath.Join(t.TempDir(), "tok"), person: &agenttest.Driver{}}
	t.Setenv("TOKENRUN_HOME", f.home)
	prov, err := soft.Open(soft.Options{}, f.tokDir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prov.Close() })
	if !o.noProfile {
		f.roots = enrollSoft(t, prov)
	}
	sets := append([]string{"agent.origins=[" + bankOrigin + ", 'http://localhost:8080']", "token.wait=2s"}, o.set...)
	r, err := agent.NewRunner(agent.RunnerOptions{Set: sets, Lang: "en", Provider: prov, LockWait: 5 * time.Second})
	require.NoError(t, err)
	log, err := audit.Open(audit.Dir(f.home))
	require.NoError(t, err)
	// The handler needs the port it serves on, known once the listener is.
	var h http.Handler
	f.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(f.http.Close)
	u, err := url.Parse(f.http.URL)
	require.NoError(t, err)
	port, _ := strconv.Atoi(u.Port())
	var person agent.Person = f.person
	if o.wrap != nil {
		person = o.wrap(person)
	}
	f.srv, err = agent.New(agent.Options{Runner: r, Person: person, Audit: log, Version: "1.4.0"})
	require.NoError(t, err)
	h = f.srv.Handler(port)
	f.url = "ws://" + u.Host
	return f
}

// enrollSoft puts a P-256 key and its certificate (signing and authentication purposes, as
// the development CA issues) on the software token, and returns the issuing root as a pool.
func enrollSoft(t *testing.T, p token.Provider) *x509.CertPool {
	t.Helper()
	ctx := context.Background()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Bank Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	require.NoError(t, err)
	root, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	infos, err := p.Tokens(ctx) // a new software token directory holds one
	require.NoError(t, err)
	require.Len(t, infos, 1)
	tok, err := p.Open(ctx, infos[0])
	require.NoError(t, err)
	defer tok.Close()
	require.NoError(t, tok.Login(ctx, token.User, pin))
	key, err := tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "Main"})
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(0).SetBytes(randomBytes(t)),
		Subject: pkix.Name{CommonName: "qq111111_qwertyui", Country: []string{"KZ"}}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}},
		root, key.Public, caKey)
	require.NoError(t, err)
	_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID, Label: "Main"})
	require.NoError(t, err)
	require.NoError(t, tok.Logout(ctx))
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool
}

func randomBytes(t *testing.T) []byte {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// dial connects as origin and reads the hello.
func (f *fixture) dial(t *testing.T, origin string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, f.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(256 << 20)
	hello := read(t, c)
	require.Equal(t, map[string]any{"result": map[string]any{"version": "1.4.0"}}, hello)
	return c
}

// call sends a request and reads its answer; a request that gets none within a minute fails
// the test, since the client would hang.
func call(t *testing.T, c *websocket.Conn, req any) map[string]any {
	t.Helper()
	var b []byte
	switch r := req.(type) {
	case string:
		b = []byte(r)
	default:
		var err error
		b, err = json.Marshal(r)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, b))
	return read(t, c)
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, b, err := c.Read(ctx)
	require.NoError(t, err, "no answer")
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

// basics is a kz.gov.pki.knca.basics sign request.
func basics(data any, signingParams any, eku ...string) map[string]any {
	if eku == nil {
		eku = []string{}
	}
	return map[string]any{"module": agent.ModuleBasics, "method": "sign", "args": map[string]any{
		"allowedStorages": []string{agent.StorageKaztoken}, "format": "cms", "data": data,
		"signingParams": signingParams, "signerParams": map[string]any{"extKeyUsageOids": eku}, "locale": "en"}}
}

// utils is a kz.gov.pki.knca.commonUtils request.
func utils(method string, args ...any) map[string]any {
	return map[string]any{"module": agent.ModuleCommonUtils, "method": method, "args": args}
}
