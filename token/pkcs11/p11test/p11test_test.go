package p11test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// recorder stands in for a test so that Unavailable's choice can be seen.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()            {}
func (r *recorder) Fatal(args ...any)  { r.fatal = fmt.Sprint(args...) }
func (r *recorder) Skip(args ...any)   { r.skip = fmt.Sprint(args...) }
func (r *recorder) Setenv(k, v string) {}

func TestUnavailable(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	Unavailable(r, "module %s missing: %s", "/x.so", installHint)
	assert.Contains(t, r.fatal, "module /x.so missing: install it with .ci/setup-tokens.sh")
	assert.Contains(t, r.fatal, "CI=true")
	assert.Empty(t, r.skip)

	t.Setenv("CI", "")
	r = &recorder{TB: t}
	Unavailable(r, "module %s missing", "/x.so")
	assert.Equal(t, "module /x.so missing", r.skip)
	assert.Empty(t, r.fatal)
}

func TestParseShowSlots(t *testing.T) {
	out := []byte(`Available slots:
Slot 486411930
    Slot info:
        Description:      SoftHSM slot ID 0x1cfe0e9a
    Token info:
        Serial number:    44e0099f1cfe0e9a
        Initialized:      yes
        Label:            tr test                         
Slot 1
    Token info:
        Serial number:                    
        Initialized:      no
        Label:                                            
`)
	assert.Equal(t, []shownSlot{{label: "tr test", serial: "44e0099f1cfe0e9a"}, {}}, parseShowSlots(out))
}

func TestSoftHSMToken(t *testing.T) {
	SoftHSM(t)
	a := SoftHSMToken(t, "one", "87654321", "12345678")
	b := SoftHSMToken(t, "two", "87654321", "12345678")
	assert.Len(t, a.Serial, 16)
	assert.NotEqual(t, a.Serial, b.Serial)
	assert.Equal(t, Token{Module: SoftHSMModule, Label: "one", Serial: a.Serial, SOPIN: "87654321", UserPIN: "12345678"}, a)
}
