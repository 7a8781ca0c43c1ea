package devca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/tokenrun/tokenrun/ca/internal/estwire"
)

const testPIN = "A1B2C3D4E5F"

func TestInitWritesFilesWithModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := Init(dir)
	require.NoError(t, err)
	modes := map[string]os.FileMode{
		RootCertFile: 0o644, RootKeyFile: 0o600, ServerCertFile: 0o644, ServerKeyFile: 0o600, UsersFile: 0o600,
	}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.Equal(t, want, fi.Mode().Perm(), name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, len(modes), "no temporary files are left behind")

	root := ca.Root()
	assert.True(t, root.IsCA)
	assert.IsType(t, &ecdsa.PublicKey{}, root.PublicKey)
	server, err := x509.ParseCertificate(ca.TLSConfig().Certificates[0].Certificate[0])
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		assert.NoError(t, server.VerifyHostname(host), host)
	}
	_, err = server.Verify(x509.VerifyOptions{Roots: ca.RootPool(), DNSName: "localhost"})
	assert.NoError(t, err)

	reopened, err := Open(dir)
	require.NoError(t, err)
	assert.True(t, reopened.Root().Equal(root))
}

func TestInitNeverReplacesACA(t *testing.T) {
	dir := t.TempDir()
	_, err := Init(dir)
	require.NoError(t, err)
	before := snapshot(t, dir)
	_, err = Init(dir)
	require.ErrorIs(t, err, ErrExists)
	assert.Contains(t, err.Error(), "tokenrun ca serve --dir")
	assert.Equal(t, before, snapshot(t, dir), "a refused Init touches nothing")

	// A half-written CA (a crash after the key) is refused too: its key must not be lost.
	partial := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(partial, RootKeyFile), []byte("key"), 0o600))
	_, err = Init(partial)
	require.ErrorIs(t, err, ErrExists)
	b, _ := os.ReadFile(filepath.Join(partial, RootKeyFile))
	assert.Equal(t, "key", string(b))
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(t.TempDir())
	require.ErrorIs(t, err, ErrNoCA)
	assert.Contains(t, err.Error(), "tokenrun ca init")

	dir := t.TempDir()
	_, err = Init(dir)
	require.NoError(t, err)
	other := t.TempDir()
	_, err = Init(other)
	require.NoError(t, err)
	key, _ := os.ReadFile(filepath.Join(other, RootKeyFile))
	require.NoError(t, os.WriteFile(filepath.Join(dir, RootKeyFile), key, 0o600))
	_, err = Open(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not the key of")
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

func TestAddUser(t *testing.T) {
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, ca.AddUser("qq111111_qwertyui", testPIN, out))

	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a key container is private")
	data, _ := os.ReadFile(out)
	key, cert, chain, err := pkcs12.DecodeChain(data, testPIN)
	require.NoError(t, err)
	assert.NotNil(t, key)
	assert.Equal(t, "qq111111_qwertyui", cert.Subject.CommonName)
	assert.Equal(t, []string{InitialKeyOU}, cert.Subject.OrganizationalUnit)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage)
	require.Len(t, chain, 1)
	assert.True(t, chain[0].Equal(ca.Root()))

	users, err := ca.Users()
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "qq111111_qwertyui", users[0].ID)
	assert.Equal(t, fingerprint(cert), users[0].CertSHA256)

	// The file is never overwritten.
	err = ca.AddUser("qq111111_qwertyui", testPIN, out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exists")
	after, _ := os.ReadFile(out)
	assert.Equal(t, data, after)

	// Adding again replaces the user's initial key.
	out2 := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, ca.AddUser("qq111111_qwertyui", testPIN, out2))
	users, err = ca.Users()
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.NotEqual(t, fingerprint(cert), users[0].CertSHA256)

	for _, bad := range []struct{ id, pin, want string }{
		{"", testPIN, "user ID is empty"},
		{" x", testPIN, "spaces"},
		{"a\x00b", testPIN, "unprintable"},
		{strings.Repeat("x", 65), testPIN, "at most 64"},
		{"user", "", "PIN is empty"},
	} {
		err := ca.AddUser(bad.id, bad.pin, filepath.Join(t.TempDir(), "k.pfx"))
		require.Error(t, err, bad.id)
		assert.Contains(t, err.Error(), bad.want)
		assert.NotContains(t, err.Error(), testPIN)
	}
}

