//go:build !unix && !windows

package pkcs11

// dlopenError has no loader to ask on this platform.
func dlopenError(string) (string, bool) { return "", true }
