// Package ca binds the certificate-authority client (package ca) to Lua as module "ca":
// the bank's initial keys, certificate requests signed by a token key, and EST enrollment.
// Conversion and error mapping only; the protocol lives in package ca.
package ca

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	CodeContainerMissing   = "CA_CONTAINER_MISSING" // no file at the path given (mistyped, or the flash drive is not in)
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
	case errors.Is(err, fs.ErrNotExist):
		return CodeContainerMissing
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
	return failTimed(L, err, nil)
}

// failTimed is fail with the call's timing fields (see timing) added.
func failTimed(L *lua.LState, err error, extra map[string]any) int {
	fields := errcode.Fields(err)
	var pe *ca.PendingError
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		fields["retry_after"] = pe.RetryAfter.Seconds()
	}
	var ce *ca.Error
	if errors.As(err, &ce) && ce.Attempts > 0 {
		fields["attempts"] = ce.Attempts
	}
	for k, v := range extra {
		fields[k] = v
	}
	return runtime.Fail(L, code(err), err.Error(), fields)
}

// timeFormat is how times reach scripts: RFC 3339, UTC, to the millisecond.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// timing is what a script (and the journal it writes) is told of how long an EST call took:
// started and ended (RFC 3339, ms) and seconds (a number, to the ms).
func timing(start, end time.Time) map[string]any {
	return map[string]any{
		"started": start.UTC().Format(timeFormat),
		"ended":   end.UTC().Format(timeFormat),
		"seconds": float64(end.Sub(start).Milliseconds()) / 1000,
	}
}

// hooks runs a script's on_wait and on_unanswered callbacks from inside an EST call (on the
// script's own goroutine: the client calls them on the caller's). A callback that raises
// stops the call, and its error is raised once the client has returned.
type hooks struct {
	L                    *lua.LState
	onWait, onUnanswered *lua.LFunction
	cancel               context.CancelFunc
	err                  error
}

func newHooks(L *lua.LState, o *runtime.Opts) *hooks {
	return &hooks{L: L, onWait: o.Func("on_wait"), onUnanswered: o.Func("on_unanswered")}
}

// install sets the callbacks into cfg and returns the context the call must use.
func (h *hooks) install(ctx context.Context, cfg *ca.ClientConfig) context.Context {
	ctx, h.cancel = context.WithCancel(ctx)
	if h.onWait != nil {
		cfg.OnWait = func(w ca.Wait) {
			h.call(h.onWait, map[string]any{
				"seconds": w.Left.Seconds(), "total": w.Total.Seconds(), "pending": w.Pending, "attempt": w.Attempt})
		}
	}
	if h.onUnanswered != nil {
		cfg.OnUnanswered = func(u ca.Unanswered) {
			h.call(h.onUnanswered, map[string]any{"op": u.Op, "attempt": u.Attempt,
				"sent": u.Sent.UTC().Format(timeFormat), "failed": u.Failed.UTC().Format(timeFormat), "reason": u.Reason})
		}
	}
	return ctx
}

func (h *hooks) call(fn *lua.LFunction, arg map[string]any) {
	if h.err != nil {
		return
	}
	if err := h.L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, runtime.ToLua(h.L, arg)); err != nil {
		h.err = err
		h.cancel()
	}
}

// done ends the call's context and raises a callback's error, unless the run itself is
// ending (a callback cannot run in a cancelled run, and that is no bug of the script).
func (h *hooks) done() {
	h.cancel()
	if h.err != nil && runtime.Context(h.L).Err() == nil {
		runtime.Raise(h.L, fmt.Errorf("a callback of the CA call raised: %w", h.err))
	}
}

