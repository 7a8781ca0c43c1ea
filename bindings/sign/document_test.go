package sign_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

// Documents the host hands a run are signed without their content reaching the script or
// what an observer (the transcript) sees; the signatures stay with them for the host, and
// OpenSSL accepts them.
func TestDocuments(t *testing.T) {
	ctx := context.Background()
	p, tok, ca := softWithPayments(t)
	// A certificate naming its purposes, as the dev CA's and the national CA's do.
	ekuKey, err := tok.GenerateKey(ctx, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "eku"})
	require.NoError(t, err)
	ekuDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "EKU"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 2, 398, 3, 3, 4, 1, 1}}}, ca.cert, ekuKey.Public, ca.key)
	require.NoError(t, err)
	_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: ekuDER, ID: ekuKey.ID, Label: "eku"})
	require.NoError(t, err)
	require.NoError(t, tok.Logout(ctx))

	secretOrder := []byte("<PaymentOrder amount=\"777000.00\" to=\"KZ123456789\"/>\n")
	other := []byte("second document, plain text")
	digest := sha256.Sum256([]byte("a document the page hashed itself"))
	docs := []*bindsign.Document{
		bindsign.NewDocument(1, secretOrder, false),
		bindsign.NewDocument(2, other, false),
		bindsign.NewDocument(3, digest[:], true),
	}
	var events []runtime.CallEvent
	got, err := runLuaWith(t, p, docs, runtime.ObserverFunc(func(e runtime.CallEvent) { events = append(events, e) }), prelude+`
		local docs = sign.documents()
		local seen = {}
		for _, d in ipairs(docs) do
		  seen[#seen + 1] = table.concat({d.index, d.size, d.sha256, tostring(d.digested), tostring(d.signed), tostring(d.content)}, " ")
		end
		assert(sign.cms{key = key("payments"), document = docs[1], detached = false} == true)
		assert(sign.cms{key = key("payments"), document = docs[2]} == true)
		assert(sign.cms{key = key("payments"), document = docs[3]} == true)
		local refused = select(2, sign.cms{key = key("payments"), document = docs[3], detached = false})
		local ekus = {}
		for _, c in ipairs(tok:certificates()) do ekus[#ekus + 1] = c.label .. "=" .. table.concat(c.ext_key_usage, ",") end
		table.sort(ekus)
		return #docs, seen[1], seen[3], tostring(docs[1].signed), refused.code, table.concat(ekus, " ")`, nil)
	require.NoError(t, err)
	sum1 := sha256.Sum256(secretOrder)
	assert.Equal(t, []any{float64(3),
		"1 52 " + hex.EncodeToString(sum1[:]) + " false false nil",
		"3 32 " + hex.EncodeToString(digest[:]) + " true false nil",
		"true", "INVALID_INPUT", "eku=1.3.6.1.5.5.7.3.2,1.3.6.1.5.5.7.3.4,1.2.398.3.3.4.1.1 payments="}, got)

	sig, cert, ok := docs[0].Signature()
	require.True(t, ok)
	assert.Equal(t, "ACME LLP", cert.Subject.CommonName)
	assert.Equal(t, secretOrder, opensslVerify(t, sig, nil, ca.pem), "attached: the document is inside")
	sig, _, ok = docs[1].Signature()
	require.True(t, ok)
	opensslVerify(t, sig, other, ca.pem)
	sig, _, ok = docs[2].Signature()
	require.True(t, ok)
	opensslVerify(t, sig, []byte("a document the page hashed itself"), ca.pem)

	// The observer sees handles with their fields, never the content or a signature.
	b, err := json.Marshal(events)
	require.NoError(t, err)
	text := string(b)
	assert.Contains(t, text, `"$handle"`)
	assert.Contains(t, text, hex.EncodeToString(sum1[:]))
	for _, leak := range []string{"777000", "second document", "hashed itself"} {
		assert.NotContains(t, text, leak)
	}
	assert.False(t, strings.Contains(text, string(digest[:])), "the digest's bytes")
}

// Without documents from the host, sign.documents() is an empty list.
func TestNoDocuments(t *testing.T) {
	p, err := soft.Open(soft.Options{}, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	got, err := runLua(t, p, `return #require("sign").documents()`, nil)
	require.NoError(t, err)
	assert.Equal(t, []any{float64(0)}, got)
}

// runLuaWith is runLua with documents handed to the run and an observer.
func runLuaWith(t testing.TB, p token.Provider, docs []*bindsign.Document, obs runtime.Observer, src string, args map[string]any) ([]any, error) {
	t.Helper()
	b := bindtoken.New(bindtoken.Config{Provider: p, Poll: time.Millisecond})
	t.Cleanup(func() { _ = b.Close() })
	reg := runtime.NewRegistry()
	require.NoError(t, reg.Add(b.Module()))
	require.NoError(t, reg.Add(bindsign.ModuleFor(docs)))
	s, err := runtime.Compile("t.lua", []byte(src))
	require.NoError(t, err)
	res, err := runtime.Run(context.Background(), s, runtime.RunOptions{Registry: reg, Timeout: time.Minute, Args: args, Observer: obs})
	if err != nil {
		return nil, err
	}
	return res.Values, nil
}
