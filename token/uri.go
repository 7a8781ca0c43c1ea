package token

import (
	"fmt"
	"net/url"
	"strings"
)

// URI is a PKCS#11 URI (RFC 7512). It selects a token by its token-info attributes and,
// optionally, an object on it. Slot ids are deliberately not used to select: they move.
//
//	pkcs11:token=KAZTOKEN;serial=0123456789;object=profile;type=private?pin-source=file:/p
//
// Path attributes: token, manufacturer, serial, model, object, type, id (percent-encoded
// bytes, shown as hex elsewhere). Query attributes: pin-source, module-path. Vendor
// attributes (x-...) are kept; any other attribute is an error.
type URI struct {
	Token        string
	Manufacturer string
	Serial       string
	Model        string
	Object       string
	Type         string // "private", "public", "cert"
	ID           []byte
	PINSource    string
	ModulePath   string
	Vendor       map[string]string
}

// ParseURI parses an RFC 7512 URI. The empty string selects every token.
func ParseURI(s string) (*URI, error) {
	u := &URI{}
	if s == "" {
		return u, nil
	}
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("token URI must start with \"pkcs11:\" (RFC 7512), e.g. pkcs11:token=MyToken")
	}
	path, query, _ := strings.Cut(rest, "?")
	// Errors quote only the path: the query may carry a pin-value, which must not leak.
	shown := "pkcs11:" + path
	if err := u.parseAttrs(path, ";", pathAttr); err != nil {
		return nil, fmt.Errorf("token URI %q: %w", shown, err)
	}
	if err := u.parseAttrs(query, "&", queryAttr); err != nil {
		return nil, fmt.Errorf("token URI %q: %w", shown, err)
	}
	switch u.Type {
	case "", "private", "public", "cert":
	default:
		return nil, fmt.Errorf("token URI %q: type=%s: want private, public or cert", shown, u.Type)
	}
	return u, nil
}

type attrKind int

const (
	pathAttr attrKind = iota
	queryAttr
)

func (u *URI) parseAttrs(s, sep string, kind attrKind) error {
	if s == "" {
		return nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, sep) {
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("attribute %q has no value: write name=value", part)
		}
		val, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("attribute %s: bad percent-encoding: %w", name, err)
		}
		if seen[name] {
			return fmt.Errorf("attribute %s given twice", name)
		}
		seen[name] = true
		var dst *string
		switch {
		case kind == pathAttr && name == "token":
			dst = &u.Token
		case kind == pathAttr && name == "manufacturer":
			dst = &u.Manufacturer
		case kind == pathAttr && name == "serial":
			dst = &u.Serial
		case kind == pathAttr && name == "model":
			dst = &u.Model
		case kind == pathAttr && name == "object":
			dst = &u.Object
		case kind == pathAttr && name == "type":
			dst = &u.Type
		case kind == pathAttr && name == "id":
			u.ID = []byte(val)
			continue
		case kind == queryAttr && name == "pin-source":
			dst = &u.PINSource
		case kind == queryAttr && name == "module-path":
			dst = &u.ModulePath
		case kind == queryAttr && name == "pin-value":
			// Refused on purpose: a PIN in a URI ends up in shell history and process lists.
			return fmt.Errorf("pin-value is not accepted (it would leak the PIN); use pin-source=file:PATH")
		case strings.HasPrefix(name, "x-"):
			if u.Vendor == nil {
				u.Vendor = map[string]string{}
			}
			u.Vendor[name] = val
			continue
		default:
			return fmt.Errorf("unknown attribute %q (known: token, serial, manufacturer, model, object, type, id; query: pin-source, module-path)", name)
		}
		*dst = val
	}
	return nil
}

// MatchToken reports whether info has every token attribute the URI gives.
func (u *URI) MatchToken(info Info) bool {
	return (u.Token == "" || u.Token == info.Label) &&
		(u.Serial == "" || u.Serial == info.Serial) &&
		(u.Manufacturer == "" || u.Manufacturer == info.Manufacturer) &&
		(u.Model == "" || u.Model == info.Model)
}

// HasTokenAttrs reports whether the URI narrows the token at all.
func (u *URI) HasTokenAttrs() bool {
	return u.Token != "" || u.Serial != "" || u.Manufacturer != "" || u.Model != ""
}

// String renders the URI, percent-encoding values.
func (u *URI) String() string {
	var path []string
	add := func(name, v string) {
		if v != "" {
			path = append(path, name+"="+escape(v))
		}
	}
	add("token", u.Token)
	add("manufacturer", u.Manufacturer)
	add("serial", u.Serial)
	add("model", u.Model)
	add("object", u.Object)
	add("type", u.Type)
	if len(u.ID) > 0 {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		path = append(path, "id="+b.String())
	}
	s := "pkcs11:" + strings.Join(path, ";")
	var q []string
	if u.PINSource != "" {
		q = append(q, "pin-source="+escape(u.PINSource))
	}
	if u.ModulePath != "" {
		q = append(q, "module-path="+escape(u.ModulePath))
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// escape percent-encodes everything outside RFC 7512's unreserved set plus ':' and '/'.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			strings.IndexByte("-._~:/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// URIFor is the URI that selects exactly this token, by label and serial.
func URIFor(info Info) *URI {
	return &URI{Token: info.Label, Serial: info.Serial}
}
