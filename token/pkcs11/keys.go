//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenrun/tokenrun/token"
)

// PKCS#11 3.0 names that miekg/pkcs11 v1.1.2 does not have.
const (
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
	ckkECEdwards           = 0x40
)

var mechNames = map[uint]string{
	p11.CKM_RSA_PKCS_KEY_PAIR_GEN: "CKM_RSA_PKCS_KEY_PAIR_GEN",
	p11.CKM_EC_KEY_PAIR_GEN:       "CKM_EC_KEY_PAIR_GEN",
	ckmECEdwardsKeyPairGen:        "CKM_EC_EDWARDS_KEY_PAIR_GEN",
	p11.CKM_RSA_PKCS:              "CKM_RSA_PKCS",
	p11.CKM_RSA_PKCS_PSS:          "CKM_RSA_PKCS_PSS",
	p11.CKM_ECDSA:                 "CKM_ECDSA",
	ckmEdDSA:                      "CKM_EDDSA",
}

func mechName(m uint) string {
	if n, ok := mechNames[m]; ok {
		return n
	}
	return fmt.Sprintf("mechanism 0x%X", m)
}

var attrNames = map[uint]string{
	p11.CKA_CLASS: "CKA_CLASS", p11.CKA_TOKEN: "CKA_TOKEN", p11.CKA_PRIVATE: "CKA_PRIVATE",
	p11.CKA_LABEL: "CKA_LABEL", p11.CKA_ID: "CKA_ID", p11.CKA_SENSITIVE: "CKA_SENSITIVE",
	p11.CKA_EXTRACTABLE: "CKA_EXTRACTABLE", p11.CKA_SIGN: "CKA_SIGN",
}

func attrName(a uint) string {
	if n, ok := attrNames[a]; ok {
		return n
	}
	return fmt.Sprintf("attribute 0x%X", a)
}

// Curves by name, with the DER of their OID as CKA_EC_PARAMS carries it.
type curveInfo struct {
	name  string
	oid   asn1.ObjectIdentifier
	curve elliptic.Curve
}

var curves = []curveInfo{
	{"P-256", asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, elliptic.P256()},
	{"P-384", asn1.ObjectIdentifier{1, 3, 132, 0, 34}, elliptic.P384()},
	{"P-521", asn1.ObjectIdentifier{1, 3, 132, 0, 35}, elliptic.P521()},
}

// Ed25519 parameters come in two forms: the RFC 8410 OID and the PKCS#11 3.0 curve name
// (which OpenSC 0.23's pkcs11-tool writes, and then shows as a garbled OID). SoftHSM2 2.6.1
// accepts both. Keys are generated with the OID, falling back to the name for modules that
// know only that; both are read.
var (
	ed25519OID    = mustMarshal(asn1.ObjectIdentifier{1, 3, 101, 112})
	ed25519Name   = mustMarshalPrintable("edwards25519")
	rsaExponent65 = []byte{0x01, 0x00, 0x01}
)

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustMarshalPrintable(s string) []byte {
	b, err := asn1.MarshalWithParams(s, "printable")
	if err != nil {
		panic(err)
	}
	return b
}

// keySpec is a KeyRequest turned into what C_GenerateKeyPair needs.
type keySpec struct {
	mech      uint
	what      string // for messages: "RSA 2048-bit keys"
	pub, priv []*p11.Attribute
}

func attr(typ uint, v any) *p11.Attribute { return p11.NewAttribute(typ, v) }

