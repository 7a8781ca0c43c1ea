package ca

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/tokenrun/tokenrun/internal/readfile"
)

// Errors of LoadPKCS12, for errors.Is. The *ContainerError that carries them says which file
// and what exactly; the password never appears in any of them.
var (
	// ErrWrongPassword: the container is fine but the password does not open it.
	ErrWrongPassword = errors.New("the password does not open the key container")
	// ErrDamagedContainer: empty, truncated, or not a PKCS#12 container at all.
	ErrDamagedContainer = errors.New("the key container is damaged or is not a PKCS#12 (.pfx) file")
	// ErrUnsupportedContainer: a well-formed container using algorithms this build lacks
	// (GOST above all).
	ErrUnsupportedContainer = errors.New("the key container uses algorithms this build cannot open")
)

// maxContainerSize bounds what LoadPKCS12 reads: initial-key containers are a few KiB, and a
// wrongly chosen file (a video on the same flash drive) must not be read whole.
const maxContainerSize = readfile.PKCS12Max

// Identity is a certificate with the key that proves it. From LoadPKCS12 it is the bank's
// initial key (a software key, used once to authenticate the first enrollment); for Reenroll
// it is the token's certificate with the token key's crypto.Signer.
type Identity struct {
	Certificate *x509.Certificate
	// Chain holds the other certificates of the container (issuers), leaf excluded.
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// TLSCertificate is the identity as a TLS client certificate.
func (id *Identity) TLSCertificate() tls.Certificate {
	chain := [][]byte{id.Certificate.Raw}
	for _, c := range id.Chain {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: id.Key, Leaf: id.Certificate}
}

// ContainerError explains why a key container could not be opened. Kind is one of
// ErrWrongPassword, ErrDamagedContainer, ErrUnsupportedContainer.
type ContainerError struct {
	Path   string // empty when loaded from bytes
	Kind   error
	Detail string // what exactly, and what to do
	// OID is the algorithm that made the container unsupported, when one was identified.
	OID string
	Err error // the underlying library error, if any
}

func (e *ContainerError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(" (")
		b.WriteString(e.Err.Error())
		b.WriteString(")")
	}
	return b.String()
}

