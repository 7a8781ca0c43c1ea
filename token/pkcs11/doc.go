// Package pkcs11 is the token backend for any PKCS#11 module (SoftHSM2, openCryptoki, OpenSC,
// the bank's KAZTOKEN library), built on github.com/miekg/pkcs11.
//
// A module is initialised once per process and shared by every Provider and Token that uses
// it; the last Close finalises it. Tokens are found by serial, never by slot id: SoftHSM2
// gives a token a new slot id when the library is initialised again.
//
// miekg/pkcs11 is cgo: a build without cgo (CGO_ENABLED=0, as for darwin from a Linux
// machine with no macOS C toolchain) gets nocgo.go instead, whose Open refuses every module
// with ErrLoad saying why, so the rest of tokenrun (software tokens, verify, the CA) still
// builds and works.
package pkcs11

import "errors"

// ErrLoad: the module file could not be loaded or initialised. The message says what to check.
var ErrLoad = errors.New("cannot load PKCS#11 module")