// buildSpec validates req and builds the templates. Private keys are always token objects,
// private, sensitive, not extractable and able to sign, whatever the request says.
func buildSpec(req token.KeyRequest, id []byte) (*keySpec, error) {
	const op = "generate key"
	pub := []*p11.Attribute{
		attr(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		attr(p11.CKA_TOKEN, true),
		attr(p11.CKA_PRIVATE, false),
		attr(p11.CKA_VERIFY, true),
		attr(p11.CKA_ID, id),
	}
	priv := []*p11.Attribute{
		attr(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		attr(p11.CKA_TOKEN, true),
		attr(p11.CKA_PRIVATE, true),
		attr(p11.CKA_SENSITIVE, true),
		attr(p11.CKA_EXTRACTABLE, false),
		attr(p11.CKA_SIGN, true),
		attr(p11.CKA_ID, id),
	}
	if req.Label != "" {
		pub = append(pub, attr(p11.CKA_LABEL, req.Label))
		priv = append(priv, attr(p11.CKA_LABEL, req.Label))
	}
	s := &keySpec{}
	switch req.Type {
	case token.RSA:
		bits := req.Bits
		if bits == 0 {
			bits = 2048
		}
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return nil, newErr(op, token.ErrInvalidInput, "RSA keys of %d bits are not offered: choose 2048, 3072 or 4096", req.Bits)
		}
		s.mech, s.what = p11.CKM_RSA_PKCS_KEY_PAIR_GEN, fmt.Sprintf("RSA %d-bit keys", bits)
		s.pub = append(pub, attr(p11.CKA_KEY_TYPE, p11.CKK_RSA), attr(p11.CKA_MODULUS_BITS, bits),
			attr(p11.CKA_PUBLIC_EXPONENT, rsaExponent65))
		s.priv = append(priv, attr(p11.CKA_KEY_TYPE, p11.CKK_RSA))
	case token.EC:
		name := req.Curve
		if name == "" {
			name = "P-256"
		}
		if name != "P-256" && name != "P-384" {
			return nil, newErr(op, token.ErrInvalidInput, "EC curve %q is not offered: choose P-256 or P-384", req.Curve)
		}
		c := curveByName(name)
		s.mech, s.what = p11.CKM_EC_KEY_PAIR_GEN, "EC "+name+" keys"
		s.pub = append(pub, attr(p11.CKA_KEY_TYPE, p11.CKK_EC), attr(p11.CKA_EC_PARAMS, mustMarshal(c.oid)))
		s.priv = append(priv, attr(p11.CKA_KEY_TYPE, p11.CKK_EC))
	case token.Ed25519:
		s.mech, s.what = ckmECEdwardsKeyPairGen, "Ed25519 keys"
		s.pub = append(pub, attr(p11.CKA_KEY_TYPE, ckkECEdwards), attr(p11.CKA_EC_PARAMS, ed25519OID))
		s.priv = append(priv, attr(p11.CKA_KEY_TYPE, ckkECEdwards))
	case token.Vendor:
		if req.Vendor == nil {
			return nil, newErr(op, token.ErrInvalidInput, "a vendor key needs a vendor mechanism and templates")
		}
		var err error
		if s.pub, err = mergeTemplate(pub, req.Vendor.PublicTemplate, p11.CKO_PUBLIC_KEY, nil); err != nil {
			return nil, err
		}
		if s.priv, err = mergeTemplate(priv, req.Vendor.PrivateTemplate, p11.CKO_PRIVATE_KEY, privateKeyPolicy); err != nil {
			return nil, err
		}
		s.mech, s.what = req.Vendor.Mechanism, "vendor keys"
	default:
		return nil, newErr(op, token.ErrInvalidInput, "key type %q is not known: choose rsa, ec, ed25519 or vendor", req.Type)
	}
	return s, nil
}

// privateKeyPolicy is what every private key must be; a vendor template may repeat these
// values but not change them.
var privateKeyPolicy = map[uint]bool{
	p11.CKA_TOKEN:       true,
	p11.CKA_PRIVATE:     true,
	p11.CKA_SENSITIVE:   true,
	p11.CKA_EXTRACTABLE: false,
	p11.CKA_SIGN:        true,
}

// mergeTemplate adds a vendor template to a base one. The vendor's attributes override the
// base's, except the class, the policy attributes, and CKA_ID/CKA_LABEL (which come from the
// request, so that the two halves and the certificate always share them).
func mergeTemplate(base []*p11.Attribute, vendor []token.Attribute, class uint, policy map[uint]bool) ([]*p11.Attribute, error) {
	const op = "generate key"
	out := append([]*p11.Attribute(nil), base...)
	half := "public"
	if class == p11.CKO_PRIVATE_KEY {
		half = "private"
	}
	for _, va := range vendor {
		switch va.Type {
		case p11.CKA_ID, p11.CKA_LABEL:
			return nil, newErr(op, token.ErrInvalidInput, "the vendor %s-key template sets %s: give the id and label in the key request instead", half, attrName(va.Type))
		case p11.CKA_CLASS:
			if v, ok := ulongValue(va.Value); !ok || v != class {
				return nil, newErr(op, token.ErrInvalidInput, "the vendor %s-key template sets CKA_CLASS to another class", half)
			}
			continue
		}
		if want, ok := policy[va.Type]; ok {
			if len(va.Value) != 1 || (va.Value[0] != 0) != want {
				return nil, newErr(op, token.ErrInvalidInput, "the vendor private-key template sets %s differently: private keys are always CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_SIGN and not CKA_EXTRACTABLE", attrName(va.Type))
			}
			continue
		}
		a := &p11.Attribute{Type: va.Type, Value: va.Value}
		replaced := false
		for i, b := range out {
			if b.Type == va.Type {
				out[i], replaced = a, true
			}
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out, nil
}

func curveByName(name string) *curveInfo {
	for i := range curves {
		if curves[i].name == name {
			return &curves[i]
		}
	}
	return nil
}

// GenerateKey generates a key pair on the token. The user must be logged in.
func (t *Token) GenerateKey(ctx context.Context, req token.KeyRequest) (*token.Key, error) {
	const op = "generate key"
	id := req.ID
	if len(id) == 0 {
		id = make([]byte, 20)
		if _, err := rand.Read(id); err != nil {
			return nil, wrapErr(op, err)
		}
	}
	spec, err := buildSpec(req, id)
	if err != nil {
		return nil, err
	}
	if ok, known := t.mechanism(spec.mech); known && !ok {
		return nil, t.unsupported(op, spec.mech, spec.what, token.CKR_MECHANISM_INVALID)
	}
	var key *token.Key
	err = t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		existing, err := t.find(sh, attr(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), attr(p11.CKA_ID, id))
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return newErr(op, token.ErrAlreadyExists, "token %s already has a private key with id %x", t.name(), id)
		}
		mech := []*p11.Mechanism{p11.NewMechanism(spec.mech, nil)}
		pubH, privH, err := t.ctx.GenerateKeyPair(sh, mech, spec.pub, spec.priv)
		if err != nil && req.Type == token.Ed25519 &&
			isCode(err, p11.CKR_ATTRIBUTE_VALUE_INVALID, p11.CKR_DOMAIN_PARAMS_INVALID, p11.CKR_CURVE_NOT_SUPPORTED, p11.CKR_TEMPLATE_INCONSISTENT) {
			setAttr(spec.pub, p11.CKA_EC_PARAMS, ed25519Name)
			pubH, privH, err = t.ctx.GenerateKeyPair(sh, mech, spec.pub, spec.priv)
		}
		for _, code := range []uint{p11.CKR_MECHANISM_INVALID, p11.CKR_KEY_SIZE_RANGE, p11.CKR_CURVE_NOT_SUPPORTED, p11.CKR_DOMAIN_PARAMS_INVALID} {
			if isCode(err, code) {
				return t.unsupported(op, spec.mech, spec.what, token.ReturnCode(code))
			}
		}
		if err != nil {
			return err
		}
		k, err := t.describeKey(sh, privH, pubH, true)
		if err != nil {
			return err
		}
		if req.Type == token.Vendor {
			k.Type = token.Vendor
		}
		key = k
		return nil
	})
	return key, err
}

