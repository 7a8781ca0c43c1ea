// Package token binds the token layer to Lua as module "token": finding the one token to
// work on, and a token handle with methods. It converts between Lua and Go and maps errors
// to the documented codes; the logic lives in the token package.
package token

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/runtime"
	tk "github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// Type names, as scripts see them in error messages.
const (
	TokenType = "token.Token"
	KeyType   = "token.Key"
)

// Config is what the host decides for a run.
type Config struct {
	Provider tk.Provider
	// URI narrows which tokens count (the CLI's --token); nil means every token.
	URI *tk.URI
	// Poll is how often token.wait looks; default 250 ms.
	Poll time.Duration
}

// Binding is the token module for one run. Close it after the run: it closes every token
// the script opened.
type Binding struct {
	cfg    Config
	mu     sync.Mutex
	opened []tk.Token
}

// New returns the binding for one run.
func New(cfg Config) *Binding { return &Binding{cfg: cfg} }

// Close closes the tokens the run opened.
func (b *Binding) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, t := range b.opened {
		if err := t.Close(); err != nil && !errors.Is(err, tk.ErrClosed) {
			errs = append(errs, err)
		}
	}
	b.opened = nil
	return errors.Join(errs...)
}

// handle is the Go value behind a token.Token userdata.
type handle struct {
	tok  tk.Token
	info tk.Info // as found; Info() reads it fresh
}

// KeyRef is the Go value behind a token.Key userdata: the key and the token it lives on.
// Other bindings (ca, sign) resolve a script's key argument to it with CheckKey.
type KeyRef struct {
	Token tk.Token
	Key   *tk.Key
}

// Signer returns a crypto.Signer for the key; the private key stays on the token.
func (k *KeyRef) Signer(ctx context.Context) (crypto.Signer, error) {
	return k.Token.Signer(ctx, k.Key)
}

// CheckKey returns argument n as a token key, raising a clean argument error otherwise.
func CheckKey(L *lua.LState, n int) *KeyRef {
	return runtime.CheckUserData[*KeyRef](L, n, KeyType)
}

// Module is the Lua module.
func (b *Binding) Module() runtime.Module {
	return runtime.Module{
		Name: "token",
		Doc:  "Find the token to work on and drive it.",
		Funcs: []runtime.Func{
			{Name: "list", Fn: b.list, Returns: "tokens: table[]",
				Doc: "Every token present, initialised or not, as info tables."},
			{Name: "wait", Fn: b.wait, Args: "opts?: table", Returns: "tok: token.Token?, err: table?",
				Doc: "Wait up to opts.timeout seconds (default 60) for exactly one token (narrowed by opts.uri or --token); refuses several. Uninitialised tokens count only with opts.include_uninitialized. opts.progress (a ui.Progress) is moved on as the wait goes."},
		},
		Types: []runtime.Type{
			{Name: TokenType, Doc: "A token opened for use.", Methods: []runtime.Func{
				{Name: "info", Fn: tokInfo, Returns: "info: table?, err: table?",
					Doc: "Label, serial, manufacturer, model, and flags (user_pin_count_low, user_pin_final_try, user_pin_locked, so_pin_..., *_retries_left when known)."},
				{Name: "login", Fn: tokLogin, Args: "pin: string, opts?: table", Returns: "ok: boolean?, err: table?", Secret: []string{"pin"},
					Doc: "Log in as the user, or as the security officer with opts.so = true. A wrong PIN returns nil, {code='PIN_INCORRECT', retries_left=...}."},
				{Name: "logout", Fn: tokLogout, Returns: "ok: boolean?, err: table?", Doc: "Log out; fine when nobody is logged in."},
				{Name: "set_pin", Fn: tokSetPIN, Args: "old_pin: string, new_pin: string", Returns: "ok: boolean?, err: table?", Secret: []string{"old_pin", "new_pin"},
					Doc: "Change the logged-in role's PIN."},
				{Name: "init_pin", Fn: tokInitPIN, Args: "new_pin: string", Returns: "ok: boolean?, err: table?", Secret: []string{"new_pin"},
					Doc: "Set the user PIN as the security officer; unblocks a locked user PIN."},
				{Name: "format", Fn: tokFormat, Args: "opts: table", Returns: "ok: boolean?, err: table?", Secret: []string{"so_pin", "user_pin"},
					Doc: "Wipe every object and the user PIN: opts.so_pin, opts.label (default: keep). With opts.user_pin the new token gets that user PIN in the same step (one write on the software token, so a crash never leaves it without one); nobody is logged in afterwards."},
				{Name: "generate_key", Fn: tokGenerateKey, Args: "opts: table", Returns: "key: token.Key?, err: table?",
					Doc: "Generate a non-extractable key pair on the token: opts.type = 'rsa' (bits 2048|3072|4096), 'ec' (curve 'P-256'|'P-384'), 'ed25519', or 'vendor' (mechanism, public_template, private_template); opts.label, opts.id (hex)."},
				{Name: "keys", Fn: tokKeys, Returns: "keys: token.Key[]?, err: table?", Doc: "The key pairs visible now (private keys need a login)."},
				{Name: "certificates", Fn: tokCertificates, Returns: "certs: table[]?, err: table?", Doc: "Certificates on the token: id, label, subject, issuer, serial, not_before, not_after, ext_key_usage (the extended key usage OIDs as strings; empty when the certificate names none, which RFC 5280 reads as any), pem, der."},
				{Name: "store_certificate", Fn: tokStoreCertificate, Args: "cert: string, opts?: table", Returns: "cert: table?, err: table?",
					Doc: "Store a certificate (DER or PEM) next to its key: opts.id (hex), opts.label."},
				{Name: "delete", Fn: tokDelete, Args: "opts: table", Returns: "ok: boolean?, err: table?",
					Doc: "Delete objects: opts.class = 'cert'|'private-key'|'public-key', opts.id (hex), opts.label."},
				{Name: "close", Fn: tokClose, Doc: "Close the handle; the run closes it anyway."},
			}},
			{Name: KeyType, Doc: "A key pair on a token.", Fields: keyFields,
				FieldNames: []string{"id", "label", "type", "bits", "curve", "public_key"}},
		},
	}
}

