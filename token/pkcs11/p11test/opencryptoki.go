//go:build unix

// openCryptoki needs flock(2) and signals to its daemon: this file is Unix only
// (opencryptoki_other.go elsewhere).

package p11test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
)

// Where openCryptoki keeps its files: fixed system paths, hence Unix only.
const (
	ockDaemon  = "/usr/sbin/pkcsslotd"
	ockPIDFile = "/var/run/pkcsslotd.pid"
	ockSocket  = "/var/run/pkcsslotd.socket"
	ockTmpfile = "/usr/lib/tmpfiles.d/opencryptoki.conf"
	ockSwtok   = "/var/lib/opencryptoki/swtok"
	ockShm     = "/dev/shm/var.lib.opencryptoki.swtok"
	ockModel   = "IBM SoftTok"
	ockLock    = "/tmp/tokenrun-opencryptoki.lock"
)

// ock is this process's hold on openCryptoki: a mutex between tests of this binary and a
// file lock between binaries.
var ock struct {
	mu  sync.Mutex
	ctx *p11.Ctx // loaded once and never unloaded: openCryptoki 3.8.1 crashes when reloaded
}

// holder is the test holding ock.mu, so that one test may call OpenCryptoki twice.
var (
	holderMu sync.Mutex
	holder   testing.TB
)

// OpenCryptoki resets openCryptoki's software token to a known state, labelled
// OpenCryptokiLabel with SO PIN OpenCryptokiSOPIN and user PIN OpenCryptokiUserPIN, starting
// pkcsslotd first if needed. It holds a lock until the test ends: tests using it never run at
// the same time, in this binary or another. No openCryptoki Provider may be open in this
// process when it is called, and a test that calls it must not have subtests that call it
// too (the subtest would wait for its parent's lock).
func OpenCryptoki(t testing.TB) Token {
	t.Helper()
	for _, f := range []string{OpenCryptokiModule, ockDaemon} {
		if _, err := os.Stat(f); err != nil {
			Unavailable(t, "openCryptoki (%s) not found: %s", f, installHint)
		}
	}
	holderMu.Lock()
	mine := holder == t
	holderMu.Unlock()
	if !mine {
		lockOpenCryptoki(t)
	}
	if err := ensureDaemon(); err != nil {
		Unavailable(t, "openCryptoki's pkcsslotd is not running and could not be started (%v): run .ci/setup-tokens.sh as root", err)
	}
	serial, err := resetToken(t)
	if err != nil {
		t.Fatalf("reset openCryptoki software token: %v", err)
	}
	return Token{Module: OpenCryptokiModule, Label: OpenCryptokiLabel, Serial: serial, SOPIN: OpenCryptokiSOPIN, UserPIN: OpenCryptokiUserPIN}
}

func lockOpenCryptoki(t testing.TB) {
	t.Helper()
	ock.mu.Lock()
	f, err := os.OpenFile(ockLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		ock.mu.Unlock()
		t.Fatalf("openCryptoki test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		ock.mu.Unlock()
		t.Fatalf("openCryptoki test lock %s: %v", ockLock, err)
	}
	holderMu.Lock()
	holder = t
	holderMu.Unlock()
	t.Cleanup(func() {
		holderMu.Lock()
		holder = nil
		holderMu.Unlock()
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		ock.mu.Unlock()
	})
}

// daemonRunning reports whether pkcsslotd's pid file names a live process.
func daemonRunning() (int, bool) {
	b, err := os.ReadFile(ockPIDFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pid, false
	}
	if _, err := os.Stat(ockSocket); err != nil {
		return pid, false
	}
	return pid, true
}

// ensureDaemon starts pkcsslotd as facts.md describes: its runtime directories first.
func ensureDaemon() error {
	if _, ok := daemonRunning(); ok {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("only root can start it")
	}
	if tmpfiles, err := exec.LookPath("systemd-tmpfiles"); err == nil {
		if out, err := exec.Command(tmpfiles, "--create", ockTmpfile).CombinedOutput(); err != nil {
			return fmt.Errorf("systemd-tmpfiles: %v: %s", err, out)
		}
	}
	if out, err := exec.Command(ockDaemon).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", ockDaemon, err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, ok := daemonRunning(); ok {
			return nil
		}
	}
	return errors.New("pkcsslotd started but its socket did not appear")
}