func setAttr(tmpl []*p11.Attribute, typ uint, v []byte) {
	for _, a := range tmpl {
		if a.Type == typ {
			a.Value = v
		}
	}
}

// Keys lists the private keys the token shows now (PKCS#11 hides private objects until
// login) with their public halves: from the public-key object with the same CKA_ID, from
// the private object's public attributes (RSA), or from a certificate with the same CKA_ID.
func (t *Token) Keys(ctx context.Context) ([]*token.Key, error) {
	const op = "list keys"
	var keys []*token.Key
	err := t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		handles, err := t.find(sh, attr(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY))
		if err != nil {
			return err
		}
		for _, h := range handles {
			if err := ctx.Err(); err != nil {
				return err
			}
			k, err := t.describeKey(sh, h, 0, false)
			if isCode(err, p11.CKR_OBJECT_HANDLE_INVALID) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}

// describeKey reads a private key and its public half. pub is the public-key object when the
// caller has it (havePub); otherwise it is looked for by CKA_ID.
func (t *Token) describeKey(sh p11.SessionHandle, priv, pub p11.ObjectHandle, havePub bool) (*token.Key, error) {
	a, err := t.attrs(sh, priv, p11.CKA_ID, p11.CKA_LABEL, p11.CKA_KEY_TYPE)
	if err != nil {
		return nil, err
	}
	k := &token.Key{Object: token.Object{Class: token.PrivateKey, ID: a[p11.CKA_ID], Label: string(a[p11.CKA_LABEL])}}
	kt, ok := ulongValue(a[p11.CKA_KEY_TYPE])
	if !ok {
		k.Type = token.Vendor
		return k, nil
	}
	if !havePub {
		hs, err := t.find(sh, attr(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), attr(p11.CKA_ID, k.ID), attr(p11.CKA_KEY_TYPE, kt))
		if err != nil {
			return nil, err
		}
		if len(hs) > 0 {
			pub, havePub = hs[0], true
		}
	}
	if err := t.fillPublic(sh, k, kt, priv, pub, havePub); err != nil {
		return nil, err
	}
	if k.Public == nil && k.Type != token.Vendor {
		t.publicFromCertificate(sh, k)
	}
	return k, nil
}

// fillPublic sets k's type, size and public key from the key objects' attributes.
func (t *Token) fillPublic(sh p11.SessionHandle, k *token.Key, kt uint, priv, pub p11.ObjectHandle, havePub bool) error {
	src := priv
	if havePub {
		src = pub
	}
	switch kt {
	case p11.CKK_RSA:
		k.Type = token.RSA
		a, err := t.attrs(sh, src, p11.CKA_MODULUS, p11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return err
		}
		n, e := a[p11.CKA_MODULUS], a[p11.CKA_PUBLIC_EXPONENT]
		if len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil
		}
		pk := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		k.Public, k.Bits = pk, pk.N.BitLen()
	case p11.CKK_EC:
		k.Type = token.EC
		a, err := t.attrs(sh, src, p11.CKA_EC_PARAMS)
		if err != nil {
			return err
		}
		c := curveByParams(a[p11.CKA_EC_PARAMS])
		if c == nil {
			k.Type = token.Vendor // a curve this host cannot use
			return nil
		}
		k.Curve, k.Bits = c.name, c.curve.Params().BitSize
		if !havePub {
			return nil
		}
		p, err := t.attrs(sh, pub, p11.CKA_EC_POINT)
		if err != nil {
			return err
		}
		if pk, err := parseECPoint(c.curve, p[p11.CKA_EC_POINT]); err == nil {
			k.Public = pk
		}
	case ckkECEdwards:
		a, err := t.attrs(sh, src, p11.CKA_EC_PARAMS)
		if err != nil {
			return err
		}
		if !isEd25519Params(a[p11.CKA_EC_PARAMS]) {
			k.Type = token.Vendor // Ed448, which this host does not sign with
			return nil
		}
		k.Type, k.Bits = token.Ed25519, 256
		if !havePub {
			return nil
		}
		p, err := t.attrs(sh, pub, p11.CKA_EC_POINT)
		if err != nil {
			return err
		}
		if raw := unwrapOctets(p[p11.CKA_EC_POINT], ed25519.PublicKeySize); len(raw) == ed25519.PublicKeySize {
			k.Public = ed25519.PublicKey(raw)
		}
	default:
		k.Type = token.Vendor
	}
	return nil
}

