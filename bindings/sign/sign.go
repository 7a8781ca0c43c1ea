// Package sign binds CMS signing and verification (package cms) to Lua as module "sign",
// with a key on a token as the signer. It converts between Lua and Go and maps errors to the
// documented codes; the CLI's sign and verify commands share its input parsing, its choice
// of the certificate next to a key, and its verdict table, so scripts and batch jobs see the
// same names.
package sign

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/runtime"
)

// Module is the Lua module with no documents from the host: sign.documents() is empty.
func Module() runtime.Module { return ModuleFor(nil) }

// ModuleFor is the Lua module for a run the host hands docs to sign (the signing agent's
// request), which sign.documents() lists. The module holds no other state: the key handle
// carries its token.
func ModuleFor(docs []*Document) runtime.Module {
	return runtime.Module{
		Name: "sign",
		Doc:  "Sign documents (CMS SignedData) with a key on the token, and check signatures.",
		Funcs: []runtime.Func{
			{Name: "cms", Fn: signCMS, Args: "opts: table", Returns: "signature: string|boolean?, err: table?",
				Doc: "Sign opts.data (string) with opts.key (token.Key; log in first) and return the DER CMS SignedData. " +
					"opts.cert is the signer's certificate as PEM or DER, by default the certificate on the key's token with the key's id; " +
					"opts.detached (default true) leaves the document out. " +
					"With opts.document (a sign.Document from sign.documents()) instead of opts.data, that document is signed (a digested one by its digest, always detached) " +
					"and the signature is kept with it for the host, which hands it on: the result is true, since an attached signature holds the document, which scripts never see. " +
					"Expected failures: NO_CERTIFICATE, KEY_MISMATCH, MALFORMED (cert), NOT_LOGGED_IN, UNSUPPORTED (key type), INVALID_INPUT (a digested document to attach)."},
			{Name: "verify", Fn: verify, Args: "opts: table", Returns: "verdict: table?, err: table?",
				Doc: "Check opts.signature (DER or PEM) against opts.content (the document, for a detached signature) and opts.roots (PEM certificates to trust). " +
					"Returns {ok, signature_valid, content_matches, chain_trusted, cert_valid_at_signing_time, signing_time (RFC 3339), subject, issuer, serial, detached, hash, content (attached only), problems = {...}}; " +
					"a failed check is ok = false, not an error. nil, {code = 'MALFORMED'} when the signature or the roots cannot be read."},
			{Name: "documents", Fn: documentList(docs), Returns: "docs: sign.Document[]",
				Doc: "The documents the host hands this run to sign (a web page's request through tokenrun agent), in the request's order; empty for other runs. " +
					"Each has index (from 1), size (bytes), sha256 (hex; for a digested document the digest the page gave), digested and signed; its content is not readable."},
		},
		Types: []runtime.Type{
			{Name: DocumentType, Doc: "A document handed to the run by the host, to sign with sign.cms{document = doc}.", Fields: documentFields,
				FieldNames: []string{"index", "size", "sha256", "digested", "signed"}},
		},
	}
}

func signCMS(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	o.Required("key")
	ref, _ := runtime.OptUserData[*bindtoken.KeyRef](o, "key", bindtoken.KeyType)
	data := o.String("data", "")
	doc, hasDoc := runtime.OptUserData[*Document](o, "document", DocumentType)
	certText := o.String("cert", "")
	detached := o.Bool("detached", true)
	o.Check()
	if hasDoc == o.Has("data") {
		runtime.ArgError(L, 1, "give opts.data (a string) or opts.document (a sign.Document), one of them")
	}

	cert, n := certificateFor(L, ref, certText, o.Has("cert"))
	if cert == nil {
		return n
	}
	if hasDoc {
		return signDocument(L, doc, ref, cert, detached)
	}
	signer, err := ref.Signer(runtime.Context(L))
	if err != nil {
		return push(L, err)
	}
	der, err := cms.Sign([]byte(data), signer, cert, cms.SignOptions{Detached: detached})
	if err != nil {
		return push(L, err)
	}
	L.Push(lua.LString(der))
	return 1
}

