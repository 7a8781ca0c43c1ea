package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
)

// TestMain lets a test run this test binary as the tokenrun command itself, for commands
// that serve until a signal.
func TestMain(m *testing.M) {
	if os.Getenv("TOKENRUN_TEST_AS_MAIN") == "1" {
		code := runMain(append([]string{"tokenrun"}, os.Args[1:]...), os.Stdin, os.Stdout, os.Stderr)
		writePeakRSS(os.Getenv("TOKENRUN_TEST_PEAK_RSS_FILE"))
		os.Exit(code)
	}
	// Tests read English unless they ask for a language (the default region speaks ru).
	if os.Getenv("TOKENRUN_LANG") == "" {
		os.Setenv("TOKENRUN_LANG", "en")
	}
	// Procedures keep transcripts (and journals) under TOKENRUN_HOME: never in the home of
	// whoever runs the tests. Tests that look at them set their own.
	if os.Getenv("TOKENRUN_HOME") == "" {
		home, err := os.MkdirTemp("", "tokenrun-test-home")
		if err != nil {
			panic(err)
		}
		os.Setenv("TOKENRUN_HOME", home)
		code := m.Run()
		removeBuiltBinary()
		os.RemoveAll(home)
		os.Exit(code)
	}
	code := m.Run()
	removeBuiltBinary()
	os.Exit(code)
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestCAServeWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not found: apt-get install curl")
		}
		t.Skip("curl not found")
	}
	dir := filepath.Join(t.TempDir(), "ca")
	require.Equal(t, exitOK, tokenrun(t, "", "ca", "init", dir).code)
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "ca", "serve", "--dir", dir, "--listen", addr)
	cmd.Env = append(os.Environ(), "TOKENRUN_TEST_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// The server says where it listens once it does.
	lines := bufio.NewScanner(stderr)
	require.True(t, lines.Scan(), "no output from ca serve")
	require.Contains(t, lines.Text(), "EST server on https://"+addr)
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	out, err := exec.Command(curl, "-sS", "--max-time", "10", "--cacert", filepath.Join(dir, devca.RootCertFile),
		"https://"+addr+"/.well-known/est/cacerts").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9+/=\r\n]+$`), string(out), "base64 certs-only PKCS#7")

	// A SIGTERM is a normal stop.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("ca serve did not stop on SIGTERM")
	}
}

func TestCAServeRefusesBadListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	require.Equal(t, exitOK, tokenrun(t, "", "ca", "init", dir).code)
	r := tokenrun(t, "", "ca", "serve", "--dir", dir, "--listen", "nonsense")
	assert.Equal(t, exitUsage, r.code)
	assert.True(t, strings.Contains(r.err, "nonsense"), r.err)
}
