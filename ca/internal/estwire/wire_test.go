package estwire

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBodies(t *testing.T) {
	der := append([]byte{0x30, 0x81, 0xc8}, bytes.Repeat([]byte{0xab}, 200)...)
	enc := EncodeBody(der)
	for _, line := range bytes.Split(bytes.TrimSpace(enc), []byte("\n")) {
		assert.LessOrEqual(t, len(line), 64)
	}
	cases := []struct {
		name string
		body []byte
		want []byte
		err  string
	}{
		{"lines", enc, der, ""},
		{"one line, CRLF around", []byte("\r\n" + base64.StdEncoding.EncodeToString(der) + "\r\n"), der, ""},
		{"raw DER", der, der, ""},
		{"empty", []byte(" \n"), nil, "body is empty"},
		{"garbage", []byte("<html>"), nil, "neither base64"},
		{"DER cut short", der[:50], nil, "neither base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBody(tc.body)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCertsOnly(t *testing.T) {
	_, err := EncodeCertsOnly(nil)
	assert.Error(t, err)
	_, err = DecodeCertsOnly([]byte{0x30, 0x00})
	assert.ErrorContains(t, err, "not a PKCS#7 structure")
}

func TestMediaType(t *testing.T) {
	mt, params, err := MediaType("Application/PKCS7-MIME; smime-type=certs-only")
	require.NoError(t, err)
	assert.Equal(t, MediaPKCS7, mt)
	assert.Equal(t, "certs-only", params["smime-type"])
	_, _, err = MediaType("")
	assert.ErrorContains(t, err, "no content type")
	_, _, err = MediaType("a/b; =")
	assert.Error(t, err)
}
