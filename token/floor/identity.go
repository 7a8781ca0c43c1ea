package floor

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"github.com/tokenrun/tokenrun/token"
)

// ID is the identity the ledger and the lock are keyed by.
type ID struct {
	Key  string // hex, safe as a file name
	Name string // for people: label, serial and where the token is
}

// Identify names the token info describes, uniquely even where modules repeat serials. It
// combines where the token is (the module's resolved path, or a software token's
// directory), the manufacturer, the model and the serial. Some modules give every token the
// same serial (all zeros, blanks): for those the label is added too, the only other thing
// that tells two such tokens apart. The slot number is never used: slots move.
func Identify(p token.Provider, info token.Info) ID {
	where := p.Description()
	if l, ok := p.(token.Locator); ok {
		where = l.Location(info)
	}
	if abs, err := filepath.Abs(where); err == nil && filepath.IsAbs(where) {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			where = real
		}
	}
	parts := []string{where, info.Manufacturer, info.Model, info.Serial}
	if degenerateSerial(info.Serial) {
		parts = append(parts, "label="+info.Label)
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return ID{Key: hex.EncodeToString(sum[:16]), Name: info.Name() + " at " + where}
}

// degenerateSerial reports a serial that cannot tell tokens apart: empty, or one character
// repeated (0000000000000000).
func degenerateSerial(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || strings.Count(s, s[:1]) == len(s)
}
