//go:build unix

package readfile

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	zeroLink := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.Symlink("/dev/zero", zeroLink))
	fifoLink := filepath.Join(dir, "answers.yaml")
	require.NoError(t, os.Symlink(fifo, fifoLink))

	for _, tt := range []struct {
		path, want string
	}{
		{"/dev/zero", "ca.roots /dev/zero is not a regular file (it is a character device)"},
		{"/dev/null", "ca.roots /dev/null is not a regular file (it is a character device)"},
		{fifo, "ca.roots " + fifo + " is not a regular file (it is a named pipe (FIFO))"},
		{fifoLink, "is not a regular file (it is a named pipe (FIFO))"},
		{zeroLink, "is not a regular file (it is a character device)"},
		{dir, "is not a regular file (it is a directory)"},
		{sock, "is not a regular file (it is a socket)"},
	} {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			start := time.Now()
			_, err := Read(tt.path, Roots)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrNotRegular)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, time.Since(start), time.Second, "must not block")
			_, err = ReadFS(os.DirFS("/"), strings.TrimPrefix(tt.path, "/"), Roots)
			assert.ErrorIs(t, err, ErrNotRegular, "ReadFS")
		})
	}
}

func TestReadCapsTheSize(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "answers.yaml")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(200_000_000)) // sparse: costs no disk
	f.Close()
	_, err = Read(big, Answers)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, "answers file "+big+" is 200 MB, more than the 1 MiB an answers file may hold", err.Error())

	_, err = ReadFS(os.DirFS(dir), "answers.yaml", Answers)
	require.ErrorIs(t, err, ErrTooLarge)

	ok := filepath.Join(dir, "pin")
	require.NoError(t, os.WriteFile(ok, []byte("12345678\n"), 0o600))
	b, err := Read(ok, PIN)
	require.NoError(t, err)
	assert.Equal(t, "12345678\n", string(b))

	exact := filepath.Join(dir, "exact")
	require.NoError(t, os.WriteFile(exact, make([]byte, PIN.Max), 0o600))
	b, err = Read(exact, PIN)
	require.NoError(t, err)
	assert.Len(t, b, int(PIN.Max))
	require.NoError(t, os.WriteFile(exact, make([]byte, PIN.Max+1), 0o600))
	_, err = Read(exact, PIN)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestReadMissingFileKeepsTheOSError(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "nope"), Answers)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.True(t, strings.HasPrefix(err.Error(), "open "), err.Error())
}

// A file that grows after it was opened is still read only up to the limit.
func TestOpenBoundsAGrowingFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	f, err := Open(p, PIN)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, os.WriteFile(p, make([]byte, 3*PIN.Max), 0o600))
	_, err = io.ReadAll(f)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestReadFS(t *testing.T) {
	fsys := fstest.MapFS{"a.yaml": {Data: []byte("x: 1")}, "big": {Data: make([]byte, Region.Max+1)}}
	b, err := ReadFS(fsys, "a.yaml", Region)
	require.NoError(t, err)
	assert.Equal(t, "x: 1", string(b))
	_, err = ReadFS(fsys, "big", Region)
	var re *Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "big", re.Path)
	_, err = ReadFS(fsys, "missing", Region)
	assert.True(t, errors.Is(err, fs.ErrNotExist))
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 4 << 10: "4 KiB", 200_000_000: "200 MB", 1500: "1.5 kB", 3 << 30: "3 GiB", 1_100_000: "1.1 MB", 12: "12 bytes", 64 << 20: "64 MiB"} {
		assert.Equal(t, want, Size(n))
	}
}

// A kind with Pipes reads a FIFO: at once as empty when nobody writes, else what is written.
func TestPipes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pin")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	start := time.Now()
	b, err := Read(fifo, PIN)
	require.NoError(t, err)
	assert.Empty(t, b)
	assert.Less(t, time.Since(start), time.Second)

	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			w.Write([]byte("12345678\n"))
			w.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	f, err := Open(fifo, PIN)
	require.NoError(t, err)
	defer f.Close()
	b, err = f.ReadAll()
	require.NoError(t, err)
	// The writer may open after us: then the first read can see EOF. Either is bounded.
	assert.Contains(t, []string{"", "12345678\n"}, string(b))

	_, err = Read("/dev/zero", PIN)
	assert.ErrorIs(t, err, ErrNotRegular, "a device is never a PIN")
}

// NoLinks (the software token's files) refuses a link, dangling or not.
func TestNoLinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	require.NoError(t, os.WriteFile(real, []byte("{}"), 0o600))
	link := filepath.Join(dir, "token.json")
	require.NoError(t, os.Symlink(real, link))
	dangling := filepath.Join(dir, "dangling.json")
	require.NoError(t, os.Symlink(filepath.Join(dir, "none"), dangling))
	for _, p := range []string{link, dangling} {
		_, err := Read(p, SoftState)
		require.ErrorIs(t, err, ErrNotRegular)
		assert.Contains(t, err.Error(), "is not a regular file (it is a symbolic link)")
	}
	b, err := Read(real, SoftState)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(b))
	b, err = Read(link, Record)
	require.NoError(t, err, "other kinds follow links")
	assert.Equal(t, "{}", string(b))
}
