package main

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

// streamPeakRSS is the bound on a sign or verify process for a document of any size: the
// Go runtime, the token layer and a 64 KiB read buffer, not the document.
const streamPeakRSS = 64 << 20

// TestDocumentCapIsCMSs: the reader's cap for documents is the largest the signer takes.
func TestDocumentCapIsCMSs(t *testing.T) {
	assert.EqualValues(t, cms.MaxStreamDocument, readfile.DocumentMax)
}

// runAsMain runs this test binary as tokenrun in a new process and returns its exit code,
// its output and its peak resident set. The peak is the process's own VmHWM, read by
// itself as it exits (writePeakRSS): ru_maxrss from wait4 is no good here, since Go starts
// children with vfork semantics and Linux carries the parent's high-water mark across exec.
func runAsMain(t *testing.T, args ...string) (code int, out string, peak int64) {
	t.Helper()
	peakFile := filepath.Join(t.TempDir(), "peak")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TOKENRUN_TEST_AS_MAIN=1", "TOKENRUN_TEST_PEAK_RSS_FILE="+peakFile)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	b, err := os.ReadFile(peakFile)
	require.NoError(t, err, "the process wrote no peak RSS")
	peak, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	require.NoError(t, err)
	return cmd.ProcessState.ExitCode(), buf.String(), peak
}

// writePeakRSS writes this process's peak resident set in bytes (VmHWM) to path, if set.
func writePeakRSS(path string) {
	if path == "" {
		return
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			if err == nil {
				_ = os.WriteFile(path, []byte(strconv.FormatInt(n<<10, 10)), 0o600)
			}
		}
	}
}

// bigDocument writes a file of size bytes: pseudorandom megabytes at both ends, a hole
// (zeros, no disk) between, so that a change anywhere that matters is seen.
func bigDocument(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	r := rand.New(rand.NewPCG(uint64(size), 9))
	head := make([]byte, 1<<20)
	for i := range head {
		head[i] = byte(r.Uint32())
	}
	_, err = f.Write(head)
	require.NoError(t, err)
	_, err = f.WriteAt(head, size-int64(len(head)))
	require.NoError(t, err)
}

func fileSHA256(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return h.Sum(nil)
}

// TestSignLargeDocumentStreams: a 200 MB document is signed detached and attached and both
// signatures verified, each in a process whose peak RSS stays under streamPeakRSS, and
// OpenSSL accepts both.
func TestSignLargeDocumentStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 400 MB")
	}
	ca := newGoCA(t, "Test Root")
	tok := softSigner(t, ca)
	dir := t.TempDir()
	doc := filepath.Join(dir, "contract.pdf")
	const size = 200 << 20
	bigDocument(t, doc, size)
	pin := writeFile(t, filepath.Join(t.TempDir(), "pin"), "12345678\n")
	uri := "pkcs11:token=KAZTOKEN;object=payments"

	for _, detached := range []bool{true, false} {
		name := map[bool]string{true: "detached", false: "attached"}[detached]
		t.Run(name, func(t *testing.T) {
			sig := filepath.Join(dir, name+".p7s")
			args := []string{"sign", "--soft", tok, "--token", uri, "--pin-file", pin, "--out", sig, doc}
			if detached {
				args = append(args, "--detached")
			}
			code, out, peak := runAsMain(t, args...)
			require.Equal(t, exitOK, code, out)
			assert.Contains(t, out, doc+" -> "+sig)
			assert.Less(t, peak, int64(streamPeakRSS), "peak RSS of sign of %d MB %s: %d MB", size>>20, name, peak>>20)
			t.Logf("sign %s of %d MiB: peak RSS %.1f MiB", name, size>>20, float64(peak)/(1<<20))

			vargs := []string{"verify", "--in", sig, "--roots", ca.pemFile}
			content := ""
			if detached {
				vargs = append(vargs, "--content", doc)
				content = doc
			}
			code, out, peak = runAsMain(t, vargs...)
			require.Equal(t, exitOK, code, out)
			assert.Contains(t, out, "VERIFIED")
			assert.Less(t, peak, int64(streamPeakRSS), "peak RSS of verify of %d MB %s: %d MB", size>>20, name, peak>>20)
			t.Logf("verify %s of %d MiB: peak RSS %.1f MiB", name, size>>20, float64(peak)/(1<<20))

			// OpenSSL, a verifier we did not write (its output checked by digest, so that
			// this process does not grow by the document).
			recovered := filepath.Join(dir, "recovered")
			oargs := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-CAfile", ca.pemFile, "-purpose", "any", "-out", recovered}
			if detached {
				oargs = append(oargs, "-content", content)
			}
			msg, err := exec.Command("openssl", oargs...).CombinedOutput()
			require.NoError(t, err, "%s", msg)
			assert.Equal(t, fileSHA256(t, doc), fileSHA256(t, recovered), "OpenSSL recovered the document")
			os.Remove(recovered)

			// A document changed after signing is caught, still streamed.
			if detached {
				other := filepath.Join(dir, "other.pdf")
				bigDocument(t, other, size)
				f, err := os.OpenFile(other, os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = f.WriteAt([]byte{1}, size/2)
				require.NoError(t, err)
				require.NoError(t, f.Close())
				code, out, _ = runAsMain(t, "verify", "--in", sig, "--roots", ca.pemFile, "--content", other)
				assert.Equal(t, exitVerify, code, out)
				assert.True(t, strings.Contains(out, "does not match"), out)
				os.Remove(other)
			}
		})
	}
}
