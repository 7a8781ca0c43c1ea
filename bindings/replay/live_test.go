package replay

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoose(t *testing.T) {
	const certA = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	const certB = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
	const keyB = "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n"
	tests := []struct {
		name      string
		rec, got  any
		wantMatch bool
	}{
		{"secret matches anything", "<secret>", 1.0, true},
		{"binary matches binary", map[string]any{"$bytes": "AAE="}, map[string]any{"$bytes": "AgM="}, true},
		{"binary does not match text", map[string]any{"$bytes": "AAE="}, "x", false},
		{"PEM of the same type", certA, certB, true},
		{"PEM of another type", certA, keyB, false},
		{"PEM vs text", certA, "x", false},
		{"error by code", []any{nil, map[string]any{"code": "PIN_INCORRECT", "message": "CKR_PIN_INCORRECT in module A"}},
			[]any{nil, map[string]any{"code": "PIN_INCORRECT", "message": "other words", "retries_left": 9.0}}, true},
		{"error with tries left", map[string]any{"code": "PIN_INCORRECT", "retries_left": 2.0}, map[string]any{"code": "PIN_INCORRECT", "retries_left": 9.0}, false},
		{"error unknown tries", map[string]any{"code": "PIN_INCORRECT", "retries_left": -1.0}, map[string]any{"code": "PIN_INCORRECT", "retries_left": 9.0}, true},
		{"another error", map[string]any{"code": "PIN_INCORRECT"}, map[string]any{"code": "PIN_LOCKED"}, false},
		{"the reproduction says more", map[string]any{"user_pin_locked": false}, map[string]any{"user_pin_locked": false, "user_pin_retries_left": 10.0}, true},
		{"the reproduction says less", map[string]any{"a": 1.0, "b": 2.0}, map[string]any{"a": 1.0}, false},
		{"a flag differs", map[string]any{"user_pin_final_try": true}, map[string]any{"user_pin_final_try": false}, false},
		{"ok vs refused", []any{true}, []any{nil, map[string]any{"code": "PIN_INCORRECT"}}, false},
		{"plain text", "KAZTOKEN", "KAZTOKEN", true},
		{"plain text differs", "KAZTOKEN", "OTHER", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.wantMatch, Loose(tt.rec, tt.got)) })
	}
}

// A stand-in keeps what a procedure reads of the client's certificate and carries the
// reproduction's key; certificates of unmapped keys (a CA's) are left alone.
func TestStandIn(t *testing.T) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "National CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3}}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "qq111111_qwertyui", Country: []string{"KZ"}},
		NotBefore: time.Now().Add(-time.Minute).Truncate(time.Second), NotAfter: time.Now().AddDate(1, 0, 0).Truncate(time.Second),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, clientKey.Public(), caKey)
	require.NoError(t, err)
	client, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	s, err := NewStandIn()
	require.NoError(t, err)
	_, ok := s.Replace(string(der))
	assert.False(t, ok, "no key mapped yet")

	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	s.Map(client.RawSubjectPublicKeyInfo, newKey.Public())

	for _, enc := range []string{"der", "pem"} {
		t.Run(enc, func(t *testing.T) {
			in := string(der)
			if enc == "pem" {
				in = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
			}
			out, ok := s.Replace(in)
			require.True(t, ok)
			raw := []byte(out)
			if enc == "pem" {
				b, _ := pem.Decode(raw)
				require.NotNil(t, b, "PEM in, PEM out")
				raw = b.Bytes
			}
			got, err := x509.ParseCertificate(raw)
			require.NoError(t, err)
			assert.Equal(t, client.Subject.String(), got.Subject.String())
			assert.Equal(t, client.Issuer.String(), got.Issuer.String())
			assert.Equal(t, client.SerialNumber, got.SerialNumber)
			assert.Equal(t, client.NotBefore, got.NotBefore)
			assert.Equal(t, client.NotAfter, got.NotAfter)
			assert.Equal(t, client.ExtKeyUsage, got.ExtKeyUsage)
			assert.True(t, got.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(newKey.Public()))
			assert.Error(t, got.CheckSignatureFrom(ca), "signed by the throwaway issuer, not the CA")
		})
	}
	again, _ := s.Replace(string(der))
	first, _ := s.Replace(string(der))
	assert.Equal(t, first, again, "the same stand-in every time")

	_, ok = s.Replace(string(caDER))
	assert.False(t, ok, "the CA's certificate is given back as it is")
	_, ok = s.Replace("not a certificate")
	assert.False(t, ok)
}