// Module is the Lua module.
func Module() runtime.Module {
	server := "opts.server (EST base URL), opts.roots (PEM text or file: the CA's trust anchors), opts.label ('1y'|'3y'), " +
		"opts.timeout (seconds for the whole call: every attempt, retry and wait)"
	timed := "; opts.on_wait(w) hears each second of a wait before asking again ({seconds = left, total =, pending = true for a 202's Retry-After, attempt =}), " +
		"opts.on_unanswered(a) each request sent in full that got no complete answer ({op, attempt, sent, failed, reason}: the CA may have issued); " +
		"the result and the error carry started, ended and seconds (how long the call took)"
	return runtime.Module{
		Name: "ca",
		Doc:  "The bank's initial keys, certificate requests and EST enrollment.",
		Funcs: []runtime.Func{
			{Name: "load_pkcs12", Fn: loadPKCS12, Args: "path: string, password: string", Returns: "id: ca.Identity?, err: table?", Secret: []string{"password"},
				Doc: "Open an initial-key container (Key.pfx). A leading ~ is the home directory. Codes: CA_WRONG_PASSWORD, CA_CONTAINER_MISSING (no such file), CA_DAMAGED_CONTAINER, CA_UNSUPPORTED_CONTAINER (GOST)."},
			{Name: "csr", Fn: csr, Args: "opts: table", Returns: "csr: string?, err: table?",
				Doc: "A PKCS#10 request signed by opts.key (token.Key): opts.subject {CN=, C=, O=, ...}, opts.dns_names, opts.emails."},
			{Name: "enroll", Fn: enroll, Args: "opts: table", Returns: "cert: table?, err: table?",
				Doc: "simpleenroll opts.csr authenticated by opts.auth (ca.Identity); " + server + timed + "; opts.key and opts.validity_years check the issued certificate before it is returned. " +
					"A 202 is waited out (Retry-After) while opts.timeout allows; past it, CA_PENDING carries retry_after."},
			{Name: "reenroll", Fn: reenroll, Args: "opts: table", Returns: "cert: table?, err: table?",
				Doc: "simplereenroll opts.csr authenticated by the token's own opts.key and opts.cert; " + server + timed + "."},
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
	path, password := expandHome(L.CheckString(1)), L.CheckString(2)
	var id *ca.Identity
	var err error
	if data, ok := ui.FileFrom(runtime.Context(L), L.CheckString(1)); ok {
		// The page sent the container with the answer: it never touches the disk here.
		id, err = ca.LoadPKCS12Bytes(data, password)
		var ce *ca.ContainerError
		if errors.As(err, &ce) {
			ce.Path = L.CheckString(1)
		}
	} else {
		id, err = ca.LoadPKCS12(path, password)
	}
	if err != nil {
		return fail(L, err)
	}
	L.Push(runtime.NewUserData(L, IdentityType, id))
	return 1
}

// expandHome reads a leading ~ as the user's home directory, as a shell would: people type
// "~/Desktop/Key.pfx" into a prompt, where no shell expands it.
func expandHome(path string) string {
	rest, ok := strings.CutPrefix(path, "~")
	if !ok || (rest != "" && rest[0] != '/' && rest[0] != filepath.Separator) {
		return path
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return path
	}
	return filepath.Join(home, rest)
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

// clientConfig reads the options every EST call shares. opts.timeout is the whole call's
// budget (the region's ca.timeout: "how long to keep trying the CA"), and bounds each attempt
// too, so a slow CA may use all of it in one attempt; a 202 is waited out within it.
func clientConfig(L *lua.LState, o *runtime.Opts) ca.ClientConfig {
	o.Required("server", "roots")
	timeout := o.Duration("timeout", 0)
	cfg := ca.ClientConfig{
		URL:         o.String("server", ""),
		Label:       o.String("label", ""),
		Timeout:     timeout,
		Budget:      timeout,
		WaitPending: true,
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
	h := newHooks(L, o)
	o.Check()
	ctx := h.install(runtime.Context(L), &cfg)
	c := newClient(L, cfg)
	defer c.Close()
	start := time.Now()
	e, err := c.Enroll(ctx, csrDER)
	t := timing(start, time.Now())
	h.done()
	if err != nil {
		return failTimed(L, err, t)
	}
	if hasKey {
		if err := ca.CheckIssued(e.Certificate, e.Chain, key.Key.Public, rootPool(cfg.RootsPEM), time.Duration(years)*ca.Year); err != nil {
			return failTimed(L, err, t)
		}
	}
	L.Push(runtime.ToLua(L, timedCert(e, t)))
	return 1
}

// timedCert is the certificate table with the call's timing.
func timedCert(e *ca.Enrollment, t map[string]any) map[string]any {
	m := certMap(e)
	for k, v := range t {
		m[k] = v
	}
	return m
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
	h := newHooks(L, o)
	o.Check()
	signer, err := key.Signer(runtime.Context(L))
	if err != nil {
		return fail(L, err)
	}
	ctx := h.install(runtime.Context(L), &cfg)
	c := newClient(L, cfg)
	defer c.Close()
	start := time.Now()
	e, err := c.Reenroll(ctx, csrDER, &ca.Identity{Certificate: cert, Key: signer})
	t := timing(start, time.Now())
	h.done()
	if err != nil {
		return failTimed(L, err, t)
	}
	L.Push(runtime.ToLua(L, timedCert(e, t)))
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
