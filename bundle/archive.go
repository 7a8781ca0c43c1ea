package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/scripts"
)

// The two files at a bundle's root that the manifest's file list leaves out: the manifest
// cannot hash itself, and the signature is over it.
const (
	manifestName  = "manifest.yaml"
	signatureName = "manifest.sig"
)

// Limits on what an archive may hold. A scripts tree is a few hundred kilobytes; the limits
// keep a hostile archive from filling memory or disk before its signature is checked.
// Variables so that tests can lower them.
var (
	maxEntrySize int64 = 8 << 20
	maxTotalSize int64 = 64 << 20
	maxEntries         = 4096
)

// Files is a bundle's content by slash path, including manifest.yaml and manifest.sig.
type Files map[string][]byte

// Bundle is a verified bundle.
type Bundle struct {
	Manifest scripts.Manifest
	Signer   PublicKey
	Files    Files
	Set      *scripts.Set
}

// ID names the bundle's install directory: its version and a short hash of its manifest, so
// that two different bundles claiming one version never share a directory.
func (b *Bundle) ID() string {
	sum := sha256.Sum256(b.Files[manifestName])
	return b.Manifest.Version + "-" + hex.EncodeToString(sum[:6])
}

// checkPath refuses any path that could land outside the tree or name one file two ways.
func checkPath(name string) error {
	switch {
	case name == "":
		return errors.New("empty path")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name) || (len(name) > 1 && name[1] == ':'):
		return fmt.Errorf("absolute path %q", name)
	case strings.Contains(name, `\`):
		return fmt.Errorf("path %q contains a backslash", name)
	case !fs.ValidPath(name):
		return fmt.Errorf("path %q leaves the tree or is not clean (.., ., empty or trailing parts)", name)
	}
	return nil
}

// Pack signs the scripts tree in dir and writes the bundle archive to w. manifest.yaml is
// rewritten with every file's hash, the regions and each procedure's version; the tree
// must load as a scripts set first, so a broken tree is never signed.
func Pack(dir string, key PrivateKey, w io.Writer) (*scripts.Manifest, error) {
	files := Files{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file (links are not packed: copy the file in instead)", p)
		}
		if rel == signatureName {
			return nil // a previous signature; a new one is made
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxEntrySize {
			return fmt.Errorf("%s is %d bytes; a bundle file may have at most %d", p, info.Size(), maxEntrySize)
		}
		if total += info.Size(); total > maxTotalSize {
			return fmt.Errorf("the tree %s is over %d bytes, the most a bundle may hold", dir, maxTotalSize)
		}
		data, err := readfile.Read(p, readfile.Kind{Name: "bundle file", Max: maxEntrySize})
		if err != nil {
			return err
		}
		files[rel] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	raw, ok := files[manifestName]
	if !ok {
		return nil, fmt.Errorf("pack %s: no manifest.yaml at its root (start from tokenrun scripts export)", dir)
	}
	if _, err := scripts.Load(mapFS(files), dir); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	var m scripts.Manifest
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("pack %s: manifest.yaml: %w", dir, err)
	}
	if !scripts.IsVersion(m.Version) {
		return nil, fmt.Errorf("pack %s: manifest.yaml version %q is not a version like 1.2.3: installs compare versions", dir, m.Version)
	}
	m.Files = map[string]string{}
	m.Regions = nil
	for name, data := range files {
		if name == manifestName {
			continue
		}
		sum := sha256.Sum256(data)
		m.Files[name] = hex.EncodeToString(sum[:])
		if r, ok := strings.CutPrefix(name, "regions/"); ok && path.Ext(r) == ".yaml" && !strings.Contains(r, "/") {
			m.Regions = append(m.Regions, strings.TrimSuffix(r, ".yaml"))
		}
	}
	sort.Strings(m.Regions)
	if m.ProcedureVersions == nil {
		m.ProcedureVersions = map[string]scripts.ProcedureVersion{}
	}
	for name, file := range m.Procedures {
		if _, ok := m.ProcedureVersions[name]; ok {
			continue // declared by the bank: it wins over what is read from the script
		}
		pv, err := procedureVersion(files[file])
		if err != nil {
			return nil, fmt.Errorf("pack %s: procedure %s (%s): %w; or declare it under procedure_versions in manifest.yaml", dir, name, file, err)
		}
		m.ProcedureVersions[name] = pv
	}
	out, err := yaml.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	files[manifestName] = append([]byte("# Signed tokenrun scripts bundle: every file is listed with its SHA-256; manifest.sig signs this file.\n"), out...)
	// The rewritten manifest must load too (the new fields included), or installs would fail.
	if _, err := scripts.Load(mapFS(files), dir); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	files[signatureName] = ed25519.Sign(key.Key, files[manifestName])
	if err := writeArchive(w, files); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	return &m, nil
}

// The version and api a procedure file returns, read from its text: a bundle is listed and
// checked without running any of it. The last assignment wins, as the metadata table ends
// the file.
var (
	versionRe = regexp.MustCompile(`(?m)^\s*version\s*=\s*"([^"]+)"`)
	apiRe     = regexp.MustCompile(`(?m)^\s*api\s*=\s*(\d+)`)
)

