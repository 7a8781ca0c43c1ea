package soft

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
)

const (
	userPIN = "12345678"
	soPIN   = "87654321"
)

func TestMain(m *testing.M) {
	// PBKDF2 at full cost would make the lock cycles take seconds; the count is stored per
	// secret, so nothing else depends on it.
	kdfIterations = 1000
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperProcess(dir))
	}
	if spec := os.Getenv(killEnv); spec != "" {
		os.Exit(killHelper(spec))
	}
	os.Exit(m.Run())
}

// newProvider opens a provider on dirs and closes it when the test ends.
func newProvider(t testing.TB, opts Options, dirs ...string) *Provider {
	t.Helper()
	p, err := Open(opts, dirs...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// openFirst opens the provider's first token.
func openFirst(t testing.TB, p *Provider) token.Token {
	t.Helper()
	infos, err := p.Tokens(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, infos)
	tk, err := p.Open(context.Background(), infos[0])
	require.NoError(t, err)
	t.Cleanup(func() { tk.Close() })
	return tk
}

// newToken is a blank token in a fresh directory.
func newToken(t testing.TB, opts Options) (string, *Provider, token.Token) {
	t.Helper()
	dir := t.TempDir()
	p := newProvider(t, opts, dir)
	return dir, p, openFirst(t, p)
}

// loggedIn is a blank token with the user logged in.
func loggedIn(t testing.TB) (string, *Provider, token.Token) {
	t.Helper()
	dir, p, tk := newToken(t, Options{})
	require.NoError(t, tk.Login(context.Background(), token.User, userPIN))
	return dir, p, tk
}

// requireCode checks that err is a *token.Error with code and, when given, the condition.
func requireCode(t testing.TB, err error, code token.ReturnCode, cond error) *token.Error {
	t.Helper()
	require.Error(t, err)
	te, ok := err.(*token.Error)
	require.True(t, ok, "want *token.Error, got %T: %v", err, err)
	require.Equal(t, code, te.Code, "error: %v", err)
	if cond != nil {
		require.ErrorIs(t, err, cond)
	}
	return te
}

func info(t testing.TB, tk token.Token) token.Info {
	t.Helper()
	i, err := tk.Info(context.Background())
	require.NoError(t, err)
	return i
}

// selfSigned makes a certificate for a token key, signed by that key through its Signer.
func selfSigned(t testing.TB, s crypto.Signer, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Country: []string{"KZ"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	require.NoError(t, err)
	return der
}

// genKey makes a key and its signer on a logged-in token.
func genKey(t testing.TB, tk token.Token, req token.KeyRequest) (*token.Key, crypto.Signer) {
	t.Helper()
	k, err := tk.GenerateKey(context.Background(), req)
	require.NoError(t, err)
	s, err := tk.Signer(context.Background(), k)
	require.NoError(t, err)
	return k, s
}
