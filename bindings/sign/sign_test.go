package sign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
)

// prelude logs in and defines key(label), which finds a key handle by label.
const prelude = `
local ctx = ...
local token, sign = require("token"), require("sign")
local tok = assert(token.wait{})
assert(tok:login("12345678"))
local function key(label)
  for _, k in ipairs(tok:keys()) do
    if k.label == label then return k end
  end
  error("no key " .. label)
end
`

func TestScriptsOnSoftToken(t *testing.T) {
	ctx := context.Background()
	p, err := soft.Open(soft.Options{}, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	tok := openOne(t, p)
	require.NoError(t, tok.Login(ctx, token.User, "12345678"))
	ca, otherCA := newTestCA(t, "Test Root"), newTestCA(t, "Another Root")
	_, cert := enroll(t, tok, ca, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "payments"}, "ACME LLP payments")
	enroll(t, tok, ca, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "rsa"}, "ACME LLP RSA")
	enroll(t, tok, ca, token.KeyRequest{Type: token.Ed25519, Label: "ed"}, "ACME LLP Ed25519")
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	strangerCert := ca.issue(t, stranger.Public(), pkix.Name{CommonName: "Someone Else"})
	require.NoError(t, tok.Logout(ctx))

	args := map[string]any{
		"roots": ca.pem, "other_roots": otherCA.pem,
		"cert_pem": certPEM(cert), "cert_der": string(cert.Raw), "stranger_pem": certPEM(strangerCert),
	}
	tests := []struct {
		name string
		src  string
		want []any
		err  string // a raised error
	}{
		{
			name: "detached by default with the certificate next to the key",
			src: `local p7 = assert(sign.cms{key = key("payments"), data = "order 1"})
			      local v = assert(sign.verify{signature = p7, content = "order 1", roots = ctx.args.roots})
			      return v.ok, v.signature_valid, v.content_matches, v.chain_trusted, v.cert_valid_at_signing_time,
			             v.detached, v.subject, #v.problems, v.signing_time:match("^%d%d%d%d%-%d%d%-%d%dT.*Z$") ~= nil, v.hash, v.content`,
			want: []any{true, true, true, true, true, true, "CN=ACME LLP payments,O=Test Company,C=KZ", float64(0), true, "SHA-256", nil},
		},
		{
			name: "attached carries the document",
			src: `local p7 = assert(sign.cms{key = key("payments"), data = "order 2", detached = false})
			      local v = assert(sign.verify{signature = p7, roots = ctx.args.roots})
			      return v.ok, v.detached, v.content`,
			want: []any{true, false, "order 2"},
		},
		{
			name: "RSA key",
			src: `local p7 = assert(sign.cms{key = key("rsa"), data = "order 3"})
			      local v = sign.verify{signature = p7, content = "order 3", roots = ctx.args.roots}
			      return v.ok, v.subject`,
			want: []any{true, "CN=ACME LLP RSA,O=Test Company,C=KZ"},
		},
		{
			name: "certificate given as PEM and as DER",
			src: `local a = assert(sign.cms{key = key("payments"), cert = ctx.args.cert_pem, data = "x"})
			      local b = assert(sign.cms{key = key("payments"), cert = ctx.args.cert_der, data = "x"})
			      return sign.verify{signature = a, content = "x", roots = ctx.args.roots}.ok,
			             sign.verify{signature = b, content = "x", roots = ctx.args.roots}.ok`,
			want: []any{true, true},
		},
		{
			name: "tampered content fails the content check only",
			src: `local p7 = assert(sign.cms{key = key("payments"), data = "pay 100"})
			      local v = assert(sign.verify{signature = p7, content = "pay 900", roots = ctx.args.roots})
			      return v.ok, v.signature_valid, v.content_matches, v.chain_trusted, v.problems[1]:find("does not match") ~= nil`,
			want: []any{false, true, false, true, true},
		},
		{
			name: "wrong roots fail the chain check only",
			src: `local p7 = assert(sign.cms{key = key("payments"), data = "d"})
			      local v = assert(sign.verify{signature = p7, content = "d", roots = ctx.args.other_roots})
			      return v.ok, v.signature_valid, v.content_matches, v.chain_trusted`,
			want: []any{false, true, true, false},
		},
		{
			name: "no roots: chain not trusted",
			src: `local p7 = assert(sign.cms{key = key("payments"), data = "d"})
			      local v = assert(sign.verify{signature = p7, content = "d"})
			      return v.ok, v.chain_trusted, v.problems[1]:find("no trusted roots") ~= nil`,
			want: []any{false, false, true},
		},
		{
			name: "certificate of another key",
			src: `local p7, err = sign.cms{key = key("payments"), cert = ctx.args.stranger_pem, data = "d"}
			      return p7, err.code, err.message:find("does not match the certificate") ~= nil`,
			want: []any{nil, "KEY_MISMATCH", true},
		},
		{
			name: "no certificate next to the key",
			src: `local bare = assert(tok:generate_key{type = "ec", label = "bare"})
			      local p7, err = sign.cms{key = bare, data = "d"}
			      return p7, err.code, err.message:find("no certificate next to key bare: enroll first", 1, true) ~= nil`,
			want: []any{nil, "NO_CERTIFICATE", true},
		},
		{
			name: "garbage certificate",
			src: `local p7, err = sign.cms{key = key("payments"), cert = "garbage", data = "d"}
			      return p7, err.code`,
			want: []any{nil, "MALFORMED"},
		},
		{
			name: "Ed25519 refused",
			src: `local p7, err = sign.cms{key = key("ed"), data = "d"}
			      return p7, err.code`,
			want: []any{nil, "UNSUPPORTED"},
		},
		{
			name: "not logged in",
			src: `local k = key("payments")
			      assert(tok:logout())
			      local p7, err = sign.cms{key = k, data = "d"}
			      return p7, err.code`,
			want: []any{nil, "NOT_LOGGED_IN"},
		},
		{
			name: "malformed signature",
			src: `local v, err = sign.verify{signature = "not a signature", roots = ctx.args.roots}
			      return v, err.code`,
			want: []any{nil, "MALFORMED"},
		},
		{
			name: "malformed roots",
			src: `local v, err = sign.verify{signature = "x", roots = "no certificates here"}
			      return v, err.code, err.message:find("^roots:") ~= nil`,
			want: []any{nil, "MALFORMED", true},
		},
		{
			name: "misspelt option raises",
			src:  `sign.cms{key = key("payments"), data = "d", detach = true}`,
			err:  "t.lua:12: unknown option 'detach' to sign.cms",
		},
		{
			name: "missing data raises",
			src:  `sign.cms{key = key("payments")}`,
			err:  "give opts.data (a string) or opts.document (a sign.Document), one of them",
		},
		{
			name: "key that is not a key raises",
			src:  `sign.cms{key = "payments", data = "d"}`,
			err:  "bad option 'key' to sign.cms (token.Key expected, got string)",
		},
		{
			name: "verify needs a signature",
			src:  `sign.verify{content = "d"}`,
			err:  "missing option 'signature' to sign.verify",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A plain script whose first result is nil fails the run; the wrapper keeps the
			// results as the case returns them, on the same line numbers.
			src := "return 'ran', (function(...)" + prelude + tt.src + "\nend)(...)"
			got, err := runLua(t, p, src, args)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			require.NotEmpty(t, got)
			assert.Equal(t, tt.want, got[1:])
		})
	}
}