// requireTool finds an external tool; under CI=true a missing one is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install %s)", name, name)
		}
		t.Skipf("%s is not installed (apt-get install %s)", name, name)
	}
	return p
}

func TestAddUserContainerOpensWithOpenSSL(t *testing.T) {
	openssl := requireTool(t, "openssl")
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, ca.AddUser("qq111111_qwertyui", testPIN, out))

	cmd := exec.Command(openssl, "pkcs12", "-in", out, "-passin", "pass:"+testPIN, "-nokeys")
	pemOut, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", pemOut)
	assert.Contains(t, string(pemOut), "BEGIN CERTIFICATE")
	assert.Contains(t, string(pemOut), "CN = qq111111_qwertyui")

	cmd = exec.Command(openssl, "pkcs12", "-in", out, "-passin", "pass:WRONGPIN000", "-nokeys")
	bad, err := cmd.CombinedOutput()
	require.Error(t, err, "a wrong PIN must not open it: %s", bad)
}

// testServer runs the CA's EST server on a loopback port.
func testServer(t *testing.T, ca *CA, opts ServerOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ca.ServeListener(ctx, ln, opts) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "https://" + ln.Addr().String()
}

type identity struct {
	cert *x509.Certificate
	key  any
}

func loadIdentity(t *testing.T, path string) identity {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	key, cert, _, err := pkcs12.DecodeChain(data, testPIN)
	require.NoError(t, err)
	return identity{cert, key}
}

type answer struct {
	status int
	header http.Header
	body   string
	certs  []*x509.Certificate
}

// do sends one raw EST request, so the tests control every byte.
func do(t *testing.T, ca *CA, method, url string, id *identity, contentType string, body []byte) answer {
	t.Helper()
	tc := &tls.Config{RootCAs: ca.RootPool(), MinVersion: tls.VersionTLS12}
	if id != nil {
		c := tls.Certificate{Certificate: [][]byte{id.cert.Raw}, PrivateKey: id.key}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode == http.StatusOK {
		der, err := estwire.DecodeBody(b)
		require.NoError(t, err)
		a.certs, err = estwire.DecodeCertsOnly(der)
		require.NoError(t, err)
	}
	return a
}

func newCSR(t *testing.T, subject pkix.Name) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	require.NoError(t, err)
	return key, der
}