func (b *Binding) list(L *lua.LState) int {
	infos, err := b.cfg.Provider.Tokens(runtime.Context(L))
	if err != nil {
		return errcode.Push(L, err)
	}
	out := make([]any, len(infos))
	for i, info := range infos {
		out[i] = infoMap(info)
	}
	L.Push(runtime.ToLua(L, out))
	return 1
}

func (b *Binding) wait(L *lua.LState) int {
	o := runtime.CheckOpts(L, 1)
	timeout := o.Duration("timeout", 60*time.Second)
	uriText := o.String("uri", "")
	includeUninit := o.Bool("include_uninitialized", false)
	bar := optProgress(o)
	o.Check()
	uri := b.cfg.URI
	if uriText != "" {
		u, err := tk.ParseURI(uriText)
		if err != nil {
			runtime.ArgError(L, 1, err.Error())
		}
		uri = u
	}
	ctx := runtime.Context(L)
	info, err := tk.Wait(ctx, b.cfg.Provider, tk.WaitOptions{
		SelectOptions: tk.SelectOptions{URI: uri, IncludeUninitialized: includeUninit},
		Timeout:       timeout,
		Poll:          b.cfg.Poll,
		Waiting:       waiting(bar, timeout),
	})
	if err != nil {
		if ctx.Err() != nil {
			runtime.Raise(L, ctx.Err())
		}
		return errcode.Push(L, err)
	}
	t, err := b.cfg.Provider.Open(ctx, info)
	if err != nil {
		return errcode.Push(L, err)
	}
	b.mu.Lock()
	b.opened = append(b.opened, t)
	b.mu.Unlock()
	L.Push(runtime.NewUserData(L, TokenType, &handle{tok: t, info: info}))
	return 1
}

// optProgress is opts.progress, a ui.Progress display (ui.progress's result), or nil. Any
// other value is ignored rather than refused: a replay's stand-in ui module gives back
// handles of its own, and a display is never worth stopping a token operation for.
func optProgress(o *runtime.Opts) ui.Progress {
	if ud, ok := o.Value("progress").(*lua.LUserData); ok {
		if p, ok := ud.Value.(ui.Progress); ok {
			return p
		}
	}
	return nil
}

