package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/scripts"
)

// Store is the installed bundles under $TOKENRUN_HOME/scripts:
//
//	versions/<version>-<hash>/       the unpacked tree with manifest.yaml and manifest.sig
//	versions/<version>-<hash>.json   install metadata (Meta)
//	active, previous                 pointer files naming a version directory
//	trusted-keys                     keys trusted with --trust at install
//
// Pointer files rather than symlinks: one atomic rename switches versions, everywhere.
type Store struct{ Dir string }

// OpenStore is the store under a tokenrun home directory; nothing is created until an install.
func OpenStore(home string) *Store { return &Store{Dir: filepath.Join(home, "scripts")} }

// Meta records where an installed bundle came from.
type Meta struct {
	ID            string    `json:"id"`
	Version       string    `json:"version"`
	Source        string    `json:"source"`
	Signer        string    `json:"signer"` // key ID
	SignerComment string    `json:"signer_comment,omitempty"`
	Installed     time.Time `json:"installed"`
}

const (
	activeName   = "active"
	previousName = "previous"
	userTrust    = "trusted-keys"
)

func (s *Store) versions() string { return filepath.Join(s.Dir, "versions") }

// pointer reads a pointer file: "" when it does not exist. A pointer naming anything but one
// version directory is refused, so an edited pointer cannot lead outside the store.
func (s *Store) pointer(name string) (string, error) {
	b, err := readfile.Read(filepath.Join(s.Dir, name), readfile.Record)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("%s names %q, not a version directory: reinstall a bundle", filepath.Join(s.Dir, name), id)
	}
	return id, nil
}

func (s *Store) setPointer(name, id string) error {
	return atomicfile.WriteFile(filepath.Join(s.Dir, name), []byte(id+"\n"), 0o644)
}

// Active and Previous name the active and previous version directories ("" for none).
func (s *Store) Active() (string, error)   { return s.pointer(activeName) }
func (s *Store) Previous() (string, error) { return s.pointer(previousName) }

// Versions lists the ids of every installed version directory, sorted; hidden entries
// (interrupted installs) are left out. None installed is an empty list, not an error.
func (s *Store) Versions() ([]string, error) {
	entries, err := os.ReadDir(s.versions())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil // ReadDir sorts by name
}

// Meta reads an installed bundle's metadata.
func (s *Store) Meta(id string) (Meta, error) {
	var m Meta
	b, err := readfile.Read(filepath.Join(s.versions(), id+".json"), readfile.Record)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s.json: %w", id, err)
	}
	return m, nil
}

// UserKeys are the keys trusted with --trust at earlier installs.
func (s *Store) UserKeys() (Keyring, error) {
	b, err := readfile.Read(filepath.Join(s.Dir, userTrust), readfile.Keys)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keys, err := ParsePublicKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.Dir, userTrust), err)
	}
	return keys, nil
}

// InstallOptions are the choices of one install.
type InstallOptions struct {
	Source         string // the archive's path, recorded in Meta
	AllowDowngrade bool
	// UserKeys are the keys given with --trust. When one of them signed the bundle it is
	// remembered, so that later runs can re-check the installed copy against it.
	UserKeys Keyring
}

// Install puts a verified bundle in a new version directory and then switches the active
// pointer to it, keeping the former active one as previous. A crash at any point leaves
// the former active version in place. A version lower than the active one is refused
// unless AllowDowngrade.
func (s *Store) Install(b *Bundle, opts InstallOptions) (Meta, error) {
	id := b.ID()
	active, err := s.Active()
	if err != nil {
		return Meta{}, err
	}
	if active != "" {
		if am, err := s.Meta(active); err == nil && !opts.AllowDowngrade && scripts.CompareVersions(b.Manifest.Version, am.Version) < 0 {
			return Meta{}, fmt.Errorf("%w: %s is %s, the installed one is %s: give --allow-downgrade to install it anyway", ErrDowngrade, opts.Source, b.Manifest.Version, am.Version)
		}
	}
	if err := os.MkdirAll(s.versions(), 0o755); err != nil {
		return Meta{}, fmt.Errorf("install: %w", err)
	}
	meta := Meta{ID: id, Version: b.Manifest.Version, Source: opts.Source, Signer: b.Signer.ID(), SignerComment: b.Signer.Comment, Installed: time.Now().UTC()}
	if active == id {
		return meta, nil // the same bundle is already active
	}
	if _, ok := opts.UserKeys.find(b.Signer.Key); ok {
		if err := s.rememberKey(b.Signer); err != nil {
			return Meta{}, err
		}
	}
	tmp, err := os.MkdirTemp(s.versions(), ".tmp-"+id+"-")
	if err != nil {
		return Meta{}, fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range b.Files {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return Meta{}, fmt.Errorf("install: %w", err)
		}
		if err := writeSynced(p, data); err != nil {
			return Meta{}, fmt.Errorf("install: %w", err)
		}
	}
	final := filepath.Join(s.versions(), id)
	// Same id, same manifest hash: a leftover copy of this very bundle, possibly damaged.
	if err := os.RemoveAll(final); err != nil {
		return Meta{}, fmt.Errorf("install: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return Meta{}, fmt.Errorf("install: %w", err)
	}
	mb, _ := json.MarshalIndent(meta, "", "  ")
	if err := atomicfile.WriteFile(final+".json", append(mb, '\n'), 0o644); err != nil {
		return Meta{}, fmt.Errorf("install: %w", err)
	}
	if active != "" {
		if err := s.setPointer(previousName, active); err != nil {
			return Meta{}, fmt.Errorf("install: %w", err)
		}
	}
	if err := s.setPointer(activeName, id); err != nil {
		return Meta{}, fmt.Errorf("install: %w", err)
	}
	s.prune()
	return meta, nil
}

func writeSynced(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Store) rememberKey(k PublicKey) error {
	have, err := s.UserKeys()
	if err != nil {
		return err
	}
	if _, ok := have.find(k.Key); ok {
		return nil
	}
	var b strings.Builder
	for _, h := range append(have, k) {
		b.WriteString(h.String())
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir, userTrust), []byte(b.String()), 0o644)
}

