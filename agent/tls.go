package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// The agent's own certificate authority and the server certificate it issues for 127.0.0.1
// and localhost, made once under TOKENRUN_HOME/agent/tls, so that pages can reach it over
// wss:// as they reach NCALayer. The CA is limited by name constraints to localhost,
// 127.0.0.1 and ::1: installed in a trust store, it can vouch for nothing else even if its key
// were taken (verifiers that honour constraints on roots: NSS, Go, OpenSSL).
const (
	caFile, caKeyFile, certFile, keyFile = "ca.pem", "ca-key.pem", "cert.pem", "key.pem"
	caValidity                           = 10 * 365 * 24 * time.Hour
	// leafValidity stays under the 398 days browsers accept for a server certificate.
	leafValidity = 397 * 24 * time.Hour
	// renewBefore: a server certificate this close to its end is issued again at start.
	renewBefore = 30 * 24 * time.Hour
)

// TLSFiles are the agent's certificate files in one folder.
type TLSFiles struct{ Dir string }

// TLSDir is the folder of the agent's certificates under the data directory.
func TLSDir(home string) TLSFiles { return TLSFiles{Dir: filepath.Join(home, "agent", "tls")} }

// CAPath is the CA certificate (PEM), what install-cert adds to trust stores.
func (t TLSFiles) CAPath() string { return filepath.Join(t.Dir, caFile) }

// Ensure makes the CA when there is none and a server certificate when there is none or
// it is about to end, and returns the server's TLS configuration; made lists what it wrote.
func (t TLSFiles) Ensure(now time.Time) (cfg *tls.Config, made []string, err error) {
	if err := os.MkdirAll(t.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("agent TLS: %w", err)
	}
	ca, caKey, err := t.loadPair(caFile, caKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, caKey, err = t.makeCA(now); err == nil {
			made = append(made, t.CAPath())
		}
	}
	if err != nil {
		return nil, made, err
	}
	leaf, leafKey, err := t.loadPair(certFile, keyFile)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (now.Add(renewBefore).After(leaf.NotAfter) || leaf.CheckSignatureFrom(ca) != nil)) {
		if leaf, leafKey, err = t.makeLeaf(ca, caKey, now); err == nil {
			made = append(made, filepath.Join(t.Dir, certFile))
		}
	}
	if err != nil {
		return nil, made, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: leafKey, Leaf: leaf}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, made, nil
}

// CA is the CA certificate, for install-cert; fs.ErrNotExist before the agent first ran with
// --tls auto.
func (t TLSFiles) CA() (*x509.Certificate, error) {
	b, err := readfile.Read(t.CAPath(), readfile.Roots)
	if err != nil {
		return nil, err
	}
	return parsePEMCert(b, t.CAPath())
}

// Nickname is the name the CA is stored under in trust stores: the same for one CA, another
// for another user's (the fingerprint's start tells them apart).
func Nickname(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.Raw)
	return "tokenrun local agent CA " + hex.EncodeToString(sum[:4])
}

func parsePEMCert(b []byte, name string) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// loadPair reads a certificate and its key; a key others may read is refused (it would let
// them pose as the agent, or as its CA for localhost).
func (t TLSFiles) loadPair(certName, keyName string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(t.Dir, certName), filepath.Join(t.Dir, keyName)
	cb, err := readfile.Read(certPath, readfile.Roots)
	if err != nil {
		return nil, nil, err
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 && os.PathSeparator == '/' {
		return nil, nil, fmt.Errorf("%s can be read by other users (mode %o): chmod 600 it, or remove %s to make new certificates", keyPath, fi.Mode().Perm(), t.Dir)
	}
	kb, err := readfile.Read(keyPath, readfile.Keys)
	if err != nil {
		return nil, nil, err
	}
	cert, err := parsePEMCert(cb, certPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(kb)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not hold the key of %s: remove %s to make new certificates", keyPath, certPath, t.Dir)
	}
	return cert, key, nil
}

func (t TLSFiles) makeCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	who := "this user"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "tokenrun local agent CA (" + who + ")", Organization: []string{"tokenrun"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(caValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{"localhost"},
		PermittedIPRanges:           []*net.IPNet{{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(32, 32)}, {IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)}},
	}
	return t.issue(tmpl, nil, key, key, caFile, caKeyFile)
}

func (t TLSFiles) makeLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1", Organization: []string{"tokenrun"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(leafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	return t.issue(tmpl, ca, key, caKey, certFile, keyFile)
}

// issue signs tmpl (by parent, or itself) and writes the certificate and key; the key first,
// so that a certificate on disk always has its key.
func (t TLSFiles) issue(tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey, certName, keyName string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, nil, fmt.Errorf("agent TLS: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("agent TLS: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("agent TLS: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(t.Dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return nil, nil, fmt.Errorf("agent TLS: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(t.Dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, fmt.Errorf("agent TLS: %w", err)
	}
	return cert, key, nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}
