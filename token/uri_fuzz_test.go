package token

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseURI: any text parses or is refused without a panic; what parses prints back as a
// URI that parses to the same selection; no error repeats a pin-value.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"", "pkcs11:", "pkcs11:token=KAZTOKEN;serial=0123abcd",
		"pkcs11:token=My%20Token;object=profile;type=private?pin-source=file:/p&module-path=/usr/lib/softhsm/libsofthsm2.so",
		"pkcs11:id=%01%02%ff;x-vendor=1", "pkcs11:token=a?pin-value=SECRET1234",
		"pkcs11:type=cert;manufacturer=SoftHSM%20project;model=SoftHSM%20v2",
		"pkcs11:token=%", "pkcs11:token=a;token=b", "pkcs11:slot-id=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if _, v, ok := strings.Cut(s, "pin-value="); ok {
				v, _, _ = strings.Cut(v, "&")
				if len(v) >= 4 && strings.Contains(err.Error(), v) && !strings.Contains(strings.SplitN(s, "?", 2)[0], v) {
					t.Fatalf("error %q repeats the pin-value", err)
				}
			}
			return
		}
		back, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(%q) = %+v, whose String %q does not parse: %v", s, u, u.String(), err)
		}
		if back.Token != u.Token || back.Serial != u.Serial || back.Manufacturer != u.Manufacturer ||
			back.Model != u.Model || back.Object != u.Object || back.Type != u.Type ||
			!bytes.Equal(back.ID, u.ID) || back.PINSource != u.PINSource || back.ModulePath != u.ModulePath {
			t.Fatalf("round trip of %q: %+v became %+v", s, u, back)
		}
	})
}
