package scripts

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/runtime"
)

// Manifest is manifest.yaml at the root of a scripts tree.
type Manifest struct {
	Version    string            `yaml:"version"`
	API        int               `yaml:"api"`
	Procedures map[string]string `yaml:"procedures"` // name -> file
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
}

// Embedded is the shipped set.
func Embedded() (*Set, error) { return Load(FS, "embedded") }

// Load reads and compiles a scripts tree. Every problem is reported with the file it is in.
func Load(fsys fs.FS, source string) (*Set, error) {
	raw, err := fs.ReadFile(fsys, "manifest.yaml")
	if err != nil {
		return nil, fmt.Errorf("scripts %s: %w (a scripts tree has manifest.yaml at its root: see tokenrun scripts export)", source, err)
	}
	s := &Set{FS: fsys, Source: source, Procedures: map[string]*runtime.Script{}, Libraries: map[string]*runtime.Script{}}
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
	src, err := fs.ReadFile(fsys, file)
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