func (e *ContainerError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

const (
	hintWrongPassword = "check the OTP PIN (11 characters: upper-case Latin letters and digits; " +
		"1/I and 0/O are easily confused) and that this is the right container file; " +
		"if all of that is right, the file may be damaged: copy it again from the bank's flash drive"
	hintNewCopy = "copy the file again from the bank's flash drive, or ask the bank for a new copy"
)

// LoadPKCS12 opens a PKCS#12 key container (Key.pfx) with its password (the OTP PIN).
func LoadPKCS12(path, password string) (*Identity, error) {
	data, err := readfile.Read(path, readfile.PKCS12)
	var re *readfile.Error
	if errors.As(err, &re) {
		return nil, &ContainerError{Path: path, Kind: ErrDamagedContainer,
			Detail: "it " + strings.TrimPrefix(re.Error(), re.Kind.Name+" "+path+" ") + ": check that the right file was chosen"}
	}
	if err != nil {
		return nil, fmt.Errorf("open key container: %w", err)
	}
	id, err := LoadPKCS12Bytes(data, password)
	var ce *ContainerError
	if errors.As(err, &ce) {
		ce.Path = path
	}
	return id, err
}

// LoadPKCS12Bytes is LoadPKCS12 for a container already in memory.
func LoadPKCS12Bytes(data []byte, password string) (*Identity, error) {
	if err := inspectContainer(data); err != nil {
		return nil, err
	}
	key, cert, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, decodeError(err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, &ContainerError{Kind: ErrUnsupportedContainer,
			Detail: fmt.Sprintf("its key (%T) cannot sign", key)}
	}
	// go-pkcs12 takes the first certificate as the leaf; containers made by other tools may
	// list the issuer first, so the leaf is the certificate that matches the key.
	all := append([]*x509.Certificate{cert}, chain...)
	leaf := -1
	for i, c := range all {
		if samePublicKey(c.PublicKey, signer.Public()) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, &ContainerError{Kind: ErrDamagedContainer,
			Detail: "no certificate in it matches its key; " + hintNewCopy}
	}
	id := &Identity{Certificate: all[leaf], Key: signer}
	for i, c := range all {
		if i != leaf {
			id.Chain = append(id.Chain, c)
		}
	}
	return id, nil
}

var (
	oidPKCS7Data       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7SignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// inspectContainer checks the PFX shape (RFC 7292: SEQUENCE { version INTEGER, authSafe
// ContentInfo, macData MacData OPTIONAL }) and looks for GOST algorithms, so that damaged and
// GOST containers get a precise message whatever go-pkcs12 would have said.
func inspectContainer(data []byte) error {
	damaged := func(detail string) error {
		return &ContainerError{Kind: ErrDamagedContainer, Detail: detail}
	}
	switch {
	case len(data) == 0:
		return damaged("the file is empty; " + hintNewCopy)
	case len(data) > maxContainerSize:
		return damaged("the file is larger than 1 MiB, far too large for a key container: check that the right file was chosen")
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")):
		return damaged("this is a PEM text file, not a PKCS#12 (.pfx) container: choose the .pfx file")
	}
	notPFX := "not a PKCS#12 (.pfx) container: check that the right file was chosen"
	if data[0] != 0x30 { // every PFX, and nothing else worth a guess, starts with a SEQUENCE
		return damaged(notPFX)
	}
	top, err := parseElement(data, 0)
	if errors.Is(err, errTruncated) {
		return damaged(fmt.Sprintf("the file is truncated (%d bytes, at least %d missing); %s",
			len(data), top.missing, hintNewCopy))
	}
	if err != nil || !top.isSequence() {
		return damaged(notPFX)
	}
	if top.size != len(data) {
		return damaged(fmt.Sprintf("%d unexpected bytes follow the container; %s", len(data)-top.size, hintNewCopy))
	}
	kids, err := top.children(0)
	if errors.Is(err, errTruncated) {
		return damaged("the container's structure is cut short; " + hintNewCopy)
	}
	shapeOK := err == nil && len(kids) >= 2 && kids[0].is(0, false, 2) && kids[1].isSequence()
	var contentType asn1.ObjectIdentifier
	if shapeOK {
		if ci, err := kids[1].children(1); err == nil && len(ci) > 0 {
			contentType, _ = ci[0].oid()
		}
		shapeOK = contentType != nil
	}
	if !shapeOK {
		if _, err := x509.ParseCertificate(data); err == nil {
			return damaged("this file holds only a certificate, not its key: choose the .pfx container")
		}
		return damaged(notPFX)
	}

	// The MAC algorithm is named first when it is the GOST part: it is what go-pkcs12 meets
	// first, and what a support engineer will be told to look for.
	var found string
	if len(kids) >= 3 {
		if mac, err := kids[2].children(1); err == nil && len(mac) > 0 && mac[0].isSequence() {
			if di, err := mac[0].children(2); err == nil && len(di) > 0 && di[0].isSequence() {
				if alg, err := di[0].children(3); err == nil && len(alg) > 0 {
					if oid, ok := alg[0].oid(); ok {
						if _, gost := gostName(oid.String()); gost {
							found = oid.String()
						}
					}
				}
			}
		}
	}
	if found == "" {
		walkOIDs(data, func(oid asn1.ObjectIdentifier) bool {
			if _, gost := gostName(oid.String()); gost {
				found = oid.String()
				return false
			}
			return true
		})
	}
	if found != "" {
		return gostError(found)
	}
	if contentType.Equal(oidPKCS7SignedData) {
		return &ContainerError{Kind: ErrUnsupportedContainer,
			Detail: "it is protected by a public-key signature instead of a password (PKCS#12 public-key integrity mode)"}
	}
	if !contentType.Equal(oidPKCS7Data) {
		return &ContainerError{Kind: ErrUnsupportedContainer, OID: contentType.String(),
			Detail: "its content type " + contentType.String() + " is not PKCS#7 data"}
	}
	return checkIterations(data, top)
}

func gostError(oid string) error {
	name, _ := gostName(oid)
	return &ContainerError{
		Kind: ErrUnsupportedContainer,
		OID:  oid,
		Detail: fmt.Sprintf("this build cannot open GOST containers; this one uses %s (OID %s): "+
			"use the bank's RSA/ECDSA container (Key.pfx) instead", name, oid),
	}
}

// decodeError maps go-pkcs12's errors onto ours.
func decodeError(err error) error {
	var ni pkcs12.NotImplementedError
	msg := err.Error()
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return &ContainerError{Kind: ErrWrongPassword, Detail: hintWrongPassword}
	case strings.Contains(msg, "cannot be encoded in UCS-2"):
		// The library quotes nothing, but say only what matters: the password itself is wrong.
		return &ContainerError{Kind: ErrWrongPassword,
			Detail: "the password has characters a PKCS#12 password cannot hold; " + hintWrongPassword}
	}
	if oid := oidInText(msg); oid != "" {
		if _, gost := gostName(oid); gost {
			ce := gostError(oid).(*ContainerError)
			ce.Err = err
			return ce
		}
	}
	if errors.As(err, &ni) || strings.Contains(msg, "unknown algorithm") ||
		strings.Contains(msg, "unknown private key type") {
		return &ContainerError{Kind: ErrUnsupportedContainer, OID: oidInText(msg),
			Detail: "ask the bank for a container with an RSA or ECDSA key", Err: err}
	}
	if errors.Is(err, pkcs12.ErrDecryption) {
		return &ContainerError{Kind: ErrDamagedContainer,
			Detail: "its contents do not decrypt although the password is right; " + hintNewCopy, Err: err}
	}
	return &ContainerError{Kind: ErrDamagedContainer, Detail: hintNewCopy, Err: err}
}

// samePublicKey compares two public keys of any of the standard types.
func samePublicKey(a, b crypto.PublicKey) bool {
	if a == nil || b == nil {
		return false
	}
	if eq, ok := a.(interface{ Equal(crypto.PublicKey) bool }); ok {
		return eq.Equal(b)
	}
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}
