//go:build cgo

package pkcs11

import (
	"debug/elf"
	"debug/pe"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// module is one loaded PKCS#11 library. A library may be initialised only once per process
// (a second C_Initialize fails, even through another handle), so every Provider and Token on
// the same file shares one module, counted by refs.
type module struct {
	path string // as the caller gave it, for messages
	key  string // registry key: the resolved file
	ctx  *p11.Ctx
	refs int // guarded by registry.mu
}

// The registry keeps loaded libraries for the life of the process and finalises them when
// their last user closes. It never unloads them (no Ctx.Destroy): openCryptoki 3.8.1 crashes
// in C_Initialize after being dlclose'd and dlopen'ed again, while Finalize followed by
// Initialize on the same loaded library works on every module tried, and re-reads SoftHSM2's
// SOFTHSM2_CONF as the tests need.
var registry = struct {
	mu     sync.Mutex
	loaded map[string]*p11.Ctx // every library ever loaded, initialised or not
	active map[string]*module  // initialised ones
}{loaded: map[string]*p11.Ctx{}, active: map[string]*module{}}

// moduleKey names the library file so that two paths to one file (a symlink such as
// /usr/lib/softhsm/libsofthsm2.so) share a context: dlopen would hand back the same library
// and its second C_Initialize would fail.
func moduleKey(path string) string {
	if !hasDir(path) {
		return path // a bare name is searched for by dlopen, like the dynamic linker does
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// hasDir says whether path names a directory too, or is a bare name the loader searches
// for. Windows takes / as well as \ (people type both).
func hasDir(path string) bool {
	return strings.IndexFunc(path, func(r rune) bool { return r < 0x80 && os.IsPathSeparator(byte(r)) }) >= 0
}

// acquire returns the initialised module for path, loading and initialising it on first use.
func acquire(path string) (*module, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no module path given; name the token vendor's PKCS#11 library (a %s file)", ErrLoad, libs.ext)
	}
	key := moduleKey(path)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m, ok := registry.active[key]; ok {
		m.refs++
		return m, nil
	}
	ctx, ok := registry.loaded[key]
	if !ok {
		ctx = p11.New(path)
		if ctx == nil {
			return nil, fmt.Errorf("%w %s: %s", ErrLoad, path, diagnoseLoad(path))
		}
		registry.loaded[key] = ctx
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		// CKR_CRYPTOKI_ALREADY_INITIALIZED means code outside this package initialised the
		// library in this process; its context is usable, so it is tolerated.
		return nil, fmt.Errorf("%w %s: C_Initialize failed (%s)%s", ErrLoad, path, codeNameOf(err), initHint(path))
	}
	m := &module{path: path, key: key, ctx: ctx, refs: 1}
	registry.active[key] = m
	return m, nil
}

// release drops one reference; the last one finalises the library so that the next user
// initialises it afresh (and SoftHSM2 reads its configuration again).
func (m *module) release() error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(registry.active, m.key)
	if err := m.ctx.Finalize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_NOT_INITIALIZED) {
		return fmt.Errorf("finalise PKCS#11 module %s: %w", m.path, wrapErr("finalize", err))
	}
	return nil
}

func codeNameOf(err error) string {
	var pe p11.Error
	if errors.As(err, &pe) {
		return codeName(uint(pe))
	}
	return err.Error()
}

// initHint adds what is known to make C_Initialize fail without saying why.
func initHint(path string) string {
	if strings.Contains(strings.ToLower(filepath.Base(path)), "softhsm") {
		conf := os.Getenv("SOFTHSM2_CONF")
		if conf == "" {
			conf = "/etc/softhsm/softhsm2.conf (SOFTHSM2_CONF is not set)"
		}
		return "; SoftHSM2 fails this way when its configuration file is missing or names a token directory that does not exist: check " + conf
	}
	if strings.Contains(strings.ToLower(filepath.Base(path)), "opencryptoki") {
		return "; openCryptoki needs its slot daemon: check that pkcsslotd is running and that this user is in the pkcs11 group"
	}
	return "; check the module's configuration and that its service or reader is available"
}

