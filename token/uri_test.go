package token

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want URI
		err  string
	}{
		{name: "empty selects all", in: "", want: URI{}},
		{name: "token and serial", in: "pkcs11:token=KAZTOKEN;serial=0123abcd", want: URI{Token: "KAZTOKEN", Serial: "0123abcd"}},
		{name: "percent-encoded label", in: "pkcs11:token=My%20Token%3B1", want: URI{Token: "My Token;1"}},
		{name: "object, type and id", in: "pkcs11:object=profile;type=private;id=%01%AB", want: URI{Object: "profile", Type: "private", ID: []byte{0x01, 0xab}}},
		{name: "manufacturer and model", in: "pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2", want: URI{Manufacturer: "SoftHSM project", Model: "SoftHSM v2"}},
		{name: "query", in: "pkcs11:token=A?pin-source=file:/run/pin&module-path=/usr/lib/m.so", want: URI{Token: "A", PINSource: "file:/run/pin", ModulePath: "/usr/lib/m.so"}},
		{name: "vendor attribute kept", in: "pkcs11:x-region=almaty", want: URI{Vendor: map[string]string{"x-region": "almaty"}}},
		{name: "no scheme", in: "token=A", err: `must start with "pkcs11:"`},
		{name: "unknown attribute", in: "pkcs11:tokn=A", err: `unknown attribute "tokn"`},
		{name: "slot ids refused", in: "pkcs11:slot-id=3", err: `unknown attribute "slot-id"`},
		{name: "missing value", in: "pkcs11:token", err: "has no value"},
		{name: "bad escape", in: "pkcs11:token=%zz", err: "bad percent-encoding"},
		{name: "repeated", in: "pkcs11:token=A;token=B", err: "given twice"},
		{name: "bad type", in: "pkcs11:type=secret", err: "want private, public or cert"},
		{name: "pin-value refused", in: "pkcs11:token=A?pin-value=1234", err: "pin-value is not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURI(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.NotContains(t, err.Error(), "1234", "a PIN must never reach an error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, *got)
		})
	}
}

func TestURIRoundTrip(t *testing.T) {
	in := &URI{Token: "Bank; token", Serial: "00ff", Object: "my key", Type: "cert", ID: []byte{0, 1, 0xfe}, PINSource: "file:/tmp/p in"}
	back, err := ParseURI(in.String())
	require.NoError(t, err)
	assert.Equal(t, in, back)
	assert.Equal(t, "pkcs11:token=Bank%3B%20token;serial=00ff;object=my%20key;type=cert;id=%00%01%FE?pin-source=file:/tmp/p%20in", in.String())
}

func TestMatchToken(t *testing.T) {
	info := Info{Label: "KAZTOKEN", Serial: "42", Manufacturer: "Vendor", Model: "KT"}
	for _, tt := range []struct {
		uri  string
		want bool
	}{
		{"", true},
		{"pkcs11:token=KAZTOKEN", true},
		{"pkcs11:token=KAZTOKEN;serial=42;manufacturer=Vendor;model=KT", true},
		{"pkcs11:serial=43", false},
		{"pkcs11:token=kaztoken", false},
		{"pkcs11:object=k", true},
	} {
		u, err := ParseURI(tt.uri)
		require.NoError(t, err)
		assert.Equal(t, tt.want, u.MatchToken(info), tt.uri)
	}
}
