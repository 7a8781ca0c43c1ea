package diagnose

import (
	"os"
	"path/filepath"
)

// Candidate is a place where a PKCS#11 module is commonly installed, for `diagnose` to look
// at: support's first question is which token drivers the machine has.
type Candidate struct {
	Name string `json:"name"` // the module, for people: "SafeNet eToken"
	Path string `json:"path"`
}

// KnownModules are the usual module locations on goos/goarch; getenv reads the folders
// Windows names by variable (%SystemRoot%, %ProgramFiles%), defaulted when unset, so a test
// can point them at a fake root.
//
// The bank's KAZTOKEN library is not published under a name (it comes with the vendor's
// driver): its entries are guesses from the vendor's folder names, marked so, and a
// diagnosis with --module PATH looks at the real one once support knows it.
func KnownModules(goos, goarch string, getenv func(string) string) []Candidate {
	switch goos {
	case "windows":
		return windowsModules(getenv)
	case "darwin":
		return []Candidate{
			{"OpenSC", "/Library/OpenSC/lib/opensc-pkcs11.so"},
			{"OpenSC", "/opt/homebrew/lib/opensc-pkcs11.so"},
			{"OpenSC", "/usr/local/lib/opensc-pkcs11.so"},
			{"SoftHSM2", "/opt/homebrew/lib/softhsm/libsofthsm2.so"},
			{"SoftHSM2", "/usr/local/lib/softhsm/libsofthsm2.so"},
		}
	}
	return unixModules(goarch)
}

// unixModules are where Debian and Ubuntu (multiarch), Fedora and RHEL (lib64) and the
// vendors' own Linux packages install modules.
func unixModules(goarch string) []Candidate {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu", "arm": "arm-linux-gnueabihf"}[goarch]
	var c []Candidate
	add := func(name string, paths ...string) {
		for _, p := range paths {
			c = append(c, Candidate{name, p})
		}
	}
	add("SoftHSM2", "/usr/lib/softhsm/libsofthsm2.so")
	if triplet != "" {
		add("SoftHSM2", "/usr/lib/"+triplet+"/softhsm/libsofthsm2.so")
		add("openCryptoki", "/usr/lib/"+triplet+"/pkcs11/libopencryptoki.so")
	}
	add("openCryptoki", "/usr/lib/opencryptoki/libopencryptoki.so", "/usr/lib64/opencryptoki/libopencryptoki.so")
	if triplet != "" {
		add("OpenSC", "/usr/lib/"+triplet+"/opensc-pkcs11.so", "/usr/lib/"+triplet+"/pkcs11/opensc-pkcs11.so")
	}
	add("OpenSC", "/usr/lib64/pkcs11/opensc-pkcs11.so")
	add("SafeNet eToken", "/usr/lib/libeTPkcs11.so")
	add("JaCarta", "/usr/lib/libjcPKCS11-2.so")
	if triplet != "" {
		add("JaCarta", "/usr/lib/"+triplet+"/libjcPKCS11-2.so")
	}
	add("Rutoken", "/usr/lib/librtpkcs11ecp.so")
	return c
}

// windowsModules are where the drivers' installers put their DLLs. A 64-bit DLL goes into
// %SystemRoot%\System32 and its 32-bit twin into SysWOW64; a 64-bit tokenrun loads only the
// first, and finding only the second tells support the 64-bit driver is missing, so both are
// listed (loading a 32-bit one says so: token/pkcs11 checks the PE header).
func windowsModules(getenv func(string) string) []Candidate {
	dir := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	system := dir("SystemRoot", `C:\Windows`)
	programs := dir("ProgramFiles", `C:\Program Files`)
	programs32 := dir("ProgramFiles(x86)", `C:\Program Files (x86)`)
	sys32 := filepath.Join(system, "System32")
	wow64 := filepath.Join(system, "SysWOW64")

	var c []Candidate
	add := func(name string, paths ...string) {
		for _, p := range paths {
			c = append(c, Candidate{name, p})
		}
	}
	// KAZTOKEN: guesses (the name is not published), in the system folder and the
	// vendor's program folders.
	for _, dll := range []string{"kztoken.dll", "KZ_PKCS11.dll", "kaztoken.dll"} {
		add("KAZTOKEN (guessed name)", filepath.Join(sys32, dll))
		for _, folder := range []string{"KAZTOKEN", "Kaztoken", `KAZTOKEN\KAZTOKEN Driver`} {
			add("KAZTOKEN (guessed name)", filepath.Join(programs, folder, dll), filepath.Join(programs32, folder, dll))
		}
		add("KAZTOKEN (guessed name, 32-bit)", filepath.Join(wow64, dll))
	}
	// Tokens Kazakh banks also hand out (NCALayer knows them as AKEToken*, AKJaCartaStore).
	for _, m := range []struct{ name, dll string }{
		{"SafeNet eToken", "eTPKCS11.dll"},
		{"JaCarta", "jcPKCS11-2.dll"},
		{"Rutoken", "rtPKCS11ECP.dll"},
		{"OpenSC", "opensc-pkcs11.dll"},
	} {
		add(m.name, filepath.Join(sys32, m.dll))
		add(m.name+" (32-bit)", filepath.Join(wow64, m.dll))
	}
	add("OpenSC", filepath.Join(programs, "OpenSC Project", "OpenSC", "pkcs11", "opensc-pkcs11.dll"))
	add("OpenSC (32-bit)", filepath.Join(programs32, "OpenSC Project", "OpenSC", "pkcs11", "opensc-pkcs11.dll"))
	add("SoftHSM2", `C:\SoftHSM2\lib\softhsm2-x64.dll`, filepath.Join(programs, "SoftHSM2", "lib", "softhsm2-x64.dll"))
	return c
}

// present is the candidates whose file exists.
func present(cands []Candidate) []Candidate {
	var out []Candidate
	for _, c := range cands {
		if fi, err := os.Stat(c.Path); err == nil && !fi.IsDir() {
			out = append(out, c)
		}
	}
	return out
}
