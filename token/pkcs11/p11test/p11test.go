// Package p11test prepares real PKCS#11 modules for tests: a private SoftHSM2 store per test,
// and openCryptoki's software token reset to a known state.
//
// PKCS#11 state is per process, so tests using these helpers must not call t.Parallel, and
// must close every Provider and Token before they end (the last Close finalises the module,
// so the next test's configuration is read afresh). openCryptoki lives at fixed system paths
// with one daemon: OpenCryptoki serialises its users across test binaries with a file lock,
// because go test runs the test binaries of several packages at once.
//
// When a module is not installed, the helpers skip the test, or fail it under CI=true, with
// a hint on how to install it. The helpers talk to the modules through miekg/pkcs11 and the
// vendors' own tools, never through token/pkcs11, so a bug there cannot hide itself.
package p11test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Module paths on Debian and Ubuntu (amd64).
const (
	SoftHSMModule      = "/usr/lib/softhsm/libsofthsm2.so"
	OpenCryptokiModule = "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so"
)

// openCryptoki's software token's defaults, as OpenCryptoki leaves it.
const (
	OpenCryptokiSOPIN   = "87654321" // the software token's factory SO PIN
	OpenCryptokiUserPIN = "11112222" // PINs are 4 to 8 characters on this token
	OpenCryptokiLabel   = "tokenrun-test"
)

const installHint = "install it with .ci/setup-tokens.sh (apt-get install softhsm2 opensc opencryptoki)"

// Token is a token a helper prepared.
type Token struct {
	Module  string
	Label   string
	Serial  string
	SOPIN   string
	UserPIN string
}

// Unavailable skips the test because a tool or module is missing, or fails it when CI=true:
// in CI a missing module means the tests silently stopped testing anything.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing module is a failure)")
		return
	}
	t.Skip(msg)
}

// SoftHSM gives the test a private SoftHSM2 token store: a temporary directory and
// configuration file, with SOFTHSM2_CONF pointing at it for the rest of the test. SoftHSM2
// reads the file at each C_Initialize. It returns the module path.
func SoftHSM(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(SoftHSMModule); err != nil {
		Unavailable(t, "SoftHSM2 module %s not found: %s", SoftHSMModule, installHint)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	return SoftHSMModule
}

// SoftHSMToken initialises a token in the store SoftHSM set up, with softhsm2-util. Call it
// before opening a Provider: a SoftHSM2 already initialised in this process does not see
// tokens another process creates until it is initialised again.
func SoftHSMToken(t testing.TB, label, soPIN, userPIN string) Token {
	t.Helper()
	if os.Getenv("SOFTHSM2_CONF") == "" {
		t.Fatal("p11test.SoftHSMToken: call p11test.SoftHSM(t) first")
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		Unavailable(t, "softhsm2-util not found: %s", installHint)
	}
	out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--so-pin", soPIN, "--pin", userPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	out, err = exec.Command(util, "--show-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v\n%s", err, out)
	}
	var serials []string
	for _, s := range parseShowSlots(out) {
		if s.label == label {
			serials = append(serials, s.serial)
		}
	}
	if len(serials) != 1 {
		t.Fatalf("softhsm2-util shows %d tokens labelled %q, want 1:\n%s", len(serials), label, out)
	}
	return Token{Module: SoftHSMModule, Label: label, Serial: serials[0], SOPIN: soPIN, UserPIN: userPIN}
}

type shownSlot struct{ label, serial string }

// parseShowSlots reads "softhsm2-util --show-slots": one "Slot N" block per slot with
// "Serial number:" and "Label:" lines.
func parseShowSlots(out []byte) []shownSlot {
	var slots []shownSlot
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		switch {
		case strings.HasPrefix(raw, "Slot "): // unindented; "    Slot info:" is not a new slot
			slots = append(slots, shownSlot{})
		case len(slots) == 0:
		case strings.HasPrefix(line, "Serial number:"):
			slots[len(slots)-1].serial = strings.TrimSpace(strings.TrimPrefix(line, "Serial number:"))
		case strings.HasPrefix(line, "Label:"):
			slots[len(slots)-1].label = strings.TrimSpace(strings.TrimPrefix(line, "Label:"))
		}
	}
	return slots
}

// PKCS11Tool returns the path of OpenSC's pkcs11-tool, a PKCS#11 client this project did
// not write, for checking token state from outside.
func PKCS11Tool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		Unavailable(t, "pkcs11-tool not found: %s", installHint)
	}
	return p
}

// ListObjects is what pkcs11-tool lists on tok after a user login: the view of a client we
// did not write.
func ListObjects(t testing.TB, tok Token) string {
	t.Helper()
	out, err := exec.Command(PKCS11Tool(t), "--module", tok.Module, "--token-label", tok.Label,
		"--login", "--pin", tok.UserPIN, "--list-objects").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v\n%s", err, out)
	}
	return string(out)
}