// diagnoseLoad says why the loader refused a module: miekg/pkcs11 only returns nil.
func diagnoseLoad(path string) string {
	st, err := os.Stat(path)
	switch {
	case err != nil && errors.Is(err, os.ErrNotExist) && hasDir(path):
		return "no such file; check the path (the token vendor's driver package installs the module, e.g. under " + libs.where + ")"
	case err != nil && hasDir(path):
		return fmt.Sprintf("cannot read the file (%v); check its permissions", err)
	case err == nil && st.IsDir():
		return "this is a directory; give the path of the module's " + libs.ext + " file inside it"
	}
	if err == nil {
		if msg := libs.check(path); msg != "" {
			return msg
		}
	}
	reason, hasEntry := dlopenError(path)
	switch {
	case reason != "" && !hasDir(path):
		return "the dynamic loader says: " + reason + "; give the module's full path"
	case reason != "":
		return "the dynamic loader says: " + reason + "; " + libs.depsHint(path)
	case !hasEntry:
		return "the library has no C_GetFunctionList: it is not a PKCS#11 module"
	}
	return "the library could not be loaded; check that it is a PKCS#11 module for " + runtime.GOOS + "/" + runtime.GOARCH
}

// libraryKind is what a loadable library is on one system, for diagnoseLoad's words and
// checks: a Windows client given "the .so file" or "ldd" would be lost.
type libraryKind struct {
	ext      string                   // ".so"
	where    string                   // where vendors install modules
	check    func(path string) string // the file's own format, before the loader's terse message
	depsHint func(path string) string // what to check when the loader refuses a file that exists
}

var libs = libraryKinds(runtime.GOOS)

func libraryKinds(goos string) libraryKind {
	switch goos {
	case "windows":
		return libraryKind{ext: ".dll", where: `C:\Windows\System32 or the vendor's folder in C:\Program Files`, check: checkPE,
			depsHint: func(string) string {
				return "check that the token vendor's driver is installed completely (the DLLs the module needs come with it)"
			}}
	case "darwin":
		// dlopen's own message on macOS names a wrong architecture or a missing dependency.
		return libraryKind{ext: ".dylib", where: "/Library or /usr/local/lib", check: func(string) string { return "" },
			depsHint: func(path string) string {
				return "check that the module's own dependencies are installed (otool -L " + path + ")"
			}}
	}
	return libraryKind{ext: ".so", where: "/usr/lib", check: checkELF,
		depsHint: func(path string) string {
			return "check that the module's own dependencies are installed (ldd " + path + ")"
		}}
}

// checkELF catches the two commonest mistakes before the loader's terse message: a file that
// is not a shared library at all, and one built for another architecture.
func checkELF(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "not a shared library (not an ELF file); give the path of the module's .so file"
	}
	defer f.Close()
	want, ok := map[string]elf.Machine{
		"amd64": elf.EM_X86_64, "386": elf.EM_386, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM,
		"riscv64": elf.EM_RISCV, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390,
	}[runtime.GOARCH]
	if ok && f.Machine != want {
		return fmt.Sprintf("the library is built for %s but this program runs on %s; install the module for %s", f.Machine, runtime.GOARCH, runtime.GOARCH)
	}
	if f.Type != elf.ET_DYN {
		return fmt.Sprintf("not a shared library (ELF type %s); give the path of the module's .so file", f.Type)
	}
	return ""
}

// peMachines name the PE machine types a Windows PKCS#11 DLL is built for.
var peMachines = map[uint16]struct{ goarch, name string }{
	pe.IMAGE_FILE_MACHINE_AMD64: {"amd64", "64-bit x86 (amd64)"},
	pe.IMAGE_FILE_MACHINE_I386:  {"386", "32-bit x86"},
	pe.IMAGE_FILE_MACHINE_ARM64: {"arm64", "64-bit ARM (arm64)"},
}

// checkPE is checkELF for Windows DLLs. The commonest mistake there is the vendor's 32-bit
// DLL (from SysWOW64 or Program Files (x86)) given to a 64-bit tokenrun, which LoadLibrary
// reports only as "not a valid Win32 application".
func checkPE(path string) string {
	f, err := pe.Open(path)
	if err != nil {
		return "not a Windows library (not a PE file); give the path of the module's .dll file"
	}
	defer f.Close()
	if got, ok := peMachines[f.Machine]; ok && got.goarch != runtime.GOARCH {
		want := peMachines[machineOf(runtime.GOARCH)].name
		hint := ""
		if got.goarch == "386" {
			hint = ` (the 64-bit one is usually in C:\Windows\System32, the 32-bit one in SysWOW64 or C:\Program Files (x86))`
		}
		return fmt.Sprintf("the library is built for %s but this tokenrun is %s; use the token vendor's %s DLL%s", got.name, want, want, hint)
	}
	if f.Characteristics&pe.IMAGE_FILE_DLL == 0 {
		return "not a DLL (a PE file that is not a library, such as an .exe); give the path of the module's .dll file"
	}
	return ""
}

func machineOf(goarch string) uint16 {
	for m, a := range peMachines {
		if a.goarch == goarch {
			return m
		}
	}
	return 0
}