func verify(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	o.Required("signature")
	sig := o.String("signature", "")
	content := o.String("content", "")
	hasContent := o.Has("content")
	rootsText := o.String("roots", "")
	o.Check()

	var roots *x509.CertPool
	if o.Has("roots") {
		r, err := ParseRoots([]byte(rootsText))
		if err != nil {
			return runtime.Fail(L, errcode.Malformed, "roots: "+err.Error(), nil)
		}
		roots = r
	}
	var doc []byte
	if hasContent {
		// Non-nil even when empty: an empty document is still a document to check against.
		doc = []byte(content)
	}
	v, err := cms.Verify(DecodeSignature([]byte(sig)), doc, cms.VerifyOptions{Roots: roots})
	if err != nil {
		return push(L, err)
	}
	m := VerdictMap(v)
	if !v.Detached {
		m["content"] = string(v.Content)
	}
	L.Push(runtime.ToLua(L, m))
	return 1
}

// push returns the expected-failure pair for err with this module's codes.
func push(L *lua.LState, err error) int {
	return runtime.Fail(L, Code(err), err.Error(), errcode.Fields(err))
}

// Code is the script-visible code for an error from signing or verifying: the codes of
// package errcode, with the cms conditions mapped to their own.
func Code(err error) string {
	switch {
	case errors.Is(err, cms.ErrKeyMismatch):
		return errcode.KeyMismatch
	case errors.Is(err, cms.ErrMalformed):
		return errcode.Malformed
	case errors.Is(err, cms.ErrUnsupported):
		return errcode.Unsupported
	}
	return errcode.Of(err)
}

// Serial writes a certificate's serial number as `openssl x509 -serial` does (upper-case hex,
// even length), the form people compare; cms.Verdict.Serial uses the same.
func Serial(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return ""
	}
	s := strings.ToUpper(c.SerialNumber.Text(16))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseCertificate reads one certificate given as PEM or DER.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a certificate; give a CERTIFICATE in PEM or DER", block.Type)
		}
		b = block.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("not a certificate in PEM or DER (%w)", err)
	}
	return c, nil
}

// ParseRoots reads trusted certificates from PEM text. Unlike CertPool.AppendCertsFromPEM it
// fails on a certificate that does not parse, and when there is none: a trust list that
// silently lost its root would make every signature look forged.
func ParseRoots(pemText []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := pemText; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found (want -----BEGIN CERTIFICATE----- blocks)")
	}
	return pool, nil
}

// DecodeSignature accepts a signature as DER, or as PEM (`openssl cms -outform PEM` writes
// "CMS", older tools "PKCS7"); anything else is passed on for cms.Verify to judge.
func DecodeSignature(b []byte) []byte {
	if block, _ := pem.Decode(b); block != nil {
		switch block.Type {
		case "CMS", "PKCS7", "PKCS #7 SIGNED DATA":
			return block.Bytes
		}
	}
	return b
}

// VerdictMap is a verdict as plain data, as scripts get it from sign.verify and as
// `tokenrun verify --json` prints it. signing_time is left out when the signature states
// none; problems is always a list.
func VerdictMap(v *cms.Verdict) map[string]any {
	problems := append([]string{}, v.Problems...)
	m := map[string]any{
		"ok":                         v.OK(),
		"signature_valid":            v.SignatureValid,
		"content_matches":            v.ContentMatches,
		"chain_trusted":              v.ChainTrusted,
		"cert_valid_at_signing_time": v.CertValidAtSigningTime,
		"subject":                    v.Subject,
		"issuer":                     v.Issuer,
		"serial":                     v.Serial,
		"detached":                   v.Detached,
		"problems":                   problems,
	}
	if v.HasSigningTime {
		m["signing_time"] = v.SigningTime.UTC().Format(time.RFC3339)
	}
	if v.Hash != 0 {
		m["hash"] = v.Hash.String()
	}
	return m
}
