//go:build windows

package pkcs11

import (
	"errors"
	"syscall"
)

// dlopenError asks LoadLibrary why path does not load. A library that loads is left loaded,
// as on Unix: unloading PKCS#11 modules is what crashes some of them.
func dlopenError(path string) (reason string, hasEntry bool) {
	h, err := syscall.LoadLibrary(path)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			switch errno {
			case 126: // ERROR_MOD_NOT_FOUND: for a file that exists, a DLL it imports is missing
				if hasDir(path) {
					return "a DLL the module needs is missing (" + err.Error() + ")", false
				}
			case 193: // ERROR_BAD_EXE_FORMAT, worded "%1 is not a valid Win32 application."
				return "not a valid library for this Windows (a 32-bit DLL in a 64-bit tokenrun?)", false
			}
		}
		return err.Error(), false
	}
	_, err = syscall.GetProcAddress(h, "C_GetFunctionList")
	return "", err == nil
}
