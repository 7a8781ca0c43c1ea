// Package readfile is the one way tokenrun reads a file someone else may have put there:
// answers and region files, PEM roots, PKCS#12 containers, PIN files, transcripts, script
// bundles, the software token's state. It refuses what is not a regular file (a FIFO, a
// device such as /dev/zero, a directory, a socket) without blocking on it, and caps the size
// by kind, so that a wrongly chosen or hostile path ends in an error naming the file and the
// limit instead of a hang or an out-of-memory crash.
//
//	data, err := readfile.Read(path, readfile.Answers)
//
// Open is the streaming form (a bundle archive, a transcript read line by line): the
// returned reader fails once more than the kind's limit has been read, so a file that grows
// while being read is bounded too.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Kind is what a file is for: its name in messages and the most it may hold.
type Kind struct {
	Name string // "answers file", "ca.roots": how a message names the file
	Max  int64  // bytes
	// Pipes lets a pipe or FIFO be read too (a PIN from --pin-file <(pass show token)). It is
	// opened without blocking and read through the runtime's poller: a FIFO that nobody
	// writes to reads as empty at once, and reading waits only for a writer that is there.
	Pipes bool
	// NoLinks refuses a symbolic link in the last part of the path instead of following it
	// (a software token's own files: a link there was put by someone else).
	NoLinks bool
}

// The kinds tokenrun reads. Each limit is far above what a real file of the kind holds and
// far below what would hurt the process; the reason is next to it.
var (
	// Roots: a PEM bundle of CA certificates. A national CA's roots and intermediates are a
	// few KiB; the whole Mozilla root store is about 220 KiB.
	Roots = Kind{Name: "ca.roots", Max: 1 << 20}
	// PKCS12: an initial-key container (Key.pfx) holds one key and a short chain: a few KiB.
	PKCS12 = Kind{Name: "key container", Max: PKCS12Max}
	// Answers: a batch answers file maps a dozen prompt ids to short values.
	Answers = Kind{Name: "answers file", Max: 1 << 20}
	// Region: a region file or message catalog is a few hundred lines of YAML.
	Region = Kind{Name: "region file", Max: 1 << 20}
	// Transcript: one run's record; values over transcript.MaxValue are cut, so a run of
	// thousands of calls stays well under this.
	Transcript = Kind{Name: "transcript", Max: 64 << 20}
	// PIN: a PIN file holds one PIN (PKCS#11 allows up to 255 bytes) and a newline.
	PIN = Kind{Name: "PIN file", Max: 4 << 10, Pipes: true}
	// Bundle: a script bundle is a tar.gz of Lua, YAML and Markdown; the shipped tree packs
	// to about 100 KiB, and each entry is also capped when the archive is read.
	Bundle = Kind{Name: "script bundle", Max: 64 << 20}
	// SoftState: a software token's state file holds a handful of keys and certificates.
	SoftState = Kind{Name: "software token state", Max: 16 << 20, NoLinks: true}
	// Script: a Lua script run from disk; the runtime checks the source again on admission.
	Script = Kind{Name: "script", Max: 4 << 20}
	// Keys: a release key, a public key file or a trusted-keys list: lines of base64.
	Keys = Kind{Name: "key file", Max: 1 << 20}
	// BatchList: a batch's list of users (CSV or YAML), a few hundred bytes a row; 16 MiB
	// is tens of thousands of rows, more than a bank rolls out in one batch (batch.MaxRows).
	BatchList = Kind{Name: "batch list", Max: 16 << 20}
	// Floor: the safety floor's tries ledger and lock-holder files are a few hundred bytes;
	// they live in the user's own data directory, so a link there was put by someone else.
	Floor = Kind{Name: "safety floor file", Max: 64 << 10, NoLinks: true}
	// Record: a small JSON or YAML record tokenrun wrote itself (journal, install record,
	// active pointer, a development CA's files).
	Record = Kind{Name: "record", Max: 16 << 20}
	// Signature: a CMS signature file. Attached ones carry the document, and are read as a
	// stream (`tokenrun verify`), so the limit is a Document's plus a generous envelope.
	Signature = Kind{Name: "signature", Max: DocumentMax + 64<<20}
	// Document: a document to sign or to check a detached signature against. It is hashed
	// as it is read, never held, so memory sets no limit; the limit is CMS's: an attached
	// signature holds the document in an OCTET STRING with a four-octet length, so just
	// under 4 GiB (cms.MaxStreamDocument, the same number). A scanned contract of a
	// gigabyte fits.
	Document = Kind{Name: "document", Max: DocumentMax}
)

// DocumentMax is Document's limit: 4 GiB less 1 MiB, for the CMS envelope around an
// attached document.
const DocumentMax = 1<<32 - 1<<20

// PKCS12Max is PKCS12's limit as a constant, for the parser's own check of bytes in memory.
const PKCS12Max = 1 << 20

// Errors, for errors.Is; the *Error carrying them names the file and the limit.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file too large")
)

// Error says which file was refused and why.
type Error struct {
	Path string
	Kind Kind
	Err  error  // ErrNotRegular or ErrTooLarge
	What string // for ErrNotRegular: "a directory", "a named pipe (FIFO)", ...
	Size int64  // for ErrTooLarge: the size seen (at least Kind.Max+1)
}

func (e *Error) Error() string {
	if errors.Is(e.Err, ErrTooLarge) {
		return fmt.Sprintf("%s %s is %s, more than the %s %s may hold",
			e.Kind.Name, e.Path, Size(e.Size), Size(e.Kind.Max), article(e.Kind.Name))
	}
	return fmt.Sprintf("%s %s is not a regular file (it is %s)", e.Kind.Name, e.Path, e.What)
}

