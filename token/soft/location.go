package soft

import (
	"path/filepath"

	"github.com/tokenrun/tokenrun/token"
)

// Location is the token's directory, absolute: the safety floor keys its lock and ledger on
// it, so a token is the same token whichever other directories a run names beside it.
func (p *Provider) Location(info token.Info) string {
	slots := p.current()
	if int(info.Slot) >= len(slots) {
		return p.Description()
	}
	dir := slots[info.Slot].store.dir
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
