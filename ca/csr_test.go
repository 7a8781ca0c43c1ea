package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCSRSignatureAlgorithmFromKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	cases := []struct {
		name string
		key  crypto.Signer
		want x509.SignatureAlgorithm
	}{
		{"rsa", rsaKey, x509.SHA256WithRSA},
		{"p-256", newECKey(t), x509.ECDSAWithSHA256},
		{"p-384", p384, x509.ECDSAWithSHA384},
		{"ed25519", edKey, x509.PureEd25519},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			der, err := CSR(tokenSigner{tc.key}, CSRRequest{Subject: pkix.Name{CommonName: testUser}})
			require.NoError(t, err)
			csr, err := x509.ParseCertificateRequest(der)
			require.NoError(t, err)
			assert.Equal(t, tc.want, csr.SignatureAlgorithm)
			assert.NoError(t, csr.CheckSignature())
			assert.True(t, samePublicKey(csr.PublicKey, tc.key.Public()))
		})
	}
}

func TestParseSubjectAndExtensions(t *testing.T) {
	subject, err := ParseSubject(map[string]string{
		"CN":           testUser,
		"c":            "kz",
		"O":            "ТОО «Пример»",
		"OU":           "BIN123456789012",
		"SERIALNUMBER": "IIN123456789012",
		"SN":           "Иванов",
		"G":            "Иван",
		"emailAddress": "ivan@example.kz",
	})
	require.NoError(t, err)
	der, err := CSR(newECKey(t), CSRRequest{
		Subject:        subject,
		EmailAddresses: []string{"ivan@example.kz"},
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
	})
	require.NoError(t, err)
	csr, err := x509.ParseCertificateRequest(der)
	require.NoError(t, err)
	assert.Equal(t, testUser, csr.Subject.CommonName)
	assert.Equal(t, []string{"KZ"}, csr.Subject.Country)
	assert.Equal(t, "IIN123456789012", csr.Subject.SerialNumber)
	assert.Equal(t, []string{"ivan@example.kz"}, csr.EmailAddresses)
	// emailAddress is an IA5String (tag 22), as RFC 5280 wants.
	assert.True(t, bytes.Contains(csr.RawSubject, append([]byte{0x16, byte(len("ivan@example.kz"))}, "ivan@example.kz"...)))

	// The requested usages come out of a certificate made from the request's extensions
	// exactly as asked: the hand-made encoding matches crypto/x509's.
	pki := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	cert := issue(t, &x509.Certificate{Subject: csr.Subject, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: csr.Extensions}, pki.inter, csr.PublicKey, pki.interKey)
	assert.Equal(t, x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment, cert.KeyUsage)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}, cert.ExtKeyUsage)

	// And OpenSSL reads it all.
	openssl := requireTool(t, "openssl")
	path := filepath.Join(t.TempDir(), "req.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600))
	out, err := exec.Command(openssl, "req", "-in", path, "-noout", "-verify", "-text", "-nameopt", "utf8").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{"verify OK", "CN=" + testUser, "serialNumber=IIN123456789012", "emailAddress=ivan@example.kz",
		"SN=Иванов", "GN=Иван", "O=ТОО «Пример»", "Digital Signature, Non Repudiation", "TLS Web Client Authentication, E-mail Protection"} {
		assert.Contains(t, string(out), want)
	}
}

func TestKeyUsageEncodingMatchesCryptoX509(t *testing.T) {
	pki := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	for _, ku := range []x509.KeyUsage{
		x509.KeyUsageDigitalSignature,
		x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		x509.KeyUsageDecipherOnly,
		x509.KeyUsageKeyAgreement | x509.KeyUsageEncipherOnly | x509.KeyUsageDecipherOnly,
	} {
		cert := issue(t, &x509.Certificate{NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: ku,
			SerialNumber: big.NewInt(1)}, pki.inter, newECKey(t).Public(), pki.interKey)
		var want pkix.Extension
		for _, e := range cert.Extensions {
			if e.Id.Equal(oidKeyUsage) {
				want = e
			}
		}
		assert.Equal(t, want, keyUsageExtension(ku), "key usage %b", ku)
	}
}

// badSigner returns signatures that do not verify, as a token driver that returns raw r||s
// ECDSA signatures would.
type badSigner struct{ crypto.Signer }

func (b badSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return bytes.Repeat([]byte{1}, 64), nil
}

type oddKey struct{}

type oddSigner struct{}

func (oddSigner) Public() crypto.PublicKey                                  { return oddKey{} }
func (oddSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

func TestCSRErrors(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	name := pkix.Name{CommonName: testUser}
	cases := []struct {
		name   string
		signer crypto.Signer
		req    CSRRequest
		want   string
	}{
		{"no signer", nil, CSRRequest{Subject: name}, "no signer"},
		{"bad signatures", badSigner{newECKey(t)}, CSRRequest{Subject: name}, "does not verify"},
		{"unknown key type", oddSigner{}, CSRRequest{Subject: name}, "key type ca.oddKey is not supported"},
		{"P-224", p224, CSRRequest{Subject: name}, "curve P-224 is not supported"},
		{"nobody", newECKey(t), CSRRequest{}, "names no one"},
		{"extension twice", newECKey(t), CSRRequest{Subject: name, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtraExtensions: []pkix.Extension{{Id: oidKeyUsage, Value: []byte{3, 1, 0}}}}, "extension 2.5.29.15 is given twice"},
		{"odd ext key usage", newECKey(t), CSRRequest{Subject: name, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageNetscapeServerGatedCrypto}},
			"put its OID in ExtraExtensions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CSR(tc.signer, tc.req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseSubjectErrors(t *testing.T) {
	cases := []struct {
		fields map[string]string
		want   string
	}{
		{map[string]string{"CN": ""}, "CN is empty"},
		{map[string]string{"C": "KAZ"}, "two-letter country code"},
		{map[string]string{"CN": "a", "commonName": "b"}, "name the same attribute"},
		{map[string]string{"XYZ": "a"}, "unknown attribute"},
		{map[string]string{"emailAddress": "иван@example.kz"}, "is not ASCII"},
	}
	for _, tc := range cases {
		_, err := ParseSubject(tc.fields)
		require.Error(t, err, tc.fields)
		assert.Contains(t, err.Error(), tc.want)
	}
	n, err := ParseSubject(map[string]string{"2.5.4.97": "VATKZ-123", "UID": testUser})
	require.NoError(t, err)
	require.Len(t, n.ExtraNames, 2)
	assert.Equal(t, "0.9.2342.19200300.100.1.1", n.ExtraNames[0].Type.String(), "known names first, then OIDs")
	assert.Equal(t, "2.5.4.97", n.ExtraNames[1].Type.String())
}
