package scripts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/runtime"
)

// Manifest is manifest.yaml at the root of a scripts tree. Version, API and Procedures are
// all a tree needs; the other fields are written by tokenrun scripts pack and make the
// manifest of a signed bundle, where Files is required (package bundle checks it).
type Manifest struct {
	Version    string            `yaml:"version"`
	API        int               `yaml:"api"`
	Procedures map[string]string `yaml:"procedures"` // name -> file
	// Runtime is the lowest tokenrun version the set needs; empty for any.
	Runtime string `yaml:"runtime,omitempty"`
	// ProcedureVersions are each procedure's own version and needs, so that an installed
	// bundle can be listed, and refused per procedure, without running any of it.
	ProcedureVersions map[string]ProcedureVersion `yaml:"procedure_versions,omitempty"`
	// Regions are the region names the tree carries (regions/NAME.yaml).
	Regions []string `yaml:"regions,omitempty"`
	// Files maps every other file of a bundle (slash path) to its SHA-256, hex: the
	// signature over manifest.yaml then covers the whole tree.
	Files map[string]string `yaml:"files,omitempty"`
}

// ProcedureVersion is one procedure's version and what it needs from the host.
type ProcedureVersion struct {
	Version string `yaml:"version"`
	API     int    `yaml:"api"`
	Runtime string `yaml:"runtime,omitempty"`
}

// Set is a loaded scripts tree: its manifest, compiled procedures and libraries, and the
// tree itself for regions and message catalogs.
type Set struct {
	FS         fs.FS
	Source     string // "embedded" or the directory
	Manifest   Manifest
	Procedures map[string]*runtime.Script
	// Libraries are lib/*.lua, required as "lib.NAME".
	Libraries map[string]*runtime.Script
	// Digest identifies the tree's content: the SHA-256 (hex) of every file but
	// manifest.yaml and manifest.sig, which a signed bundle rewrites, so the same scripts
	// have the same digest embedded, exported, or installed from a bundle. Transcripts
	// record it; a replay says when it differs.
	Digest string
}

// ManifestKind is the kind of a scripts tree's manifest.yaml for readfile: it lists a few
// hundred files with their hashes.
var ManifestKind = readfile.Kind{Name: "manifest", Max: 1 << 20}

// Embedded is the shipped set.
func Embedded() (*Set, error) { return Load(FS, "embedded") }

// Load reads and compiles a scripts tree. Every problem is reported with the file it is in.
func Load(fsys fs.FS, source string) (*Set, error) {
	raw, err := readfile.ReadFS(fsys, "manifest.yaml", ManifestKind)
	if err != nil {
		return nil, fmt.Errorf("scripts %s: %w (a scripts tree has manifest.yaml at its root: see tokenrun scripts export)", source, err)
	}
	digest, err := treeDigest(fsys)
	if err != nil {
		return nil, fmt.Errorf("scripts %s: %w", source, err)
	}
	s := &Set{FS: fsys, Source: source, Procedures: map[string]*runtime.Script{}, Libraries: map[string]*runtime.Script{}, Digest: digest}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s.Manifest); err != nil {
		return nil, fmt.Errorf("scripts %s: manifest.yaml: %w", source, err)
	}
	m := s.Manifest
	if m.Version == "" || m.API < 1 || len(m.Procedures) == 0 {
		return nil, fmt.Errorf("scripts %s: manifest.yaml needs version, api (>= 1) and procedures", source)
	}
	if m.API > runtime.APILevel {
		return nil, fmt.Errorf("scripts %s %s need script API %d; this tokenrun has API %d: update tokenrun", source, m.Version, m.API, runtime.APILevel)
	}
	if err := CheckRuntime(m.Runtime); err != nil {
		return nil, fmt.Errorf("scripts %s %s: %w", source, m.Version, err)
	}
	for _, name := range sortedKeys(m.ProcedureVersions) {
		pv := m.ProcedureVersions[name]
		if _, ok := m.Procedures[name]; !ok {
			return nil, fmt.Errorf("scripts %s: manifest.yaml: procedure_versions names %s, which is not under procedures", source, name)
		}
		if pv.API > runtime.APILevel {
			return nil, fmt.Errorf("scripts %s: procedure %s %s needs script API %d; this tokenrun has API %d: update tokenrun", source, name, pv.Version, pv.API, runtime.APILevel)
		}
		if err := CheckRuntime(pv.Runtime); err != nil {
			return nil, fmt.Errorf("scripts %s: procedure %s %s: %w", source, name, pv.Version, err)
		}
	}
	for name, file := range m.Procedures {
		sc, err := compile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("scripts %s: procedure %s: %w", source, name, err)
		}
		s.Procedures[name] = sc
	}
	libs, err := fs.Glob(fsys, "lib/*.lua")
	if err != nil {
		return nil, err
	}
	for _, file := range libs {
		sc, err := compile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("scripts %s: %w", source, err)
		}
		s.Libraries["lib."+strings.TrimSuffix(path.Base(file), ".lua")] = sc
	}
	return s, nil
}

