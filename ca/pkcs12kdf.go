package ca

import (
	"encoding/asn1"
	"fmt"
	"strings"
)

// KDF work bounds. A PKCS#12 container names its own key-derivation work (MAC and PBKDF2
// iteration counts) and go-pkcs12 does all of it, in one call that no deadline interrupts:
// 50 million iterations took 26 s under --timeout 5s, 2^31-1 hangs. Real containers use
// 2,000 (Windows), 2,048 (OpenSSL's default) to 600,000 (OWASP's 2023 advice for
// PBKDF2-SHA256); one derivation here costs about 0.5 µs an iteration.
const (
	// MaxKDFIterations bounds one derivation: ten times the most a real container uses,
	// about half a second.
	MaxKDFIterations = 1_000_000
	// MaxKDFIterationsTotal bounds all the derivations of one container together (its MAC,
	// its encrypted certificates, its shrouded key): about a second and a half.
	MaxKDFIterationsTotal = 3 * MaxKDFIterations
)

var (
	oidPBKDF2Alg = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	// pkcs-12PbeIds: 1.2.840.113549.1.12.1.1 to .6 (RC4, 3DES, RC2 with SHA-1).
	oidPKCS12PBEArc = "1.2.840.113549.1.12.1."
)

// kdfUse is one key derivation a container asks for.
type kdfUse struct {
	what       string // "MAC", "PBKDF2", "PKCS#12 PBE"
	iterations int64  // -1: not a positive number that fits
}

// checkIterations refuses a container whose key derivations would cost more than the
// bounds, before go-pkcs12 starts any of them. It reads the MacData's iteration count and
// every PBKDF2 and PKCS#12 PBE parameter block it can see (those of the unencrypted
// structure: the MAC, the encrypted safes' algorithms, shrouded key bags in plain safes).
// Parameters hidden inside an encrypted safe are reached only after the MAC was verified
// with the person's password, so a container made by someone without it never gets there.
func checkIterations(data []byte, top element) error {
	var uses []kdfUse
	kids, err := top.children(0)
	if err != nil {
		return nil // inspectContainer has already said what is wrong with the shape
	}
	if len(kids) >= 3 && kids[2].isSequence() {
		if mac, err := kids[2].children(1); err == nil {
			n := int64(1) // iterations INTEGER DEFAULT 1
			if len(mac) >= 3 && mac[2].is(0, false, 2) {
				n = intValue(mac[2].content)
			}
			uses = append(uses, kdfUse{"MAC", n})
		}
	}
	walkSequences(data, func(seq []element) {
		if len(seq) < 2 || !seq[1].isSequence() {
			return
		}
		oid, ok := seq[0].oid()
		if !ok {
			return
		}
		var what string
		switch {
		case oid.Equal(oidPBKDF2Alg):
			what = "PBKDF2"
		case strings.HasPrefix(oid.String(), oidPKCS12PBEArc):
			what = "PKCS#12 PBE"
		default:
			return
		}
		params, err := seq[1].children(2)
		if err != nil {
			return
		}
		// PBKDF2-params and pkcs-12PbeParams both start: salt, iterationCount INTEGER.
		if len(params) >= 2 && params[1].is(0, false, 2) {
			uses = append(uses, kdfUse{what, intValue(params[1].content)})
		}
	})
	var total int64
	for _, u := range uses {
		if u.iterations <= 0 {
			// No work (PBMAC1 containers set the MacData's count to 0 or 1 and ignore it);
			// go-pkcs12 judges the rest.
			continue
		}
		if u.iterations > MaxKDFIterations {
			return &ContainerError{Kind: ErrUnsupportedContainer,
				Detail: fmt.Sprintf("its %s asks for %d iterations, more than the %d this program does for one key derivation (real containers use 2,000 to 600,000): it would take minutes to open; ask the bank for a new container",
					u.what, u.iterations, MaxKDFIterations)}
		}
		total += u.iterations
	}
	if total > MaxKDFIterationsTotal {
		return &ContainerError{Kind: ErrUnsupportedContainer,
			Detail: fmt.Sprintf("its key derivations ask for %d iterations in all, more than the %d this program does for one container: ask the bank for a new container",
				total, MaxKDFIterationsTotal)}
	}
	return nil
}

// intValue decodes a DER INTEGER's content as an int64: -1 when it is negative or empty,
// 2^62 when it is larger.
func intValue(b []byte) int64 {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return -1
	}
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > 7 {
		return 1 << 62
	}
	var v int64
	for _, c := range b {
		v = v<<8 | int64(c)
	}
	return v
}

// walkSequences calls visit with the children of every SEQUENCE in b, looking inside
// OCTET STRINGs that hold BER as walkOIDs does, within the same budget.
func walkSequences(b []byte, visit func([]element)) {
	budget := maxASN1Elements
	var walk func(b []byte, depth int)
	walk = func(b []byte, depth int) {
		for len(b) > 0 {
			budget--
			if budget < 0 || depth > maxASN1Depth {
				return
			}
			e, err := parseElement(b, depth)
			if err != nil {
				return
			}
			b = b[e.size:]
			switch {
			case e.constructed:
				if e.isSequence() {
					if kids, err := e.children(depth); err == nil {
						visit(kids)
					}
				}
				walk(e.content, depth+1)
			case e.is(0, false, 4) && len(e.content) > 1 && e.content[0]&0x20 != 0:
				if inner, err := parseElement(e.content, depth+1); err == nil && inner.size == len(e.content) {
					walk(e.content, depth+1)
				}
			}
		}
	}
	walk(b, 0)
}
