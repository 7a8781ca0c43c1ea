// Package devca is a development certificate authority with an EST (RFC 7030) server: what
// tests, the demo and a bank's staging setup enroll against instead of the National Bank's CA.
// It keeps everything in one directory: the root, the EST server's TLS certificate, the users
// (one initial key each) and an issuance log. It is not a production CA: no revocation, no
// HSM, no policy beyond binding a certificate to the user whose initial key asked for it.
//
// Files (constants below), written atomically (temporary file, fsync, link or rename):
//
//	ca.pem, ca.key           root certificate (0644) and key (0600)
//	server.pem, server.key   TLS server certificate for 127.0.0.1, ::1, localhost
//	users.json               the users and the fingerprints of their initial keys (0600)
//	issued.jsonl             one JSON line per issued certificate (0600, append-only)
package devca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// File names inside a CA directory.
const (
	RootCertFile   = "ca.pem"
	RootKeyFile    = "ca.key"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server.key"
	UsersFile      = "users.json"
	IssuedLogFile  = "issued.jsonl"
)

// InitialKeyOU marks initial-key certificates (OU in their subject), so the server can tell a
// replaced initial key ("not registered any more") from a certificate issued by enrollment.
const InitialKeyOU = "initial key"

var (
	// ErrExists: Init was pointed at a directory that already holds a CA. Nothing in it was
	// touched.
	ErrExists = errors.New("the directory already holds a development CA")
	// ErrNoCA: Open was pointed at a directory without a CA.
	ErrNoCA = errors.New("the directory holds no development CA")
)

// Validity periods of what Init and AddUser make.
const (
	rootValidity       = 10 * 365 * 24 * time.Hour
	serverValidity     = 5 * 365 * 24 * time.Hour
	initialKeyValidity = 365 * 24 * time.Hour
)

// CA is a development CA opened from its directory. Methods are safe for concurrent use
// within one process; two processes adding users at the same moment may lose one update
// (the users file is rewritten whole), which a development CA accepts.
type CA struct {
	dir     string
	root    *x509.Certificate
	rootKey crypto.Signer
	server  tls.Certificate
	mu      sync.Mutex // users file and issuance log
}

// User is one entry of the users file.
type User struct {
	ID string `json:"id"`
	// CertSHA256 is the SHA-256 of the initial key's certificate (DER): only that exact
	// certificate authenticates the user.
	CertSHA256 string    `json:"cert_sha256"`
	Serial     string    `json:"serial"`
	Added      time.Time `json:"added"`
	NotAfter   time.Time `json:"not_after"`
}

type usersFile struct {
	Version int    `json:"version"`
	Users   []User `json:"users"`
}

// Init makes a new CA in dir (created if missing). The root key is ECDSA P-256: the CA key's
// type is independent of the keys it certifies (RSA token keys are certified as well), and
// P-256 signs in microseconds, keeping tests and the enrollment benchmark fast, while OpenSSL,
// curl and Go's TLS all accept it. A directory that already holds any CA file is refused with
// ErrExists, and files are created with link(2), which never replaces an existing file: Init
// cannot destroy a CA, even one created concurrently.
func Init(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devca init: %w", err)
	}
	for _, f := range []string{RootCertFile, RootKeyFile, ServerCertFile, ServerKeyFile, UsersFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("devca init %s: %w (%s exists): it already holds a CA (serve it with tokenrun ca serve --dir %s), or choose an empty directory", dir, ErrExists, f, dir)
		}
	}
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca init: root key: %w", err)
	}
	suffix, err := randomHex(4)
	if err != nil {
		return nil, fmt.Errorf("devca init: %w", err)
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject: pkix.Name{
			CommonName:   "tokenrun development CA " + suffix,
			Organization: []string{"tokenrun (not for production)"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(rootValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("devca init: root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, fmt.Errorf("devca init: %w", err)
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca init: server key: %w", err)
	}
	serverTmpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject:      pkix.Name{CommonName: "tokenrun development EST server"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTmpl, root, serverKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("devca init: server certificate: %w", err)
	}
	rootKeyPEM, err := keyPEM(rootKey)
	if err != nil {
		return nil, fmt.Errorf("devca init: %w", err)
	}
	serverKeyPEM, err := keyPEM(serverKey)
	if err != nil {
		return nil, fmt.Errorf("devca init: %w", err)
	}
	users, _ := json.MarshalIndent(usersFile{Version: 1, Users: []User{}}, "", "  ")
	// Keys first: a crash midway leaves a key without its certificate, which Open reports
	// and Init refuses to overwrite, rather than a certificate whose key is lost.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{RootKeyFile, rootKeyPEM, 0o600},
		{RootCertFile, certPEM(rootDER), 0o644},
		{ServerKeyFile, serverKeyPEM, 0o600},
		{ServerCertFile, certPEM(serverDER), 0o644},
		{UsersFile, append(users, '\n'), 0o600},
	} {
		if err := atomicfile.WriteNew(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("devca init %s: %w (%s appeared meanwhile)", dir, ErrExists, f.name)
			}
			return nil, fmt.Errorf("devca init: %w", err)
		}
	}
	return Open(dir)
}

// Open opens the CA in dir.
func Open(dir string) (*CA, error) {
	read := func(name string) ([]byte, error) {
		b, err := readfile.Read(filepath.Join(dir, name), readfile.Record)
		if errors.Is(err, fs.ErrNotExist) && name == RootCertFile {
			return nil, fmt.Errorf("devca open %s: %w (no %s): make one first with tokenrun ca init %s", dir, ErrNoCA, RootCertFile, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("devca open: %w", err)
		}
		return b, nil
	}
	rootPEM, err := read(RootCertFile)
	if err != nil {
		return nil, err
	}
	root, err := parseCertPEM(rootPEM)
	if err != nil {
		return nil, fmt.Errorf("devca open: %s: %w", RootCertFile, err)
	}
	rootKeyPEM, err := read(RootKeyFile)
	if err != nil {
		return nil, err
	}
	rootKey, err := parseKeyPEM(rootKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("devca open: %s: %w", RootKeyFile, err)
	}
	if !publicKeysEqual(root.PublicKey, rootKey.Public()) {
		return nil, fmt.Errorf("devca open %s: %s is not the key of %s", dir, RootKeyFile, RootCertFile)
	}
	serverPEM, err := read(ServerCertFile)
	if err != nil {
		return nil, err
	}
	serverKeyPEM, err := read(ServerKeyFile)
	if err != nil {
		return nil, err
	}
	server, err := tls.X509KeyPair(serverPEM, serverKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("devca open: server certificate and key: %w", err)
	}
	return &CA{dir: dir, root: root, rootKey: rootKey, server: server}, nil
}

// Dir is the CA's directory.
func (ca *CA) Dir() string { return ca.dir }

// Root is the root certificate: what clients trust.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// RootPool is a pool holding only the root.
func (ca *CA) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

// RootPEM is the root certificate in PEM, as in ca.pem.
func (ca *CA) RootPEM() []byte { return certPEM(ca.root.Raw) }

// TLSConfig is the EST server's TLS configuration. Client certificates are requested but
// verified by the handler, not the handshake, so that a refused certificate gets an HTTP
// answer with a reason (curl shows it) instead of a bare TLS alert. The root is sent as the
// acceptable client-certificate issuer, which Go clients need in order to offer theirs.
func (ca *CA) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.server},
		ClientAuth:   tls.RequestClientCert,
		ClientCAs:    ca.RootPool(),
	}
}