// publicFromCertificate takes the public key from a certificate with the key's CKA_ID, for
// tokens whose public-key objects were deleted (some enrolment tools do that).
func (t *Token) publicFromCertificate(sh p11.SessionHandle, k *token.Key) {
	certs, err := t.certificates(sh, attr(p11.CKA_ID, k.ID))
	if err != nil {
		return
	}
	for _, c := range certs {
		switch pk := c.X509.PublicKey.(type) {
		case *rsa.PublicKey:
			if k.Type == token.RSA {
				k.Public, k.Bits = pk, pk.N.BitLen()
				return
			}
		case *ecdsa.PublicKey:
			if k.Type == token.EC && pk.Curve.Params().Name == k.Curve {
				k.Public = pk
				return
			}
		case ed25519.PublicKey:
			if k.Type == token.Ed25519 {
				k.Public = pk
				return
			}
		}
	}
}

func curveByParams(params []byte) *curveInfo {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err != nil || len(rest) > 0 {
		return nil
	}
	for i := range curves {
		if curves[i].oid.Equal(oid) {
			return &curves[i]
		}
	}
	return nil
}

func isEd25519Params(params []byte) bool {
	return bytes.Equal(params, ed25519OID) || bytes.Equal(params, ed25519Name)
}

// parseECPoint reads CKA_EC_POINT: PKCS#11 says a DER OCTET STRING holding the uncompressed
// point, but some modules give the bare point.
func parseECPoint(c elliptic.Curve, v []byte) (*ecdsa.PublicKey, error) {
	size := 1 + 2*((c.Params().BitSize+7)/8)
	point := unwrapOctets(v, size)
	pk, err := ecdsa.ParseUncompressedPublicKey(c, point)
	if err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT is not a point on %s: %w", c.Params().Name, err)
	}
	return pk, nil
}