func TestServerRules(t *testing.T) {
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	const user = "qq111111_qwertyui"
	pfx := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, ca.AddUser(user, testPIN, pfx))
	initial := loadIdentity(t, pfx)
	// A replaced initial key: the user got a new one, the old one stops working.
	stale := filepath.Join(t.TempDir(), "old.pfx")
	require.NoError(t, ca.AddUser("other_user", testPIN, stale))
	staleID := loadIdentity(t, stale)
	require.NoError(t, ca.AddUser("other_user", testPIN, filepath.Join(t.TempDir(), "new.pfx")))
	// A certificate from another CA.
	foreignCA, err := Init(t.TempDir())
	require.NoError(t, err)
	foreignPFX := filepath.Join(t.TempDir(), "foreign.pfx")
	require.NoError(t, foreignCA.AddUser(user, testPIN, foreignPFX))
	foreign := loadIdentity(t, foreignPFX)

	base := testServer(t, ca, ServerOptions{})
	est := base + "/.well-known/est"
	tokenKey, good := newCSR(t, pkix.Name{CommonName: user, Country: []string{"KZ"}})
	_, otherUser := newCSR(t, pkix.Name{CommonName: "qq222222_someone"})
	_, noCN := newCSR(t, pkix.Name{Organization: []string{"x"}})
	_, twoCN := newCSR(t, pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: []int{2, 5, 4, 3}, Value: user}, {Type: []int{2, 5, 4, 3}, Value: "x"}}})
	initialKeyCSR, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: user}}, initial.key)
	require.NoError(t, err)
	b64 := func(der []byte) []byte { return estwire.EncodeBody(der) }

	// An issued certificate, for the re-enrollment cases.
	a := do(t, ca, "POST", est+"/simpleenroll", &initial, "application/pkcs10", b64(good))
	require.Equal(t, http.StatusOK, a.status, a.body)
	issued := identity{a.certs[0], tokenKey}

	// Signed by the root, fit for client authentication, but never issued by enrollment.
	unloggedKey, _ := newCSR(t, pkix.Name{CommonName: user})
	unloggedDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: mustSerial(), Subject: pkix.Name{CommonName: user},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.root, unloggedKey.Public(), ca.rootKey)
	require.NoError(t, err)
	unloggedCert, err := x509.ParseCertificate(unloggedDER)
	require.NoError(t, err)
	unlogged := identity{unloggedCert, unloggedKey}

	cases := []struct {
		name        string
		method, url string
		id          *identity
		ctype       string
		body        []byte
		status      int
		reason      string
	}{
		{"no client certificate", "POST", est + "/simpleenroll", nil, "application/pkcs10", b64(good), 401, "present the user's initial key"},
		{"foreign CA", "POST", est + "/simpleenroll", &foreign, "application/pkcs10", b64(good), 403, "not issued by this CA"},
		{"replaced initial key", "POST", est + "/simpleenroll", &staleID, "application/pkcs10", b64(good), 403, "not registered"},
		{"issued certificate on simpleenroll", "POST", est + "/simpleenroll", &issued, "application/pkcs10", b64(good), 403, "renew it with simplereenroll"},
		{"another user's ID", "POST", est + "/simpleenroll", &initial, "application/pkcs10", b64(otherUser), 403, `names user "qq222222_someone" but the initial key belongs to user "qq111111_qwertyui"`},
		{"no CN", "POST", est + "/simpleenroll", &initial, "application/pkcs10", b64(noCN), 403, "exactly one CN"},
		{"two CNs", "POST", est + "/simpleenroll", &initial, "application/pkcs10", b64(twoCN), 403, "exactly one CN"},
		{"initial key's own key", "POST", est + "/simpleenroll", &initial, "application/pkcs10", b64(initialKeyCSR), 403, "generate a new key"},
		{"wrong content type", "POST", est + "/simpleenroll", &initial, "application/json", b64(good), 415, "application/pkcs10"},
		{"not base64", "POST", est + "/simpleenroll", &initial, "application/pkcs10", []byte("%%%not base64%%%"), 400, "not a base64"},
		{"not a CSR", "POST", est + "/simpleenroll", &initial, "application/pkcs10", b64([]byte{0x30, 0x03, 0x02, 0x01, 0x01}), 400, "not a PKCS#10"},
		{"too large", "POST", est + "/simpleenroll", &initial, "application/pkcs10", bytes.Repeat([]byte("A"), maxCSRBody+10), 413, "larger than"},
		{"unknown label", "POST", est + "/5y/simpleenroll", &initial, "application/pkcs10", b64(good), 404, `unknown label "5y"`},
		{"GET on simpleenroll", "GET", est + "/simpleenroll", &initial, "", nil, 405, ""},
		{"initial key on simplereenroll", "POST", est + "/simplereenroll", &initial, "application/pkcs10", b64(good), 403, "initial key cannot re-enroll"},
		{"reenroll with a certificate not in the log", "POST", est + "/simplereenroll", &unlogged, "application/pkcs10", b64(good), 403, "not in this CA's issuance log"},
		{"reenroll changing the subject", "POST", est + "/simplereenroll", &issued, "application/pkcs10", b64(otherUser), 403, "RFC 7030 4.2.2"},
		{"raw DER body", "POST", est + "/simpleenroll", &initial, "application/pkcs10", good, 200, ""},
		{"reenroll", "POST", est + "/3y/simplereenroll", &issued, "application/pkcs10", b64(good), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, ca, tc.method, tc.url, tc.id, tc.ctype, tc.body)
			assert.Equal(t, tc.status, a.status, a.body)
			assert.Contains(t, a.body, tc.reason)
		})
	}
	log, err := ca.Issued()
	require.NoError(t, err)
	require.Len(t, log, 3)
	assert.Equal(t, "simpleenroll", log[0].Op)
	assert.Equal(t, user, log[0].User)
	assert.Equal(t, issued.cert.SerialNumber.Text(16), log[0].Serial)
	assert.Equal(t, "simplereenroll", log[2].Op)
	assert.Len(t, log[0].PublicKeySHA256, 64)
}

