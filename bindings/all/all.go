// Package all owns the list of every Lua module tokenrun offers, built without live
// dependencies, for tools that read only the modules' metadata: the generated reference,
// the editor definitions and the authoring checks. Calling a function of these modules
// is a bug: their token provider, front-end, journal and region are nil.
package all

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bindca "github.com/tokenrun/tokenrun/bindings/ca"
	"github.com/tokenrun/tokenrun/bindings/errcode"
	bindjournal "github.com/tokenrun/tokenrun/bindings/journal"
	bindpolicy "github.com/tokenrun/tokenrun/bindings/policy"
	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	bindui "github.com/tokenrun/tokenrun/bindings/ui"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/runtime/luadoc"
)

// Modules returns every module, sorted by name. It is one explicit list, like the one
// cmd/tokenrun's execute builds, so that a new binding is added here on purpose; the
// test that compares it with the registry execute builds keeps the two in step.
func Modules() []runtime.Module {
	return []runtime.Module{
		bindca.Module(),
		bindjournal.Module(nil, ""),
		bindpolicy.Module(nil, nil),
		bindsign.Module(),
		bindtoken.New(bindtoken.Config{}).Module(),
		bindui.Module(nil),
	}
}

// Registry returns the modules registered, which validates them as a run would.
func Registry() (*runtime.Registry, error) {
	reg := runtime.NewRegistry()
	for _, m := range Modules() {
		if err := reg.Add(m); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Codes is the documented set of error codes scripts see, with their exit-code class. The
// constants live in errcode and bindca without a list, so this is the list; a test checks
// every code a module's Doc names is in it.
func Codes() []luadoc.Code {
	names := []string{
		errcode.PINIncorrect, errcode.PINLocked, errcode.PINInvalid, errcode.PINNotInitialized,
		errcode.NotLoggedIn, errcode.TokenNotPresent, errcode.TokenDamaged, errcode.SeveralTokens,
		errcode.NotFound, errcode.AlreadyExists, errcode.Unsupported, errcode.InvalidInput, errcode.TokenError,
		errcode.Cancelled, errcode.TimedOut, errcode.Refused, errcode.TokenBusy,
		errcode.NoCertificate, errcode.KeyMismatch, errcode.Malformed,
		bindca.CodeWrongPassword, bindca.CodeDamagedContainer, bindca.CodeContainerMissing, bindca.CodeUnsupported, bindca.CodePending,
		bindca.CodeRefused, bindca.CodeUnavailable, bindca.CodeBadResponse, bindca.CodeUntrustedServer,
		bindca.CodeCertificateRefused, bindca.CodeError,
	}
	out := make([]luadoc.Code, len(names))
	for i, n := range names {
		out[i] = luadoc.Code{Name: n, Class: string(errcode.ClassOf(n))}
	}
	return out
}

// ReferenceFile is where the generated module reference lives, relative to the repository
// root; `tokenrun scripts docs --out docs` writes it.
const ReferenceFile = "lua-reference.md"

// WriteReference writes the Markdown reference of every module.
func WriteReference(w io.Writer) error {
	return luadoc.Reference(w, Modules(), Codes())
}

// WriteTypes writes one LuaLS definition file per module (token.lua, ui.lua, ...) into dir
// and returns their paths.
func WriteTypes(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("types: %w", err)
	}
	var files []string
	for _, m := range Modules() {
		var b bytes.Buffer
		if err := luadoc.Meta(&b, m); err != nil {
			return nil, fmt.Errorf("types %s: %w", m.Name, err)
		}
		f := filepath.Join(dir, m.Name+".lua")
		if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("types: %w", err)
		}
		files = append(files, f)
	}
	return files, nil
}
