//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"

	"github.com/tokenrun/tokenrun/token"
)

// ErrNoCgo is why a build without cgo loads no module: miekg/pkcs11 calls the module's C
// functions through cgo, and there is no other way to call a C library from Go.
var ErrNoCgo = errors.New("this tokenrun was built without cgo (CGO_ENABLED=0), which PKCS#11 modules need")

// Provider is never made in a build without cgo: Open always fails. It exists so that the
// callers compile unchanged.
type Provider struct{}

var _ token.Provider = (*Provider)(nil)

// Open refuses every module, naming why and what works instead.
func Open(path string) (*Provider, error) {
	return nil, fmt.Errorf("%w %s: %w; use a tokenrun built with cgo for %s/%s (CGO_ENABLED=1 and a C compiler; see the README), or --soft DIR for a software token",
		ErrLoad, path, ErrNoCgo, goruntime.GOOS, goruntime.GOARCH)
}

// Description is unreachable: no Provider exists in this build.
func (*Provider) Description() string { return "" }

// Tokens is unreachable: no Provider exists in this build.
func (*Provider) Tokens(context.Context) ([]token.Info, error) { return nil, ErrNoCgo }

// Open is unreachable: no Provider exists in this build.
func (*Provider) Open(context.Context, token.Info) (token.Token, error) { return nil, ErrNoCgo }

// Location is unreachable: no Provider exists in this build.
func (*Provider) Location(token.Info) string { return "" }

// Close is unreachable: no Provider exists in this build.
func (*Provider) Close() error { return nil }