// TestOpenSSLVerifiesScriptSignatures: what sign.cms makes, OpenSSL accepts.
func TestOpenSSLVerifiesScriptSignatures(t *testing.T) {
	p, _, ca := softWithPayments(t)

	got, err := runLua(t, p, prelude+`
		return sign.cms{key = key("payments"), data = ctx.args.doc},
		       sign.cms{key = key("payments"), data = ctx.args.doc, detached = false}`,
		map[string]any{"doc": "<PaymentOrder amount=\"100.00\"/>\n"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	doc := []byte("<PaymentOrder amount=\"100.00\"/>\n")
	opensslVerify(t, []byte(got[0].(string)), doc, ca.pem)
	assert.Equal(t, doc, opensslVerify(t, []byte(got[1].(string)), nil, ca.pem))
}

// TestSoftHSM2: the same script against a real PKCS#11 module, RSA and P-256, checked by
// OpenSSL.
func TestSoftHSM2(t *testing.T) {
	ctx := context.Background()
	module := p11test.SoftHSM(t)
	p11test.SoftHSMToken(t, "SIGNLUA", "87654321", "12345678")
	p, err := pkcs11.Open(module)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	tok := openOne(t, p)
	require.NoError(t, tok.Login(ctx, token.User, "12345678"))
	ca := newTestCA(t, "Test Root")
	enroll(t, tok, ca, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "rsa"}, "ACME LLP RSA")
	enroll(t, tok, ca, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "ec"}, "ACME LLP EC")
	require.NoError(t, tok.Logout(ctx))

	doc := "payment order 42\n"
	got, err := runLua(t, p, prelude+`
		local out = {}
		for _, label in ipairs{"rsa", "ec"} do
		  local p7, err = sign.cms{key = key(label), data = ctx.args.doc}
		  assert(p7, err and err.message)
		  local v = assert(sign.verify{signature = p7, content = ctx.args.doc, roots = ctx.args.roots})
		  assert(v.ok, table.concat(v.problems, "; "))
		  out[#out + 1] = p7
		end
		local v = sign.verify{signature = out[1], content = "payment order 43\n", roots = ctx.args.roots}
		return out[1], out[2], v.ok`,
		map[string]any{"doc": doc, "roots": ca.pem})
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, false, got[2], "tampered content must fail")
	for _, sig := range got[:2] {
		opensslVerify(t, []byte(sig.(string)), []byte(doc), ca.pem)
	}
}

func TestDecodeSignatureAcceptsPEM(t *testing.T) {
	for _, typ := range []string{"CMS", "PKCS7"} {
		in := "-----BEGIN " + typ + "-----\nAQID\n-----END " + typ + "-----\n"
		assert.Equal(t, []byte{1, 2, 3}, bindsignDecode(in), typ)
	}
	assert.Equal(t, []byte("raw"), bindsignDecode("raw"))
	assert.True(t, strings.HasPrefix(string(bindsignDecode("-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n")), "-----BEGIN"),
		"a PEM block of another type is passed on for Verify to judge")
}

func bindsignDecode(s string) []byte { return bindsign.DecodeSignature([]byte(s)) }