func (e *Error) Unwrap() error { return e.Err }

// article puts "a" or "an" before name.
func article(name string) string {
	if name != "" && strings.ContainsRune("aeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// Size writes n bytes for a person: 200 MB, 1 MiB, 512 bytes.
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0 && n < 1<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1e9:
		return decimal(float64(n)/1e9) + " GB"
	case n >= 1e6:
		return decimal(float64(n)/1e6) + " MB"
	case n >= 1e3:
		return decimal(float64(n)/1e3) + " kB"
	}
	return fmt.Sprintf("%d bytes", n)
}

// decimal writes x with one decimal under 10 (1.1 MB), none above (200 MB).
func decimal(x float64) string {
	if x < 10 {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", x), ".0")
	}
	return fmt.Sprintf("%.0f", x)
}

// Read reads the regular file at path whole, refusing anything else and anything over
// kind.Max. Errors opening it are the os errors as they are (*fs.PathError, naming the
// path), so callers keep their own wording for a missing file.
func Read(path string, kind Kind) ([]byte, error) {
	f, err := Open(path, kind)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadAll()
}

// File is an open regular file whose reads stop with an *Error past its kind's limit.
type File struct {
	f    *os.File
	path string
	kind Kind
	size int64 // from fstat at open
	read int64
}

// Open opens the regular file at path for reading. It never blocks on a FIFO or a device:
// the open is non-blocking where the system has that, and the opened file is checked before
// anything is read from it.
func Open(path string, kind Kind) (*File, error) {
	f, err := openNonblock(path, kind)
	if err != nil {
		var re *Error
		if errors.As(err, &re) {
			return nil, err
		}
		// A socket cannot be opened at all (ENXIO), a link with NoLinks neither (ELOOP): say
		// what it is rather than why not.
		if fi, serr := os.Lstat(path); serr == nil && fi.Mode()&fs.ModeSymlink != 0 && kind.NoLinks {
			return nil, &Error{Path: path, Kind: kind, Err: ErrNotRegular, What: "a symbolic link"}
		}
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
			return nil, check(path, kind, fi)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := check(path, kind, fi); err != nil {
		f.Close()
		return nil, err
	}
	return &File{f: f, path: path, kind: kind, size: fi.Size()}, nil
}

// check refuses what is not a regular file or is larger than kind allows.
func check(path string, kind Kind, fi fs.FileInfo) error {
	if kind.Pipes && fi.Mode()&fs.ModeNamedPipe != 0 {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return &Error{Path: path, Kind: kind, Err: ErrNotRegular, What: describe(fi.Mode())}
	}
	if fi.Size() > kind.Max {
		return &Error{Path: path, Kind: kind, Err: ErrTooLarge, Size: fi.Size()}
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file"
}

// Stat is the opened file's information (its mode and owner, for a file whose permissions
// matter).
func (f *File) Stat() (fs.FileInfo, error) { return f.f.Stat() }

// Size is the file's size when it was opened.
func (f *File) Size() int64 { return f.size }

// Name is the path it was opened with.
func (f *File) Name() string { return f.path }

// Read reads up to the kind's limit; reading past it is an *Error wrapping ErrTooLarge.
func (f *File) Read(p []byte) (int, error) {
	if f.read > f.kind.Max {
		return 0, &Error{Path: f.path, Kind: f.kind, Err: ErrTooLarge, Size: f.read}
	}
	if rest := f.kind.Max + 1 - f.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := f.f.Read(p)
	f.read += int64(n)
	if f.read > f.kind.Max {
		return n, &Error{Path: f.path, Kind: f.kind, Err: ErrTooLarge, Size: f.read}
	}
	return n, err
}

// ReadAll reads the rest of the file, within the limit.
func (f *File) ReadAll() ([]byte, error) {
	buf := make([]byte, 0, min(f.size, f.kind.Max)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			var re *Error
			if errors.As(err, &re) {
				return nil, err
			}
			return nil, fmt.Errorf("read %s %s: %w", f.kind.Name, f.path, err)
		}
	}
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadFS is Read for a file of fsys (a scripts tree: embedded, a directory, a checked
// bundle). It checks the file with fs.Stat before opening it, since an fs.FS cannot open
// without blocking, and checks the opened file again.
func ReadFS(fsys fs.FS, name string, kind Kind) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := check(name, kind, fi); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := check(name, kind, fi); err != nil {
		return nil, err
	}
	lf := &File{path: name, kind: kind, size: fi.Size()}
	data, err := io.ReadAll(&fsReader{r: f, lf: lf})
	if err != nil {
		var re *Error
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s %s: %w", kind.Name, name, err)
	}
	return data, nil
}

type fsReader struct {
	r  io.Reader
	lf *File
}

func (r *fsReader) Read(p []byte) (int, error) {
	if r.lf.read > r.lf.kind.Max {
		return 0, &Error{Path: r.lf.path, Kind: r.lf.kind, Err: ErrTooLarge, Size: r.lf.read}
	}
	if rest := r.lf.kind.Max + 1 - r.lf.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.r.Read(p)
	r.lf.read += int64(n)
	if r.lf.read > r.lf.kind.Max {
		return n, &Error{Path: r.lf.path, Kind: r.lf.kind, Err: ErrTooLarge, Size: r.lf.read}
	}
	return n, err
}
