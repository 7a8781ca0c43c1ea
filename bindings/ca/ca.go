// Package ca binds the certificate-authority client (package ca) to Lua as module "ca":
// the bank's initial keys, certificate requests signed by a token key, and EST enrollment.
// Conversion and error mapping only; the protocol lives in package ca.
package ca

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
	"github.com/tokenrun/tokenrun/ca"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/ui"
)

// IdentityType is the userdata type of a loaded initial key.
const IdentityType = "ca.Identity"

// Codes scripts see for CA failures; the CA_ prefix maps them to the CA exit code.
const (
	CodeWrongPassword      = "CA_WRONG_PASSWORD"
	CodeDamagedContainer   = "CA_DAMAGED_CONTAINER"
	CodeUnsupported        = "CA_UNSUPPORTED_CONTAINER"
	CodePending            = "CA_PENDING"
	CodeRefused            = "CA_REFUSED"
	CodeUnavailable        = "CA_UNAVAILABLE"
	CodeBadResponse        = "CA_BAD_RESPONSE"
	CodeUntrustedServer    = "CA_UNTRUSTED_SERVER"
	CodeCertificateRefused = "CA_CERTIFICATE_REFUSED" // the issued certificate failed our checks
	CodeError              = "CA_ERROR"
)

// code maps a ca error to its script code.
func code(err error) string {
	switch {
	case errors.Is(err, ca.ErrWrongPassword):
		return CodeWrongPassword
	case errors.Is(err, ca.ErrDamagedContainer):
		return CodeDamagedContainer
	case errors.Is(err, ca.ErrUnsupportedContainer):
		return CodeUnsupported
	case errors.Is(err, ca.ErrPending):
		return CodePending
	case errors.Is(err, ca.ErrRefused):
		return CodeRefused
	case errors.Is(err, ca.ErrUnavailable):
		return CodeUnavailable
	case errors.Is(err, ca.ErrBadResponse):
		return CodeBadResponse
	case errors.Is(err, ca.ErrUntrustedServer):
		return CodeUntrustedServer
	case errors.Is(err, ca.ErrWrongKey), errors.Is(err, ca.ErrUntrustedChain), errors.Is(err, ca.ErrValidityMismatch),
		errors.Is(err, ca.ErrExpired), errors.Is(err, ca.ErrNotYetValid):
		return CodeCertificateRefused
	}
	if c := errcode.Of(err); c != errcode.TokenError {
		return c // a token failure while signing the request
	}
	return CodeError
}

func fail(L *lua.LState, err error) int {
	fields := errcode.Fields(err)
	var pe *ca.PendingError
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		fields["retry_after"] = pe.RetryAfter.Seconds()
	}
	return runtime.Fail(L, code(err), err.Error(), fields)
}

// Module is the Lua module.
func Module() runtime.Module {
	server := "opts.server (EST base URL), opts.roots (PEM text or file: the CA's trust anchors), opts.label ('1y'|'3y'), opts.timeout"
	return runtime.Module{
		Name: "ca",
		Doc:  "The bank's initial keys, certificate requests and EST enrollment.",
		Funcs: []runtime.Func{
			{Name: "load_pkcs12", Fn: loadPKCS12, Args: "path: string, password: string", Returns: "id: ca.Identity?, err: table?", Secret: []string{"password"},
				Doc: "Open an initial-key container (Key.pfx). Codes: CA_WRONG_PASSWORD, CA_DAMAGED_CONTAINER, CA_UNSUPPORTED_CONTAINER (GOST)."},
			{Name: "csr", Fn: csr, Args: "opts: table", Returns: "csr: string?, err: table?",
				Doc: "A PKCS#10 request signed by opts.key (token.Key): opts.subject {CN=, C=, O=, ...}, opts.dns_names, opts.emails."},
			{Name: "enroll", Fn: enroll, Args: "opts: table", Returns: "cert: table?, err: table?",
				Doc: "simpleenroll opts.csr authenticated by opts.auth (ca.Identity); " + server + "; opts.key and opts.validity_years check the issued certificate before it is returned; opts.progress (a ui.Progress) shows each retry's attempt and the wait before it. CA_PENDING carries retry_after."},
			{Name: "reenroll", Fn: reenroll, Args: "opts: table", Returns: "cert: table?, err: table?",
				Doc: "simplereenroll opts.csr authenticated by the token's own opts.key and opts.cert; " + server + "."},
			{Name: "cacerts", Fn: cacerts, Args: "opts: table", Returns: "certs: table?, err: table?",
				Doc: "The CA's certificates (PEM strings): " + server + "."},
		},
		Types: []runtime.Type{{Name: IdentityType, Doc: "An initial key, held in memory for this run only.", Fields: identityFields,
			FieldNames: []string{"subject", "common_name", "not_after"}}},
	}
}

func identityFields(v any) map[string]any {
	id := v.(*ca.Identity)
	return map[string]any{
		"subject":     id.Certificate.Subject.String(),
		"common_name": id.Certificate.Subject.CommonName,
		"not_after":   id.Certificate.NotAfter.UTC().Format(time.RFC3339),
	}
}

func loadPKCS12(L *lua.LState) int {
	path, password := L.CheckString(1), L.CheckString(2)
	id, err := ca.LoadPKCS12(path, password)
	if err != nil {
		return fail(L, err)
	}
	L.Push(runtime.NewUserData(L, IdentityType, id))
	return 1
}

