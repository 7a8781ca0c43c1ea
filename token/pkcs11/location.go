//go:build cgo

package pkcs11

import "github.com/tokenrun/tokenrun/token"

// Location is the module as it is loaded (its absolute path, or the bare name dlopen
// searched for): the safety floor keys its lock and ledger on it with the token's identity.
func (p *Provider) Location(token.Info) string { return moduleKey(p.mod.path) }
