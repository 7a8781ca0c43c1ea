// Package token owns PKCS#11-style tokens: what a token is, what can be done with it, and the
// errors callers branch on. Backends live in sub-packages (token/pkcs11 for any PKCS#11 module,
// token/soft for the embedded software token); this package knows nothing of Lua.
package token

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// Role is who logs in: the user (signs) or the security officer (administrator: formats,
// unblocks the user PIN).
type Role int

const (
	User Role = iota
	SO
)

func (r Role) String() string {
	if r == SO {
		return "so"
	}
	return "user"
}

// PINStatus is what a token says about one PIN's remaining tries. PKCS#11 only gives flags;
// RetriesLeft is exact where the backend knows it (the software token) and -1 otherwise.
type PINStatus struct {
	CountLow    bool `json:"count_low"`
	FinalTry    bool `json:"final_try"`
	Locked      bool `json:"locked"`
	ToBeChanged bool `json:"to_be_changed"`
	RetriesLeft int  `json:"retries_left"`
}

// Info describes a token present in a slot. Slot is for display only: SoftHSM2 renumbers
// slots when a token is initialised, so tokens are always selected by label or serial.
type Info struct {
	Slot               uint      `json:"slot"`
	Label              string    `json:"label"`
	Serial             string    `json:"serial"`
	Manufacturer       string    `json:"manufacturer"`
	Model              string    `json:"model"`
	Initialized        bool      `json:"initialized"`
	LoginRequired      bool      `json:"login_required"`
	UserPINInitialized bool      `json:"user_pin_initialized"`
	ProtectedAuthPath  bool      `json:"protected_auth_path"`
	MinPINLen          int       `json:"min_pin_len"`
	MaxPINLen          int       `json:"max_pin_len"`
	UserPIN            PINStatus `json:"user_pin"`
	SOPIN              PINStatus `json:"so_pin"`
}

// Name is how a token is named to a person: label and serial.
func (i Info) Name() string {
	if i.Label == "" {
		return "(no label) serial " + i.Serial
	}
	return i.Label + " (serial " + i.Serial + ")"
}

// ObjectClass is the kind of a token object.
type ObjectClass string

const (
	PrivateKey  ObjectClass = "private-key"
	PublicKey   ObjectClass = "public-key"
	Certificate ObjectClass = "cert"
)

// Object names one object on a token. ID is CKA_ID: a key pair and its certificate share it.
type Object struct {
	Class ObjectClass
	ID    []byte
	Label string
}

// IDHex is the object's id as pkcs11-tool and PKCS#11 URIs show it.
func (o Object) IDHex() string { return hex.EncodeToString(o.ID) }

// KeyType is a key algorithm family.
type KeyType string

const (
	RSA     KeyType = "rsa"
	EC      KeyType = "ec"
	Ed25519 KeyType = "ed25519"
	// Vendor keys come from a vendor mechanism (KAZTOKEN's GOST keys): the host does not
	// interpret them beyond the templates configuration gives.
	Vendor KeyType = "vendor"
)

// Attribute is a raw PKCS#11 attribute, for vendor key templates from configuration.
type Attribute struct {
	Type  uint
	Value []byte
}

// VendorMechanism generates a key with a mechanism this host does not know by name.
type VendorMechanism struct {
	Mechanism       uint
	PublicTemplate  []Attribute
	PrivateTemplate []Attribute
}

// KeyRequest asks for a key pair generated on the token. Private keys are always
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE; a vendor template that tries
// to say otherwise is refused.
type KeyRequest struct {
	Type   KeyType
	Bits   int    // RSA: 2048, 3072, 4096
	Curve  string // EC: "P-256", "P-384"
	Label  string
	ID     []byte // nil: the backend picks a random 20-byte id
	Vendor *VendorMechanism
}

// Key is a key pair on a token. Public is nil for vendor keys the host cannot parse.
type Key struct {
	Object
	Type   KeyType
	Bits   int
	Curve  string
	Public crypto.PublicKey
}

// Cert is a certificate object on a token.
type Cert struct {
	Object
	DER  []byte
	X509 *x509.Certificate
}

// CertificateRequest stores a certificate; ID normally is the ID of the key it belongs to.
type CertificateRequest struct {
	DER   []byte
	ID    []byte
	Label string
}