func compile(fsys fs.FS, file string) (*runtime.Script, error) {
	src, err := readfile.ReadFS(fsys, file, readfile.Script)
	if err != nil {
		return nil, err
	}
	return runtime.Compile(file, src)
}

// Names lists the procedures, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.Procedures))
	for n := range s.Procedures {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckRuntime refuses a minimum tokenrun version newer than this binary. A development
// build (runtime.Version not a version number) is taken as new enough: it is built from
// the newest source.
func CheckRuntime(min string) error {
	if min == "" {
		return nil
	}
	if _, ok := parseVersion(min); !ok {
		return fmt.Errorf("runtime %q is not a version like 1.2.3", min)
	}
	if _, ok := parseVersion(runtime.Version); !ok {
		return nil
	}
	if CompareVersions(runtime.Version, min) < 0 {
		return fmt.Errorf("needs tokenrun %s or newer; this tokenrun is %s: update tokenrun", min, runtime.Version)
	}
	return nil
}

// CompareVersions orders semantic versions (major.minor.patch, a pre-release sorting
// before its release; build metadata ignored) like strings.Compare. A string that is not a
// version sorts before every version.
func CompareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := range 3 {
		if va.nums[i] != vb.nums[i] {
			if va.nums[i] < vb.nums[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	}
	return comparePre(va.pre, vb.pre)
}

type version struct {
	nums [3]uint64
	pre  string
}

// IsVersion reports whether v is a semantic version like 1.2.3 or 1.2.3-rc.1.
func IsVersion(v string) bool { _, ok := parseVersion(v); return ok }

// MaxVersionLen bounds a version string: it names an install directory and is printed.
const MaxVersionLen = 64

// parseVersion reads a SemVer 2.0.0 version: MAJOR.MINOR.PATCH, numbers without leading
// zeros, then optionally -PRERELEASE and +BUILD, each dot-separated identifiers of ASCII
// letters, digits and '-' (a numeric pre-release identifier without leading zeros). Nothing
// else: no '/', no '..', nothing a path or a terminal would read differently.
func parseVersion(s string) (version, bool) {
	var v version
	if len(s) > MaxVersionLen {
		return v, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !identifiers(s[i+1:], false) {
			return v, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s, v.pre = s[:i], s[i+1:]
		if !identifiers(v.pre, true) {
			return v, false
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return v, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
		v.nums[i] = n
	}
	return v, true
}

// identifiers checks SemVer's dot-separated identifiers; pre adds pre-release's rule that a
// numeric identifier has no leading zero.
func identifiers(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// comparePre orders pre-release identifiers as semver.org does: numeric ones numerically
// and below alphanumeric ones, and a shorter list first when one is a prefix of the other.
func comparePre(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.ParseUint(pa[i], 10, 64)
		nb, eb := strconv.ParseUint(pb[i], 10, 64)
		switch {
		case ea == nil && eb == nil:
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		default:
			if c := strings.Compare(pa[i], pb[i]); c != 0 {
				return c
			}
		}
	}
	return len(pa) - len(pb)
}

// treeDigest is Set.Digest: over the paths (sorted, as fs.WalkDir gives them) and contents
// of every regular file, each length-prefixed so that no two trees hash alike.
func treeDigest(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || name == "manifest.yaml" || name == "manifest.sig" {
			return nil
		}
		data, err := readfile.ReadFS(fsys, name, readfile.Script)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%d:%s\n%d:", len(name), name, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
