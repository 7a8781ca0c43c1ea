// Package region owns a region's configuration: the values the procedures take from the bank
// instead of from code (default PINs, the user-ID format, the OTP-PIN and password rules,
// validity periods, the key algorithm, the certificate authority), read from
// regions/NAME.yaml in the scripts tree and checked against a schema, and the message
// catalogs (messages/LANG.yaml) in Kazakh, Russian and English.
//
// Every region builds on regions/default.yaml: another region's file needs only the keys it
// changes. Mistakes are reported with file, line and key (*Error, collected in Errors), so bank
// IT can fix a file without reading Go.
//
// There is no Lua here. The runtime hands Region.Map to scripts as ctx.config; the checks
// (UserID.Check, OTPPIN.Normalize, PasswordPolicy.Check) are the rules' Go implementation,
// for bindings and tests.
package region

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"time"
)

// Region is one region's configuration. The yaml tags are the schema: a key the file writes
// must be one of them (Load refuses unknown keys), and Map and Set use the same names.
type Region struct {
	Name     string         `yaml:"-"` // "default", "almaty": the file name without .yaml
	Source   string         `yaml:"-"` // the region's file in the scripts tree: regions/NAME.yaml
	Language string         `yaml:"language"`
	Token    Token          `yaml:"token"`
	UserID   UserID         `yaml:"user_id"`
	OTPPIN   OTPPIN         `yaml:"otp_pin"`
	Password PasswordPolicy `yaml:"password"`
	Validity []Validity     `yaml:"validity"`
	// Key and Subject are replaced whole by a region file that has them: a key's fields
	// depend on its type, and a subject is one name, so merging them key by key with
	// default.yaml's would make combinations nobody wrote.
	Key     KeySpec           `yaml:"key" region:"whole"`
	Subject map[string]string `yaml:"subject" region:"whole"`
	CA      CA                `yaml:"ca"`
	Profile Profile           `yaml:"profile"`
	// Messages replaces catalog texts for this region: language, then message key.
	Messages map[string]map[string]string `yaml:"messages"`
	// Sandbox bounds the procedures' Lua runs in this region. It is not part of ctx.config.
	Sandbox Sandbox `yaml:"sandbox"`
	// Agent is what tokenrun agent lets web pages ask. It is the host's: not part of
	// ctx.config.
	Agent Agent `yaml:"agent"`

	fsys fs.FS
	en   map[string]string // the en catalog: overrides must name its keys
	pos  map[string]pos    // where each key was last given, for errors
	seq  int
}

// Token holds what the procedures need to find and open a KAZTOKEN.
type Token struct {
	Wait           time.Duration `yaml:"wait"`             // how long token.wait waits for a token
	DefaultUserPIN string        `yaml:"default_user_pin"` // a blank token's user password
	DefaultSOPIN   string        `yaml:"default_so_pin"`   // a blank token's administrator password
	Label          string        `yaml:"label"`            // token name written by format
}

// Sandbox is what one procedure run may use.
type Sandbox struct {
	// MemoryMiB is the heap a run may use, in MiB: 0 is tokenrun's default (128 MiB), at most
	// MaxSandboxMemoryMiB.
	MemoryMiB int `yaml:"memory_mib"`
}

// Agent is the signing agent's policy: which web pages may ask it to sign, how long a
// person has to confirm, how often a page may ask.
type Agent struct {
	// Origins are the web pages allowed to connect, as browsers send them in the Origin
	// header: scheme://host[:port], lower case, without a path (Origins normalises them).
	// Empty: no page may connect.
	Origins []string `yaml:"origins"`
	// ConsentTimeout is how long a request waits for the person to answer one question
	// (confirm, password) before it is cancelled.
	ConsentTimeout time.Duration `yaml:"consent_timeout"`
	// RequestsPerMinute is how many requests one origin may make in a minute (signing and
	// the rest alike); more are answered with an error, not queued.
	RequestsPerMinute int `yaml:"requests_per_minute"`
}

// MaxSandboxMemoryMiB is the ceiling of sandbox.memory_mib: runtime.MaxMemoryLimit, which this
// package cannot import (it has no Lua); a test in cmd/tokenrun checks that they agree.
const MaxSandboxMemoryMiB = 1024

// UserID is the format of the user ID printed on the acceptance act.
type UserID struct {
	Pattern Pattern `yaml:"pattern"`
	Example string  `yaml:"example"` // shown when an ID does not match; must match Pattern
}

// OTPPIN is the format of the PIN printed on the OTP card.
type OTPPIN struct {
	Length    int     `yaml:"length"`
	Pattern   Pattern `yaml:"pattern"`   // checked after upper-casing
	Uppercase bool    `yaml:"uppercase"` // upper-case what was typed before checking it
}