// Token is one token, opened for use. Methods are safe for concurrent use. Login state is per
// token, as in PKCS#11.
type Token interface {
	Info(ctx context.Context) (Info, error)
	Login(ctx context.Context, role Role, pin string) error
	Logout(ctx context.Context) error
	// SetPIN changes the PIN of whoever is logged in (C_SetPIN).
	SetPIN(ctx context.Context, oldPIN, newPIN string) error
	// InitPIN sets the user PIN; the SO must be logged in (C_InitPIN). It unblocks a locked
	// user PIN.
	InitPIN(ctx context.Context, newPIN string) error
	// Format wipes every object and the user PIN (C_InitToken). It closes the token's sessions
	// first. The token stays usable afterwards under its (possibly new) label.
	Format(ctx context.Context, soPIN, label string) error
	GenerateKey(ctx context.Context, req KeyRequest) (*Key, error)
	Keys(ctx context.Context) ([]*Key, error)
	Certificates(ctx context.Context) ([]*Cert, error)
	// StoreCertificate validates the DER first: modules accept garbage.
	StoreCertificate(ctx context.Context, req CertificateRequest) (*Cert, error)
	// Delete removes every object of obj.Class with obj.ID (and obj.Label, when set).
	Delete(ctx context.Context, obj Object) error
	// Signer signs with a token key; the key never leaves the token.
	Signer(ctx context.Context, key *Key) (crypto.Signer, error)
	Close() error
}

// Locator is implemented by providers that can say where a token is, more precisely than
// Description: the resolved module path, or a software token's directory. The safety floor
// keys its ledger and lock on it.
type Locator interface {
	Location(info Info) string
}

// UserPINFormatter is a token that can format and set the new user PIN in one step, so that
// no failure or kill in between leaves a token without a user PIN (the software token: one
// state write). Use FormatWithUserPIN, which falls back to the steps for other tokens.
type UserPINFormatter interface {
	FormatWithUserPIN(ctx context.Context, soPIN, label, userPIN string) error
}

// FormatWithUserPIN formats t (label "" keeps it) and sets userPIN as its user PIN, leaving
// nobody logged in. With a UserPINFormatter that is one step; otherwise it is Format, an SO
// login, InitPIN and Logout, and a failure after the format says that the token is
// formatted without a user PIN (the way out: the SO sets one). The new PIN's length is
// checked against what the token says it takes before anything is changed.
func FormatWithUserPIN(ctx context.Context, t Token, soPIN, label, userPIN string) error {
	if f, ok := t.(UserPINFormatter); ok {
		return f.FormatWithUserPIN(ctx, soPIN, label, userPIN)
	}
	info, err := t.Info(ctx)
	if err != nil {
		return err
	}
	if n := len(userPIN); (info.MinPINLen > 0 && n < info.MinPINLen) || (info.MaxPINLen > 0 && n > info.MaxPINLen) {
		return &Error{Op: "format", Code: CKR_PIN_LEN_RANGE, RetriesLeft: -1,
			Err: fmt.Errorf("the new user PIN has %d characters, this token takes %d to %d: %w", n, info.MinPINLen, info.MaxPINLen, ErrPINInvalid)}
	}
	if err := t.Format(ctx, soPIN, label); err != nil {
		return err
	}
	if err := t.Login(ctx, SO, soPIN); err != nil {
		return fmt.Errorf("the token is formatted but has no user PIN yet (the SO can set one): %w", err)
	}
	err = t.InitPIN(ctx, userPIN)
	lerr := t.Logout(ctx)
	if err != nil {
		return fmt.Errorf("the token is formatted but has no user PIN yet (the SO can set one): %w", err)
	}
	if lerr != nil && !errors.Is(lerr, ErrNotLoggedIn) {
		return lerr
	}
	return nil
}

// Provider is a source of tokens: one PKCS#11 module, or a set of software token directories.
type Provider interface {
	// Description names the provider for people: the module path, or "software token".
	Description() string
	// Tokens lists every slot with a token present, initialised or not.
	Tokens(ctx context.Context) ([]Info, error)
	// Open opens the token described by info, found again by serial (slots move).
	Open(ctx context.Context, info Info) (Token, error)
	Close() error
}