// waiting moves bar on while token.wait waits: the fraction of the timeout gone, once a
// second (the wait looks four times a second). Nil when there is no bar.
func waiting(bar ui.Progress, timeout time.Duration) func(time.Duration) {
	if bar == nil || timeout <= 0 {
		return nil
	}
	last := time.Duration(-1)
	return func(waited time.Duration) {
		if s := waited.Truncate(time.Second); s != last {
			last = s
			ui.UpdateProgress(bar, ui.Step{Fraction: float64(waited) / float64(timeout),
				Note: fmt.Sprintf("%ds/%ds", int(waited.Seconds()), int(timeout.Seconds()))})
		}
	}
}

func checkTok(L *lua.LState) *handle { return runtime.CheckUserData[*handle](L, 1, TokenType) }

func pushOK(L *lua.LState) int {
	L.Push(lua.LTrue)
	return 1
}

func done(L *lua.LState, err error) int {
	if err != nil {
		return errcode.Push(L, err)
	}
	return pushOK(L)
}

func infoMap(i tk.Info) map[string]any {
	flags := map[string]any{
		"user_pin_count_low":     i.UserPIN.CountLow,
		"user_pin_final_try":     i.UserPIN.FinalTry,
		"user_pin_locked":        i.UserPIN.Locked,
		"user_pin_to_be_changed": i.UserPIN.ToBeChanged,
		"so_pin_count_low":       i.SOPIN.CountLow,
		"so_pin_final_try":       i.SOPIN.FinalTry,
		"so_pin_locked":          i.SOPIN.Locked,
		"so_pin_to_be_changed":   i.SOPIN.ToBeChanged,
	}
	if i.UserPIN.RetriesLeft >= 0 {
		flags["user_pin_retries_left"] = i.UserPIN.RetriesLeft
	}
	if i.SOPIN.RetriesLeft >= 0 {
		flags["so_pin_retries_left"] = i.SOPIN.RetriesLeft
	}
	return map[string]any{
		"label":                i.Label,
		"serial":               i.Serial,
		"manufacturer":         i.Manufacturer,
		"model":                i.Model,
		"initialized":          i.Initialized,
		"user_pin_initialized": i.UserPINInitialized,
		"login_required":       i.LoginRequired,
		"min_pin_len":          i.MinPINLen,
		"max_pin_len":          i.MaxPINLen,
		"uri":                  tk.URIFor(i).String(),
		"flags":                flags,
	}
}

func tokInfo(L *lua.LState) int {
	h := checkTok(L)
	info, err := h.tok.Info(runtime.Context(L))
	if err != nil {
		return errcode.Push(L, err)
	}
	L.Push(runtime.ToLua(L, infoMap(info)))
	return 1
}

func tokLogin(L *lua.LState) int {
	h := checkTok(L)
	pin := L.CheckString(2)
	o := runtime.CheckOpts(L, 3)
	role := tk.User
	if o.Bool("so", false) {
		role = tk.SO
	}
	o.Check()
	return done(L, h.tok.Login(runtime.Context(L), role, pin))
}

func tokLogout(L *lua.LState) int {
	h := checkTok(L)
	err := h.tok.Logout(runtime.Context(L))
	if errors.Is(err, tk.ErrNotLoggedIn) {
		err = nil
	}
	return done(L, err)
}

func tokSetPIN(L *lua.LState) int {
	h := checkTok(L)
	old, new := L.CheckString(2), L.CheckString(3)
	return done(L, h.tok.SetPIN(runtime.Context(L), old, new))
}

func tokInitPIN(L *lua.LState) int {
	h := checkTok(L)
	return done(L, h.tok.InitPIN(runtime.Context(L), L.CheckString(2)))
}

func tokFormat(L *lua.LState) int {
	h := checkTok(L)
	o := runtime.CheckOpts(L, 2)
	o.Required("so_pin")
	soPIN := o.String("so_pin", "")
	label := o.String("label", "")
	userPIN, withUser := o.String("user_pin", ""), o.Has("user_pin")
	o.Check()
	ctx := runtime.Context(L)
	if label == "" {
		info, err := h.tok.Info(ctx)
		if err != nil {
			return errcode.Push(L, err)
		}
		label = info.Label
	}
	if withUser {
		return done(L, tk.FormatWithUserPIN(ctx, h.tok, soPIN, label, userPIN))
	}
	return done(L, h.tok.Format(ctx, soPIN, label))
}