func procedureVersion(src []byte) (scripts.ProcedureVersion, error) {
	vs, as := versionRe.FindAllSubmatch(src, -1), apiRe.FindAllSubmatch(src, -1)
	if len(vs) == 0 || len(as) == 0 {
		return scripts.ProcedureVersion{}, errors.New(`no version = "x.y.z" and api = N lines found in the file`)
	}
	api, err := strconv.Atoi(string(as[len(as)-1][1]))
	if err != nil {
		return scripts.ProcedureVersion{}, err
	}
	return scripts.ProcedureVersion{Version: string(vs[len(vs)-1][1]), API: api}, nil
}

func writeArchive(w io.Writer, files Files) error {
	names := make([]string, 0, len(files))
	for n := range files {
		if n != manifestName && n != signatureName {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	// The manifest and signature first, so a reader meets them before the tree.
	names = append([]string{manifestName, signatureName}, names...)
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Read reads a bundle archive without trusting any of it: only regular files with clean
// relative paths, each once, within the size limits. Nothing is written to disk.
func Read(r io.Reader) (Files, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a gzip-compressed tar archive: %w", ErrArchive, err)
	}
	tr := tar.NewReader(gz)
	files := Files{}
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrArchive, err)
		}
		name := hdr.Name
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			if err := checkPath(strings.TrimSuffix(name, "/")); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrArchive, err)
			}
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return nil, fmt.Errorf("%w: entry %q is a link (to %q): a bundle holds only regular files", ErrArchive, name, hdr.Linkname)
		default:
			return nil, fmt.Errorf("%w: entry %q is of type %q: a bundle holds only regular files", ErrArchive, name, string(hdr.Typeflag))
		}
		if err := checkPath(name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrArchive, err)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice: which copy counts would depend on the reader", ErrArchive, name)
		}
		if len(files) >= maxEntries {
			return nil, fmt.Errorf("%w: more than %d files", ErrArchive, maxEntries)
		}
		if hdr.Size > maxEntrySize {
			return nil, fmt.Errorf("%w: %q is %d bytes; a bundle file may have at most %d", ErrArchive, name, hdr.Size, maxEntrySize)
		}
		if total += hdr.Size; total > maxTotalSize {
			return nil, fmt.Errorf("%w: over %d bytes in all", ErrArchive, maxTotalSize)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxEntrySize+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrArchive, name, err)
		}
		if int64(len(data)) > maxEntrySize {
			return nil, fmt.Errorf("%w: %q is over %d bytes", ErrArchive, name, maxEntrySize)
		}
		files[name] = data
	}
	// A file and a directory of one name would unpack differently on each system.
	for name := range files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := files[d]; ok {
				return nil, fmt.Errorf("%w: %q is both a file and a directory", ErrArchive, d)
			}
		}
	}
	return files, nil
}

// Verify checks files against their signed manifest: the signature by a trusted key, every
// file's hash, nothing missing, nothing extra; then loads the set, which refuses procedures
// needing a newer API or tokenrun. source names the bundle in messages.
func Verify(files Files, keys Keyring, source string) (*Bundle, error) {
	raw, ok := files[manifestName]
	if !ok {
		return nil, fmt.Errorf("%s: %w: manifest.yaml is missing", source, ErrContent)
	}
	sig, ok := files[signatureName]
	if !ok {
		return nil, fmt.Errorf("%s: %w: manifest.sig is missing (an unsigned tree runs only with --scripts DIR)", source, ErrSignature)
	}
	signer, err := keys.verify(raw, sig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var m scripts.Manifest
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: manifest.yaml: %w", source, err)
	}
	if len(m.Files) == 0 {
		return nil, fmt.Errorf("%s: %w: manifest.yaml lists no files (make bundles with tokenrun scripts pack)", source, ErrContent)
	}
	// Versions name install directories and are printed: only SemVer, checked here, before
	// anything is installed (3.0.0-x/../../evil is no version).
	if !scripts.IsVersion(m.Version) {
		return nil, fmt.Errorf("%s: %w: manifest.yaml version %q is not a semantic version like 1.2.3 or 1.2.3-rc.1", source, ErrContent, m.Version)
	}
	for _, name := range sortedNames(m.ProcedureVersions) {
		if v := m.ProcedureVersions[name].Version; v != "" && !scripts.IsVersion(v) {
			return nil, fmt.Errorf("%s: %w: manifest.yaml gives procedure %q version %q, not a semantic version like 1.2.3", source, ErrContent, name, v)
		}
	}
	var problems []string
	for _, name := range sortedNames(m.Files) {
		if err := checkPath(name); err != nil || name == manifestName || name == signatureName {
			problems = append(problems, fmt.Sprintf("manifest lists a bad path %q", name))
			continue
		}
		data, ok := files[name]
		if !ok {
			problems = append(problems, termtext.Escape(name)+" is missing")
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != strings.ToLower(m.Files[name]) {
			problems = append(problems, termtext.Escape(name)+" was changed (its SHA-256 differs from the manifest's)")
		}
	}
	for _, name := range sortedNames(files) {
		if _, listed := m.Files[name]; !listed && name != manifestName && name != signatureName {
			problems = append(problems, termtext.Escape(name)+" is extra (not in the manifest)")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %w: %s", source, ErrContent, strings.Join(problems, "; "))
	}
	set, err := scripts.Load(mapFS(files), source)
	if err != nil {
		return nil, err
	}
	return &Bundle{Manifest: m, Signer: signer, Files: files, Set: set}, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// mapFS serves verified bytes from memory: what was checked is exactly what is loaded, with
// no second read from disk that someone could race.
func mapFS(files Files) fs.FS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: data, Mode: 0o444}
	}
	return m
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
