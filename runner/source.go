package runner

import (
	"errors"
	"fmt"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/soft"
)

// Source says where tokens come from: one PKCS#11 module, or software token directories,
// narrowed by an RFC 7512 URI.
type Source struct {
	Module string   // a PKCS#11 library (--module); "" takes the URI's module-path
	Soft   []string // software token directories (--soft), each created blank when empty
	URI    string   // --token; "" for any token
}

// OpenSource opens the token provider s names, and its URI.
func OpenSource(s Source) (token.Provider, *token.URI, error) {
	uri, err := token.ParseURI(s.URI)
	if err != nil {
		return nil, nil, UsageError{fmt.Errorf("--token: %w", err)}
	}
	module := s.Module
	if module == "" {
		module = uri.ModulePath
	}
	dirs := s.Soft
	switch {
	case module != "" && len(dirs) > 0:
		return nil, nil, UsageError{errors.New("give either --module or --soft, not both")}
	case module != "":
		p, err := pkcs11.Open(module)
		if err != nil {
			return nil, nil, UsageError{err}
		}
		return p, uri, nil
	case len(dirs) > 0:
		p, err := soft.Open(soft.Options{}, dirs...)
		if err != nil {
			return nil, nil, UsageError{err}
		}
		return p, uri, nil
	}
	return nil, nil, UsageError{errors.New("no token source: give --module PATH (the token's PKCS#11 library) or --soft DIR (a software token)")}
}