// keyTypes maps the script's names to key requests.
var keyTypes = map[string]tk.KeyType{"rsa": tk.RSA, "ec": tk.EC, "ed25519": tk.Ed25519, "vendor": tk.Vendor}

func tokGenerateKey(L *lua.LState) int {
	h := checkTok(L)
	o := runtime.CheckOpts(L, 2)
	o.Required("type")
	typ, ok := keyTypes[o.String("type", "")]
	if !ok {
		runtime.ArgError(L, 2, fmt.Sprintf("unknown key type %q (want rsa, ec, ed25519 or vendor)", o.String("type", "")))
	}
	req := tk.KeyRequest{
		Type:  typ,
		Bits:  o.Int("bits", 0),
		Curve: o.String("curve", ""),
		Label: o.String("label", ""),
		ID:    hexOpt(L, o, "id"),
	}
	if typ == tk.Vendor {
		o.Required("mechanism")
		req.Vendor = &tk.VendorMechanism{
			Mechanism:       uint(o.Int("mechanism", 0)),
			PublicTemplate:  template(L, o.Table("public_template"), "public_template"),
			PrivateTemplate: template(L, o.Table("private_template"), "private_template"),
		}
	} else {
		o.Table("public_template")
		o.Table("private_template")
		o.Int("mechanism", 0)
		if o.Has("mechanism") || o.Has("public_template") || o.Has("private_template") {
			runtime.ArgError(L, 2, "mechanism and templates go with type = 'vendor'")
		}
	}
	switch {
	case typ == tk.RSA && req.Bits == 0:
		req.Bits = 2048
	case typ == tk.EC && req.Curve == "":
		req.Curve = "P-256"
	}
	o.Check()
	key, err := h.tok.GenerateKey(runtime.Context(L), req)
	if err != nil {
		return errcode.Push(L, err)
	}
	L.Push(runtime.NewUserData(L, KeyType, &KeyRef{Token: h.tok, Key: key}))
	return 1
}

// hexOpt reads an object id given as hex, as pkcs11-tool shows ids.
func hexOpt(L *lua.LState, o *runtime.Opts, key string) []byte {
	s := o.String(key, "")
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		runtime.ArgError(L, 2, fmt.Sprintf("%s must be hex, as pkcs11-tool shows ids (got %q)", key, s))
	}
	return b
}

// template converts { {type = 0x100, value = true|number|"hex"} ... } to raw attributes.
// Numbers become a native CK_ULONG (8 bytes, little-endian, on the platforms we build for).
func template(L *lua.LState, t *lua.LTable, name string) []tk.Attribute {
	if t == nil {
		return nil
	}
	var out []tk.Attribute
	for i := 1; i <= t.Len(); i++ {
		e, ok := t.RawGetInt(i).(*lua.LTable)
		if !ok {
			runtime.ArgError(L, 2, fmt.Sprintf("%s[%d] must be a table {type=..., value=...}", name, i))
		}
		typ, ok := e.RawGetString("type").(lua.LNumber)
		if !ok {
			runtime.ArgError(L, 2, fmt.Sprintf("%s[%d].type must be a number (the CKA_ value)", name, i))
		}
		a := tk.Attribute{Type: uint(typ)}
		switch v := e.RawGetString("value").(type) {
		case lua.LBool:
			if v {
				a.Value = []byte{1}
			} else {
				a.Value = []byte{0}
			}
		case lua.LNumber:
			a.Value = binary.LittleEndian.AppendUint64(nil, uint64(v))
		case lua.LString:
			b, err := hex.DecodeString(string(v))
			if err != nil {
				runtime.ArgError(L, 2, fmt.Sprintf("%s[%d].value: a string value must be hex", name, i))
			}
			a.Value = b
		default:
			runtime.ArgError(L, 2, fmt.Sprintf("%s[%d].value must be a boolean, a number or a hex string", name, i))
		}
		out = append(out, a)
	}
	return out
}