func csr(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	o.Required("key", "subject")
	key, _ := runtime.OptUserData[*bindtoken.KeyRef](o, "key", bindtoken.KeyType)
	subject := map[string]string{}
	o.Table("subject").ForEach(func(k, v lua.LValue) {
		subject[k.String()] = v.String()
	})
	req := ca.CSRRequest{DNSNames: strings1(L, o.Table("dns_names")), EmailAddresses: strings1(L, o.Table("emails"))}
	o.Check()
	name, err := ca.ParseSubject(subject)
	if err != nil {
		runtime.ArgError(L, 1, err.Error())
	}
	req.Subject = name
	signer, err := key.Signer(runtime.Context(L))
	if err != nil {
		return fail(L, err)
	}
	der, err := ca.CSR(signer, req)
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LString(der))
	return 1
}

func strings1(L *lua.LState, t *lua.LTable) []string {
	if t == nil {
		return nil
	}
	var out []string
	for i := 1; i <= t.Len(); i++ {
		out = append(out, lua.LVAsString(t.RawGetInt(i)))
	}
	return out
}

// clientConfig reads the options every EST call shares.
func clientConfig(L *lua.LState, o *runtime.Opts) ca.ClientConfig {
	o.Required("server", "roots")
	cfg := ca.ClientConfig{
		URL:     o.String("server", ""),
		Label:   o.String("label", ""),
		Timeout: o.Duration("timeout", 0),
	}
	roots, err := pemText(o.String("roots", ""))
	if err != nil {
		runtime.ArgError(L, 1, "roots: "+err.Error())
	}
	cfg.RootsPEM = roots
	return cfg
}

// pemText accepts PEM text or the path of a PEM file.
func pemText(s string) ([]byte, error) {
	if strings.Contains(s, "-----BEGIN") {
		return []byte(s), nil
	}
	b, err := readfile.Read(s, readfile.Roots)
	var re *readfile.Error
	if errors.As(err, &re) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("neither PEM text nor a readable file: %w", err)
	}
	return b, nil
}

func newClient(L *lua.LState, cfg ca.ClientConfig) *ca.Client {
	c, err := ca.NewClient(cfg)
	if err != nil {
		runtime.ArgError(L, 1, err.Error())
	}
	return c
}

func enroll(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	o.Required("csr", "auth")
	cfg := clientConfig(L, o)
	auth, _ := runtime.OptUserData[*ca.Identity](o, "auth", IdentityType)
	cfg.Identity = auth
	csrDER := []byte(o.String("csr", ""))
	key, hasKey := runtime.OptUserData[*bindtoken.KeyRef](o, "key", bindtoken.KeyType)
	years := o.Int("validity_years", 0)
	if bar := bindtoken.OptProgress(o); bar != nil {
		cfg.Retrying = func(next int, wait time.Duration) {
			ui.UpdateProgress(bar, ui.Step{Fraction: -1, Attempt: next, RetryIn: wait})
		}
	}
	o.Check()
	c := newClient(L, cfg)
	defer c.Close()
	e, err := c.Enroll(runtime.Context(L), csrDER)
	if err != nil {
		return fail(L, err)
	}
	if hasKey {
		if err := ca.CheckIssued(e.Certificate, e.Chain, key.Key.Public, rootPool(cfg.RootsPEM), time.Duration(years)*ca.Year); err != nil {
			return fail(L, err)
		}
	}
	L.Push(runtime.ToLua(L, certMap(e)))
	return 1
}

func rootPool(pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemBytes)
	return p
}

func reenroll(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	o.Required("csr", "key", "cert")
	cfg := clientConfig(L, o)
	key, _ := runtime.OptUserData[*bindtoken.KeyRef](o, "key", bindtoken.KeyType)
	cert, err := parseCert(o.String("cert", ""))
	if err != nil {
		runtime.ArgError(L, 1, "cert: "+err.Error())
	}
	csrDER := []byte(o.String("csr", ""))
	o.Check()
	signer, err := key.Signer(runtime.Context(L))
	if err != nil {
		return fail(L, err)
	}
	c := newClient(L, cfg)
	defer c.Close()
	e, err := c.Reenroll(runtime.Context(L), csrDER, &ca.Identity{Certificate: cert, Key: signer})
	if err != nil {
		return fail(L, err)
	}
	L.Push(runtime.ToLua(L, certMap(e)))
	return 1
}

func parseCert(s string) (*x509.Certificate, error) {
	der := []byte(s)
	if b, _ := pem.Decode(der); b != nil {
		der = b.Bytes
	}
	return x509.ParseCertificate(der)
}

func cacerts(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	cfg := clientConfig(L, o)
	o.Check()
	c := newClient(L, cfg)
	defer c.Close()
	certs, err := c.CACerts(runtime.Context(L))
	if err != nil {
		return fail(L, err)
	}
	out := make([]any, len(certs))
	for i, crt := range certs {
		out[i] = pemOf(crt)
	}
	L.Push(runtime.ToLua(L, out))
	return 1
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func certMap(e *ca.Enrollment) map[string]any {
	c := e.Certificate
	chain := make([]any, len(e.Chain))
	for i, x := range e.Chain {
		chain[i] = pemOf(x)
	}
	return map[string]any{
		"der":        string(c.Raw),
		"pem":        pemOf(c),
		"subject":    c.Subject.String(),
		"issuer":     c.Issuer.String(),
		"serial":     c.SerialNumber.Text(16),
		"not_before": c.NotBefore.UTC().Format(time.RFC3339),
		"not_after":  c.NotAfter.UTC().Format(time.RFC3339),
		"chain":      chain,
	}
}