// stopDaemon stops pkcsslotd and waits until it is gone.
func stopDaemon() error {
	pid, ok := daemonRunning()
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop pkcsslotd: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
	}
	return errors.New("pkcsslotd did not stop")
}

// wipeToken deletes the software token's files, the only way back from a locked SO PIN.
func wipeToken() error {
	if os.Geteuid() != 0 {
		return errors.New("only root can delete the token's files")
	}
	if err := stopDaemon(); err != nil {
		return err
	}
	var paths []string
	paths = append(paths, filepath.Join(ockSwtok, "NVTOK.DAT"), ockShm)
	mk, _ := filepath.Glob(filepath.Join(ockSwtok, "MK_*"))
	objs, _ := filepath.Glob(filepath.Join(ockSwtok, "TOK_OBJ", "*"))
	paths = append(append(paths, mk...), objs...)
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return ensureDaemon()
}

// resetToken initialises the software token with the default SO PIN (which wipes it) and
// sets the user PIN. When the SO PIN was changed or locked by an earlier test, it deletes
// the token's files and starts again.
func resetToken(t testing.TB) (string, error) {
	if ock.ctx == nil {
		ock.ctx = p11.New(OpenCryptokiModule)
		if ock.ctx == nil {
			return "", fmt.Errorf("cannot load %s", OpenCryptokiModule)
		}
	}
	serial, err := initToken(ock.ctx)
	var pe p11.Error
	if errors.As(err, &pe) && (pe == p11.CKR_PIN_INCORRECT || pe == p11.CKR_PIN_LOCKED) {
		t.Logf("openCryptoki SO PIN is not the default (%v): deleting the software token's files", err)
		if werr := wipeToken(); werr != nil {
			return "", fmt.Errorf("%w; then wiping the token: %v", err, werr)
		}
		serial, err = initToken(ock.ctx)
	}
	return serial, err
}

func initToken(ctx *p11.Ctx) (serial string, err error) {
	if err := ctx.Initialize(); err != nil {
		var pe p11.Error
		if errors.As(err, &pe) && pe == p11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			return "", errors.New("openCryptoki is still initialised in this process: close every Provider and Token at the end of each test")
		}
		return "", fmt.Errorf("C_Initialize: %w", err)
	}
	defer func() {
		if ferr := ctx.Finalize(); ferr != nil && err == nil {
			err = fmt.Errorf("C_Finalize: %w", ferr)
		}
	}()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return "", fmt.Errorf("C_GetSlotList: %w", err)
	}
	slot, found := uint(0), false
	for _, s := range slots {
		if ti, err := ctx.GetTokenInfo(s); err == nil && strings.TrimSpace(ti.Model) == ockModel {
			slot, found = s, true
		}
	}
	if !found {
		return "", fmt.Errorf("no %q token in slots %v: check /etc/opencryptoki/opencryptoki.conf", ockModel, slots)
	}
	if err := ctx.CloseAllSessions(slot); err != nil {
		return "", fmt.Errorf("C_CloseAllSessions: %w", err)
	}
	if err := ctx.InitToken(slot, OpenCryptokiSOPIN, OpenCryptokiLabel); err != nil {
		return "", err
	}
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return "", fmt.Errorf("C_OpenSession: %w", err)
	}
	defer ctx.CloseSession(sh)
	if err := ctx.Login(sh, p11.CKU_SO, OpenCryptokiSOPIN); err != nil {
		return "", fmt.Errorf("C_Login as SO: %w", err)
	}
	if err := ctx.InitPIN(sh, OpenCryptokiUserPIN); err != nil {
		return "", fmt.Errorf("C_InitPIN: %w", err)
	}
	if err := ctx.Logout(sh); err != nil {
		return "", fmt.Errorf("C_Logout: %w", err)
	}
	ti, err := ctx.GetTokenInfo(slot)
	if err != nil {
		return "", fmt.Errorf("C_GetTokenInfo: %w", err)
	}
	return strings.TrimSpace(ti.SerialNumber), nil
}