// AddUser issues userID's initial key (an ECDSA P-256 key and a certificate with CN=userID,
// OU="initial key") and writes it to out as a PKCS#12 container protected by pin, readable by
// OpenSSL 3 and Go (AES-256/PBKDF2, SHA-256 MAC). out must not exist. The user is recorded in
// the users file; adding a user again replaces their initial key, as a bank does when the
// client's flash drive is lost: the old container then no longer authenticates.
func (ca *CA) AddUser(userID, pin, out string) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("devca add user: %w", err)
	}
	if pin == "" {
		return errors.New("devca add user: the PIN is empty: the container must be protected")
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("devca add user %s: %s already exists: choose another file or remove it", userID, out)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("devca add user: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject:      pkix.Name{CommonName: userID, OrganizationalUnit: []string{InitialKeyOU}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(initialKeyValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, key.Public(), ca.rootKey)
	if err != nil {
		return fmt.Errorf("devca add user: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("devca add user: %w", err)
	}
	pfx, err := pkcs12.Modern2023.Encode(key, cert, []*x509.Certificate{ca.root}, pin)
	if err != nil {
		return fmt.Errorf("devca add user %s: make the container: %w", userID, err)
	}
	if err := atomicfile.WriteNew(out, pfx, 0o600); err != nil {
		return fmt.Errorf("devca add user %s: %w", userID, err)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	uf, err := ca.readUsers()
	if err != nil {
		return fmt.Errorf("devca add user %s: %w", userID, err)
	}
	uf.Users = slices.DeleteFunc(uf.Users, func(u User) bool { return u.ID == userID })
	uf.Users = append(uf.Users, User{
		ID:         userID,
		CertSHA256: fingerprint(cert),
		Serial:     cert.SerialNumber.Text(16),
		Added:      now.UTC().Truncate(time.Second),
		NotAfter:   cert.NotAfter.UTC(),
	})
	data, err := json.MarshalIndent(uf, "", "  ")
	if err != nil {
		return fmt.Errorf("devca add user: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(ca.dir, UsersFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("devca add user %s: record the user: %w", userID, err)
	}
	return nil
}

// Users lists the registered users.
func (ca *CA) Users() ([]User, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	uf, err := ca.readUsers()
	return uf.Users, err
}

// userByCert finds the user whose initial key is cert. The file is read each time so that a
// user added by another process (the CLI) while the server runs is known at once.
func (ca *CA) userByCert(cert *x509.Certificate) (User, bool, error) {
	users, err := ca.Users()
	if err != nil {
		return User{}, false, err
	}
	fp := fingerprint(cert)
	for _, u := range users {
		if u.CertSHA256 == fp {
			return u, true, nil
		}
	}
	return User{}, false, nil
}

func (ca *CA) readUsers() (usersFile, error) {
	var uf usersFile
	b, err := readfile.Read(filepath.Join(ca.dir, UsersFile), readfile.Record)
	if errors.Is(err, fs.ErrNotExist) {
		return usersFile{Version: 1}, nil
	}
	if err != nil {
		return uf, err
	}
	if err := json.Unmarshal(b, &uf); err != nil {
		return uf, fmt.Errorf("%s is damaged: %w", UsersFile, err)
	}
	return uf, nil
}

func checkUserID(id string) error {
	switch {
	case id == "":
		return errors.New("the user ID is empty")
	case len(id) > 64:
		return fmt.Errorf("the user ID is %d bytes long; a CN holds at most 64", len(id))
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("the user ID %q has leading or trailing spaces", id)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("the user ID %q has unprintable characters", id)
		}
	}
	return nil
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// mustSerial is a random positive 127-bit serial (RFC 5280: at most 20 octets, unpredictable).
func mustSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	b[0] &= 0x7f
	b[0] |= 0x40 // no leading zero octets: every serial has the same length
	return new(big.Int).SetBytes(b)
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	if eq, ok := a.(interface{ Equal(crypto.PublicKey) bool }); ok {
		return eq.Equal(b)
	}
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}