func keyFields(v any) map[string]any {
	k := v.(*KeyRef).Key
	m := map[string]any{
		"id":    k.IDHex(),
		"label": k.Label,
		"type":  string(k.Type),
		"bits":  k.Bits,
	}
	if k.Curve != "" {
		m["curve"] = k.Curve
	}
	if k.Public != nil {
		if der, err := x509.MarshalPKIXPublicKey(k.Public); err == nil {
			m["public_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		}
	}
	return m
}

func tokKeys(L *lua.LState) int {
	h := checkTok(L)
	keys, err := h.tok.Keys(runtime.Context(L))
	if err != nil {
		return errcode.Push(L, err)
	}
	t := L.CreateTable(len(keys), 0)
	for _, k := range keys {
		t.Append(runtime.NewUserData(L, KeyType, &KeyRef{Token: h.tok, Key: k}))
	}
	L.Push(t)
	return 1
}

func certMap(c *tk.Cert) map[string]any {
	m := map[string]any{
		"id":    c.IDHex(),
		"label": c.Label,
		"der":   string(c.DER),
		"pem":   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})),
	}
	if x := c.X509; x != nil {
		m["subject"] = x.Subject.String()
		m["issuer"] = x.Issuer.String()
		m["serial"] = x.SerialNumber.Text(16)
		m["not_before"] = x.NotBefore.UTC().Format(time.RFC3339)
		m["not_after"] = x.NotAfter.UTC().Format(time.RFC3339)
		m["ext_key_usage"] = extKeyUsage(x)
	}
	return m
}

// oidExtKeyUsage is the extended key usage extension, read as written so that a bank's own
// purposes (KZ's 1.2.398.3.3.4.1.1, a person's signature) reach scripts as dotted OIDs.
var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// extKeyUsage lists the certificate's extended key usage OIDs; none when it has none or the
// extension does not parse (crypto/x509 would have refused the certificate then).
func extKeyUsage(c *x509.Certificate) []any {
	out := []any{}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidExtKeyUsage) {
			continue
		}
		var oids []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(e.Value, &oids); err != nil || len(rest) > 0 {
			return out
		}
		for _, o := range oids {
			out = append(out, o.String())
		}
	}
	return out
}

func tokCertificates(L *lua.LState) int {
	h := checkTok(L)
	certs, err := h.tok.Certificates(runtime.Context(L))
	if err != nil {
		return errcode.Push(L, err)
	}
	out := make([]any, len(certs))
	for i, c := range certs {
		out[i] = certMap(c)
	}
	L.Push(runtime.ToLua(L, out))
	return 1
}

// certDER accepts a certificate as DER or PEM text.
func certDER(s string) []byte {
	if block, _ := pem.Decode([]byte(s)); block != nil && block.Type == "CERTIFICATE" {
		return block.Bytes
	}
	return []byte(s)
}

func tokStoreCertificate(L *lua.LState) int {
	h := checkTok(L)
	der := certDER(L.CheckString(2))
	o := runtime.CheckOpts(L, 3)
	req := tk.CertificateRequest{DER: der, ID: hexOpt(L, o, "id"), Label: o.String("label", "")}
	o.Check()
	c, err := h.tok.StoreCertificate(runtime.Context(L), req)
	if err != nil {
		return errcode.Push(L, err)
	}
	L.Push(runtime.ToLua(L, certMap(c)))
	return 1
}

var classes = map[string]tk.ObjectClass{"cert": tk.Certificate, "private-key": tk.PrivateKey, "public-key": tk.PublicKey}

func tokDelete(L *lua.LState) int {
	h := checkTok(L)
	o := runtime.CheckOpts(L, 2)
	o.Required("class", "id")
	class, ok := classes[o.String("class", "")]
	if !ok {
		runtime.ArgError(L, 2, fmt.Sprintf("unknown class %q (want cert, private-key or public-key)", o.String("class", "")))
	}
	obj := tk.Object{Class: class, ID: hexOpt(L, o, "id"), Label: o.String("label", "")}
	o.Check()
	return done(L, h.tok.Delete(runtime.Context(L), obj))
}

func tokClose(L *lua.LState) int {
	h := checkTok(L)
	if err := h.tok.Close(); err != nil && !errors.Is(err, tk.ErrClosed) {
		return errcode.Push(L, err)
	}
	return pushOK(L)
}