// unwrapOctets strips a DER OCTET STRING around a value of length size, when there is one.
func unwrapOctets(v []byte, size int) []byte {
	if len(v) == size {
		return v
	}
	var inner []byte
	if rest, err := asn1.Unmarshal(v, &inner); err == nil && len(rest) == 0 && len(inner) == size {
		return inner
	}
	return v
}

// ulongValue decodes a CK_ULONG attribute, native-endian as the module wrote it.
func ulongValue(v []byte) (uint, bool) {
	switch len(v) {
	case 8:
		return uint(binary.NativeEndian.Uint64(v)), true
	case 4:
		return uint(binary.NativeEndian.Uint32(v)), true
	}
	return 0, false
}

// attrs reads attributes of an object. Unreadable ones (sensitive, or not defined for the
// object) are left out rather than failing the whole read, as C_GetAttributeValue would.
func (t *Token) attrs(sh p11.SessionHandle, h p11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	tmpl := make([]*p11.Attribute, len(types))
	for i, typ := range types {
		tmpl[i] = &p11.Attribute{Type: typ}
	}
	out := make(map[uint][]byte, len(types))
	got, err := t.ctx.GetAttributeValue(sh, h, tmpl)
	if err == nil {
		for _, a := range got {
			if a.Value != nil {
				out[a.Type] = a.Value
			}
		}
		return out, nil
	}
	if !isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE, p11.CKR_ATTRIBUTE_TYPE_INVALID) {
		return nil, err
	}
	if len(types) == 1 {
		return out, nil
	}
	for _, typ := range types {
		got, err := t.ctx.GetAttributeValue(sh, h, []*p11.Attribute{{Type: typ}})
		if err != nil {
			if isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE, p11.CKR_ATTRIBUTE_TYPE_INVALID) {
				continue
			}
			return nil, err
		}
		if got[0].Value != nil {
			out[typ] = got[0].Value
		}
	}
	return out, nil
}