// prune removes versions that are neither active nor previous: only one step back is kept.
// Best effort: a leftover directory costs disk, not correctness.
func (s *Store) prune() {
	active, _ := s.Active()
	previous, _ := s.Previous()
	entries, err := os.ReadDir(s.versions())
	if err != nil {
		return
	}
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), ".json")
		if id == active || id == previous || strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		os.RemoveAll(filepath.Join(s.versions(), e.Name()))
	}
}

// Rollback makes the previous version active again, and the active one previous, so that a
// second rollback undoes the first.
func (s *Store) Rollback() (from, to string, err error) {
	active, err := s.Active()
	if err != nil {
		return "", "", err
	}
	previous, err := s.Previous()
	if err != nil {
		return "", "", err
	}
	if previous == "" {
		return "", "", errors.New("no previous version to roll back to (one is kept after each install)")
	}
	if err := s.setPointer(activeName, previous); err != nil {
		return "", "", err
	}
	if active != "" {
		if err := s.setPointer(previousName, active); err != nil {
			return "", "", err
		}
	}
	return active, previous, nil
}

// Load reads an installed version into memory and verifies it as a bundle: every file
// hashed, nothing extra or missing, no links, signed by one of keys, and the directory name
// matching the manifest, so a validly signed manifest of another bundle cannot be swapped in.
func (s *Store) Load(id string, keys Keyring) (*Bundle, error) {
	dir := filepath.Join(s.versions(), id)
	source := "installed scripts " + id
	files := Files{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file (a link or device was put in)", ErrContent, filepath.ToSlash(rel))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if total += info.Size(); info.Size() > maxEntrySize || total > maxTotalSize {
			return fmt.Errorf("%w: %s is too large", ErrContent, filepath.ToSlash(rel))
		}
		data, err := readfile.Read(p, readfile.Kind{Name: "installed bundle file", Max: maxEntrySize})
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	b, err := Verify(files, keys, source)
	if err != nil {
		return nil, err
	}
	if b.ID() != id {
		return nil, fmt.Errorf("%s: %w: its manifest.yaml belongs to bundle %s (the manifest was replaced)", source, ErrContent, b.ID())
	}
	b.Set.Source = source
	return b, nil
}

// LoadActive is the verified active bundle; if it is refused, the previous one, with a
// warning on warn saying why. nil, nil when nothing usable is installed: the caller runs the
// embedded set (and says so when something was refused).
func (s *Store) LoadActive(keys Keyring, warn io.Writer) (*Bundle, error) {
	active, err := s.Active()
	if err != nil {
		fmt.Fprintf(warn, "warning: %v\n", err)
	}
	if active == "" {
		return nil, err
	}
	b, err := s.Load(active, keys)
	if err == nil {
		return b, nil
	}
	fmt.Fprintf(warn, "warning: refusing the installed scripts %s: %v\n", active, err)
	previous, perr := s.Previous()
	if perr != nil || previous == "" || previous == active {
		return nil, err
	}
	pb, perr := s.Load(previous, keys)
	if perr != nil {
		fmt.Fprintf(warn, "warning: refusing the previous scripts %s too: %v\n", previous, perr)
		return nil, err
	}
	fmt.Fprintf(warn, "warning: running the previous installed scripts %s instead\n", previous)
	return pb, err
}