func TestServerValidityByLabel(t *testing.T) {
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	const user = "qq111111_qwertyui"
	pfx := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, ca.AddUser(user, testPIN, pfx))
	id := loadIdentity(t, pfx)
	now := time.Date(2027, 2, 10, 12, 0, 0, 0, time.UTC)
	// The clock is fixed, inside the root's and the initial key's validity.
	if now.Before(ca.Root().NotBefore) || now.After(id.cert.NotAfter) {
		now = time.Now()
	}
	base := testServer(t, ca, ServerOptions{Now: func() time.Time { return now }})
	for _, tc := range []struct {
		label string
		years int
	}{{"", 1}, {"/1y", 1}, {"/3y", 3}} {
		_, csr := newCSR(t, pkix.Name{CommonName: user})
		a := do(t, ca, "POST", base+"/.well-known/est"+tc.label+"/simpleenroll", &id, "application/pkcs10", estwire.EncodeBody(csr))
		require.Equal(t, http.StatusOK, a.status, a.body)
		c := a.certs[0]
		assert.Equal(t, c.NotBefore.AddDate(tc.years, 0, 0), c.NotAfter, "label %q", tc.label)
		assert.WithinDuration(t, now, c.NotBefore, 2*time.Minute)
		assert.Equal(t, "application/pkcs7-mime; smime-type=certs-only", a.header.Get("Content-Type"))
		assert.Equal(t, "base64", a.header.Get("Content-Transfer-Encoding"))
	}
}

func TestServerPendingFirst(t *testing.T) {
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	pfx := filepath.Join(t.TempDir(), "Key.pfx")
	require.NoError(t, ca.AddUser("u1", testPIN, pfx))
	id := loadIdentity(t, pfx)
	base := testServer(t, ca, ServerOptions{PendingFirst: 2, RetryAfter: 1500 * time.Millisecond})
	_, csr := newCSR(t, pkix.Name{CommonName: "u1"})
	for i := 1; i <= 2; i++ {
		a := do(t, ca, "POST", base+"/.well-known/est/simpleenroll", &id, "application/pkcs10", estwire.EncodeBody(csr))
		require.Equal(t, http.StatusAccepted, a.status, a.body)
		assert.Equal(t, "2", a.header.Get("Retry-After"), "rounded up to whole seconds")
		assert.Contains(t, a.body, "pending")
	}
	a := do(t, ca, "POST", base+"/.well-known/est/simpleenroll", &id, "application/pkcs10", estwire.EncodeBody(csr))
	require.Equal(t, http.StatusOK, a.status, a.body)
	log, err := ca.Issued()
	require.NoError(t, err)
	assert.Len(t, log, 1, "202 answers issue nothing")
}

func TestServeListenAddress(t *testing.T) {
	ca, err := Init(t.TempDir())
	require.NoError(t, err)
	err = ca.Serve(context.Background(), ":8443", ServerOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "0.0.0.0:8443 to listen on every interface on purpose")

	// A port taken: Serve says so instead of hanging.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = ca.Serve(context.Background(), ln.Addr().String(), ServerOptions{})
	require.Error(t, err)

	// Serve stops when its context ends.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := free.Addr().String()
	free.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ca.Serve(ctx, addr, ServerOptions{}) }()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop after its context ended")
	}
}