// PasswordPolicy is what a new token password must be.
type PasswordPolicy struct {
	MinLength int     `yaml:"min_length"`
	MaxLength int     `yaml:"max_length"`
	Pattern   Pattern `yaml:"pattern"`
	// MaxSequence is the longest allowed run of consecutive characters ("12", "ba"), up or
	// down, ignoring case; 0 means no limit.
	MaxSequence int `yaml:"max_sequence"`
}

// Validity is one registration type: a certificate validity period the bank issues.
type Validity struct {
	ID    string            `yaml:"id"` // stable: answers files name it; EST label with ca.label_from_validity
	Years int               `yaml:"years"`
	Label map[string]string `yaml:"label"` // language -> what the client reads
}

// Text is the validity's label in lang, falling back to en, then to its id.
func (v Validity) Text(lang string) string {
	if s := v.Label[lang]; s != "" {
		return s
	}
	if s := v.Label["en"]; s != "" {
		return s
	}
	return v.ID
}

// KeySpec is the key pair the enrollment generates on the token, in the terms of the token
// module's generate_key: Bits goes with rsa, Curve with ec, Mechanism and the templates with
// vendor (KAZTOKEN's GOST keys).
type KeySpec struct {
	Type            string      `yaml:"type"` // rsa, ec, ed25519 or vendor
	Bits            int         `yaml:"bits"`
	Curve           string      `yaml:"curve"`
	Mechanism       uint64      `yaml:"mechanism"`
	PublicTemplate  []Attribute `yaml:"public_template"`
	PrivateTemplate []Attribute `yaml:"private_template"`
}

// Attribute is one raw PKCS#11 attribute of a vendor key template.
type Attribute struct {
	Type  uint64    `yaml:"type"` // the CKA_ number
	Value AttrValue `yaml:"value"`
}

// CA is the certificate authority that issues the client's certificate.
type CA struct {
	Protocol string `yaml:"protocol"` // est
	URL      string `yaml:"url"`
	// Roots is the PEM file as written; RootsPEM is its content, read when the region is
	// loaded or set, so that an embedded scripts tree works like one on disk.
	Roots             string        `yaml:"roots"`
	RootsPEM          []byte        `yaml:"-"`
	Timeout           time.Duration `yaml:"timeout"`
	LabelFromValidity bool          `yaml:"label_from_validity"`
}

// Profile holds the defaults of what a finished enrollment leaves on the token.
type Profile struct {
	DefaultName string `yaml:"default_name"`
}

// ErrUnknownRegion is returned by Load for a region the scripts tree has no file for.
var ErrUnknownRegion = errors.New("unknown region")

// DefaultName is the region every other region builds on.
const DefaultName = "default"

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Load reads region name from the scripts tree fsys (regions/NAME.yaml over
// regions/default.yaml) and checks it. A mistake in the files is an Errors value listing every
// problem with file, line and key; a region with no file is ErrUnknownRegion, naming the ones
// there are.
func Load(fsys fs.FS, name string) (*Region, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("region %q: a region name is lower-case letters, digits, '-' and '_', the name of a file in regions/ without .yaml", name)
	}
	source := "regions/" + name + ".yaml"
	if _, err := fs.Stat(fsys, source); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %q: there is no %s in the scripts tree (regions: %s)", ErrUnknownRegion, name, source, strings.Join(Names(fsys), ", "))
		}
		return nil, fmt.Errorf("region %s: %w", name, err)
	}
	en, _, err := readCatalog(fsys, "en")
	if err != nil {
		return nil, fmt.Errorf("region %s: the en message catalog: %w", name, err)
	}
	r := &Region{Name: name, Source: source, fsys: fsys, en: en, pos: map[string]pos{}}
	files := []string{"regions/" + DefaultName + ".yaml"}
	if name != DefaultName {
		files = append(files, source)
	}
	var errs Errors
	for _, f := range files {
		errs = append(errs, r.decodeFile(f)...)
	}
	if len(errs) == 0 {
		// Values that failed to decode are zero, and checking them would only repeat the
		// same mistake in other words.
		errs = r.validate()
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// Names lists the regions in the scripts tree fsys, sorted.
func Names(fsys fs.FS) []string {
	files, _ := fs.Glob(fsys, "regions/*.yaml") // the pattern is constant, so never ErrBadPattern
	var names []string
	for _, f := range files {
		if n := strings.TrimSuffix(path.Base(f), ".yaml"); validName.MatchString(n) {
			names = append(names, n)
		}
	}
	return names
}

// Catalog is the message catalog for lang ("" means the region's language) with this
// region's overrides applied; see the package function Catalog.
func (r *Region) Catalog(lang string) (map[string]string, error) {
	if lang == "" {
		lang = r.Language
	}
	return Catalog(r.fsys, lang, r.Messages)
}
