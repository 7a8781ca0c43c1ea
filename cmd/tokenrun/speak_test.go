package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// TestForPerson: a failure's last line is the catalog's, by code, once; the technical
// account only with --debug; usage and answers-file mistakes stay as they are.
func TestForPerson(t *testing.T) {
	kk := mustCatalog(t, "kk")
	shown := &runtime.ScriptError{File: "change_pin.lua", Message: "Токен құпиясөзі қате.", Code: "PIN_INCORRECT",
		Procedure: "change_pin", Fields: map[string]any{"shown": true, "detail": "login: PIN incorrect (CKR_PIN_INCORRECT)"}}
	raw := &runtime.ScriptError{File: "unblock.lua", Message: "login: PIN incorrect (CKR_PIN_INCORRECT)", Code: "PIN_INCORRECT", Procedure: "unblock"}
	tests := []struct {
		name        string
		err         error
		want, debug string
	}{
		{"shown by the procedure", shown, "", "tokenrun: debug: change_pin.lua: Токен құпиясөзі қате. (procedure change_pin)\ntokenrun: debug: login: PIN incorrect (CKR_PIN_INCORRECT)\n"},
		{"a module's error by its code", raw, "tokenrun: Құпиясөз қате.\n", "tokenrun: debug: unblock.lua: login: PIN incorrect (CKR_PIN_INCORRECT) (procedure unblock)\n"},
		{"cancelled at a prompt", fmt.Errorf("enroll.lua:3: %w", ui.ErrCancelled), "tokenrun: Бас тартылды.\n", ""},
		{"a CA code without its own text", &runtime.ScriptError{Message: "x", Code: "CA_SOMETHING_NEW"}, "tokenrun: Куәландырушы орталық қате туралы хабарлады (CA_SOMETHING_NEW). Банктің қолдау қызметіне хабарласыңыз.\n", ""},
		{"a Go error of the token", fmt.Errorf("open: %w", token.ErrTokenDamaged), "tokenrun: Токендегі деректер зақымдалған. Банктің қолдау қызметіне хабарласыңыз.\n", ""},
		{"a usage mistake", usageError{errors.New("--region: no such region")}, "tokenrun: --region: no such region\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := forPerson(tt.err, kk)
			assert.ErrorIs(t, err, tt.err, "the error is kept whole for the exit code")
			assert.Equal(t, exitCode(tt.err), exitCode(err))
			var b bytes.Buffer
			printFailure(&b, err, false)
			assert.Equal(t, tt.want, b.String())
			if tt.debug != "" {
				b.Reset()
				printFailure(&b, err, true)
				assert.Equal(t, tt.want+tt.debug, b.String())
			}
		})
	}
}
