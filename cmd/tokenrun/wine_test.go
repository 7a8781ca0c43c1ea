//go:build wine

// The Windows build, run under wine: what a client on Windows sees. .ci/windows.sh runs
// these (go test -tags wine -run TestWindowsUnderWine ./cmd/tokenrun); the tag keeps the
// minute-long cross-build and wine out of the ordinary `go test ./...`. Under CI=true a
// missing wine64 or mingw-w64 fails the test, as every missing tool does.
//
// Wine 8.0 (Debian bookworm) lacks two things Go 1.26's Windows runtime uses, and the tests
// work around both without touching tokenrun.exe:
//   - bcryptprimitives.dll!ProcessPrng, without which the exe dies at start: a test-only shim
//     DLL (testdata/windows/processprng.c) is installed into the throwaway prefix.
//   - FileDispositionInformationEx, which os.RemoveAll uses: wine answers "Invalid function",
//     so a RemoveAll inside tokenrun.exe fails under wine (not on Windows 10). Nothing here
//     depends on one; Go test binaries built for Windows fail their t.TempDir cleanup for the
//     same reason, which is why the Windows checks are runs of tokenrun.exe, not `go test`
//     under wine.

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/diagnose"
	"github.com/tokenrun/tokenrun/internal/textenc"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// wine is a throwaway wine prefix with tokenrun.exe and the ProcessPrng shim.
type wine struct {
	wine, server string // the wine64 loader and wineserver
	prefix       string // WINEPREFIX
	exe          string // tokenrun.exe on the host
	shim         string // the built shim DLL, also a stand-in for a DLL that is no PKCS#11 module
}

// hostTool finds a program: $env, then the names on PATH, then fixed paths (Debian's wine64
// package puts its loader in /usr/lib/wine, off PATH). Missing, the test is Unavailable.
func hostTool(t *testing.T, env, hint string, names ...string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	for _, n := range names {
		if filepath.IsAbs(n) {
			if _, err := os.Stat(n); err == nil {
				return n
			}
		} else if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	p11test.Unavailable(t, "%s not found (set %s): %s", names[0], env, hint)
	return ""
}

const wineHint = "run .ci/windows.sh, or apt-get install gcc-mingw-w64-x86-64-win32 wine64"

func setupWine(t *testing.T) *wine {
	t.Helper()
	w := &wine{
		wine:   hostTool(t, "WINE", wineHint, "wine64", "/usr/lib/wine/wine64", "wine"),
		prefix: filepath.Join(t.TempDir(), "prefix"),
	}
	w.server = hostTool(t, "WINESERVER", wineHint, filepath.Join(filepath.Dir(w.wine), "wineserver"), "wineserver")
	cc := hostTool(t, "CC_WINDOWS", wineHint, "x86_64-w64-mingw32-gcc")
	bin := t.TempDir()

	start := time.Now()
	w.exe = os.Getenv("TOKENRUN_EXE") // .ci/windows.sh passes the one .ci/cross.sh built
	if w.exe == "" {
		w.exe = filepath.Join(bin, "tokenrun.exe")
		build := exec.Command("go", "build", "-o", w.exe, ".")
		build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=1", "CC="+cc)
		out, err := build.CombinedOutput()
		require.NoError(t, err, "cross-build tokenrun.exe: %s", out)
	}
	t.Logf("tokenrun.exe ready in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	w.shim = filepath.Join(bin, "bcryptprimitives.dll")
	out, err := exec.Command(cc, "-shared", "-O2", "-o", w.shim,
		"../../testdata/windows/processprng.c", "../../testdata/windows/processprng.def", "-ladvapi32").CombinedOutput()
	require.NoError(t, err, "build the ProcessPrng shim: %s", out)

	// A persistent wineserver for the prefix, so that each run does not start one; killed
	// (this prefix's only) when the test ends, before its directory is removed.
	require.NoError(t, os.Mkdir(w.prefix, 0o700))
	srv := exec.Command(w.server, "-p") // it daemonises: no pipe for its output, or Run waits on it
	srv.Env = w.env(nil)
	require.NoError(t, srv.Run(), "wineserver -p")
	t.Cleanup(func() {
		k := exec.Command(w.server, "-k")
		k.Env = w.env(nil)
		_ = k.Run()
	})
	// wineboot starts the prefix's services, which keep its stdout: a pipe would never close.
	boot := exec.Command(w.wine, "wineboot", "-i")
	boot.Env = w.env(nil)
	require.NoError(t, boot.Run(), "wineboot -i")
	system32 := filepath.Join(w.prefix, "drive_c", "windows", "system32")
	copyFile(t, w.shim, filepath.Join(system32, "bcryptprimitives.dll"))
	t.Logf("wine prefix made in %s", time.Since(start).Round(time.Millisecond))
	return w
}

// env is the environment of a wine process: the test's own (wine passes it on), the
// prefix, wine's debug output off, and no Mono or Gecko install prompts.
func (w *wine) env(extra []string) []string {
	env := append(os.Environ(), "WINEPREFIX="+w.prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
	return append(env, extra...)
}

// command is tokenrun.exe args in dir, as a client types them there; env adds to the
// environment ("TOKENRUN_HOME=" leaves the data directory to Windows).
func (w *wine) command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.wine, append([]string{w.exe}, args...)...)
	cmd.Dir = dir
	cmd.Env = w.env(env)
	return cmd
}

type wineResult struct {
	code           int
	stdout, stderr string
}

// run runs tokenrun.exe to its end (two minutes at most: a guard, not a measurement).
func (w *wine) run(t *testing.T, dir string, env []string, args ...string) wineResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := w.command(ctx, dir, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := wineResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	require.NoError(t, ctx.Err(), "tokenrun.exe %s did not end: %s%s", strings.Join(args, " "), r.stdout, r.stderr)
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		require.NoError(t, err)
	}
	t.Logf("tokenrun.exe %s: exit %d in %s", strings.Join(args, " "), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

// unixWords are what a Windows client must never be told: mode bits, chmod, Unix paths and
// tools, Unix signal names.
var unixWords = []string{"chmod", "(mode 0", "can be read by other users", "/etc/", "ldd ", ".so file", "SIGINT", "SIGTERM"}

// assertNative fails with the offending lines of out when one holds a Unix-only word.
func assertNative(t *testing.T, out string) {
	t.Helper()
	assert.Empty(t, linesWith(out, unixWords...), "Unix-only words in what a Windows client reads")
}

// linesWith is the lines of out holding any of words (case-insensitive).
func linesWith(out string, words ...string) []string {
	var found []string
	for _, line := range strings.Split(out, "\n") {
		for _, w := range words {
			if strings.Contains(strings.ToLower(line), strings.ToLower(w)) {
				found = append(found, line)
				break
			}
		}
	}
	return found
}

// TestWindowsUnderWine runs tokenrun.exe as a Windows client would: the demo end to end,
// enrollments from answers files saved by Notepad and PowerShell, Ctrl-C during an
// enrollment, data under %APPDATA%, module and trust-file checks in Windows terms, and the
// wizard served to another program over loopback.
func TestWindowsUnderWine(t *testing.T) {
	w := setupWine(t)

	t.Run("demo", func(t *testing.T) {
		r := w.run(t, t.TempDir(), nil, "demo")
		out := r.stdout + r.stderr
		require.Equal(t, runner.ExitOK, r.code, out)
		for _, want := range []string{"Registration is complete", "The token password has been changed", "payment-order.txt -> payment-order.txt.p7s", "result:     VERIFIED"} {
			assert.Contains(t, out, want)
		}
		assert.Empty(t, linesWith(out, "warning"), "the demo warns about nothing on Linux, nor may it on Windows")
		assertNative(t, out)
	})

	t.Run("answers files from Windows editors", func(t *testing.T) {
		ca := newEnrollCA(t)
		ca.start(t, devca.ServerOptions{})
		for _, enc := range []struct {
			name   string
			encode func(string) []byte
		}{
			{"Notepad UTF-8 CRLF", func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }},
			{"PowerShell UTF-16LE BOM CRLF", func(s string) []byte { return textenc.UTF16(strings.ReplaceAll(s, "\n", "\r\n"), false) }},
		} {
			t.Run(enc.name, func(t *testing.T) {
				dir := t.TempDir()
				copyFile(t, ca.KeyFile, filepath.Join(dir, "Key.pfx"))
				copyFile(t, ca.Roots, filepath.Join(dir, "roots.pem"))
				// The OTP PIN in its own file, saved the same way: read as bytes it would be a
				// wrong PIN.
				require.NoError(t, os.WriteFile(filepath.Join(dir, "otp.txt"), enc.encode(golden.EnrollOTP+"\n"), 0o600))
				answers := fmt.Sprintf("# saved on Windows\nvalidity: 1y\nuser_id: %s\notp_pin: {file: otp.txt}\nkey_file: Key.pfx\n"+
					"pin_is_password: true\nprofile_name: ТОО Ақ жол\nnew_pin: %s\nnew_pin_confirm: %s\nconfirm: yes\n", golden.EnrollUser, newPIN, newPIN)
				require.NoError(t, os.WriteFile(filepath.Join(dir, "answers.yaml"), enc.encode(answers), 0o600))

				r := w.run(t, dir, nil, "enroll", "--soft", "token", "--answers", "answers.yaml", "--yes", "--lang", "en",
					"--set", "ca.url="+ca.URL, "--set", "ca.roots=roots.pem")
				out := r.stdout + r.stderr
				require.Equal(t, runner.ExitOK, r.code, out)
				assert.Contains(t, out, "Registration is complete")
				assert.Contains(t, out, "ТОО Ақ жол", "the profile name came through UTF-16 intact")
				assertNative(t, out)
				assertNoSecrets(t, enrollAnswers(ca), out)
			})
		}
	})

	t.Run("Ctrl-C during the CA step", func(t *testing.T) {
		ca := newEnrollCA(t)
		ca.start(t, devca.ServerOptions{})
		dir, serial := softToken(t)
		home := t.TempDir()
		args := append([]string{"enroll", "--soft", dir, "--lang", "en", "--ui", "json"}, ca.Args()...)
		args = append(args, "--set", "ca.url=https://"+hungCA(t))
		p := startProc(t, w.command(context.Background(), t.TempDir(), []string{"TOKENRUN_HOME=" + home}, args...))
		waitLine(t, p.out, `"type":"progress","id":"request_certificate"`, p.answerJSON(t, enrollAnswers(ca)))
		// wine turns SIGINT into the console's CTRL_C_EVENT, which is what Ctrl-C in a
		// Windows console sends.
		require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
		code, stdout, stderr := p.wait(t)
		require.Equal(t, runner.ExitCancelled, code, stdout+stderr)
		assert.Contains(t, stderr, "Stopping after the current step")
		assert.Contains(t, stderr, "the certificate was being requested")
		assert.Contains(t, stderr, "it continues from the journal")
		assertNative(t, stderr)
		j, err := journal.Open(filepath.Join(home, "journal"))
		require.NoError(t, err)
		e, err := j.Load(serial)
		require.NoError(t, err, "the journal stays open for the rerun")
		assert.Equal(t, "requested", e.Step)
	})

	t.Run("data under APPDATA", func(t *testing.T) {
		// No TOKENRUN_HOME: the data directory is Windows' own for the user.
		r := w.run(t, t.TempDir(), []string{"TOKENRUN_HOME="}, "diagnose", "--probe=false")
		require.Equal(t, runner.ExitOK, r.code, r.stderr)
		out := []byte(r.stdout)
		var d diagnose.Report
		require.NoError(t, json.Unmarshal(out, &d), "%s", out)
		assert.Regexp(t, `^C:\\users\\[^\\]+\\AppData\\Roaming\\tokenrun$`, d.Home)
	})

	t.Run("modules in Windows terms", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, w.shim, filepath.Join(dir, "vendor.dll"))
		b, err := os.ReadFile(w.shim)
		require.NoError(t, err)
		// The same DLL claiming to be 32-bit: the PE machine field is 4 bytes past "PE\0\0".
		pe := binary.LittleEndian.Uint32(b[0x3c:])
		binary.LittleEndian.PutUint16(b[pe+4:], 0x14c) // IMAGE_FILE_MACHINE_I386
		require.NoError(t, os.WriteFile(filepath.Join(dir, "vendor32.dll"), b, 0o644))

		for _, tt := range []struct {
			module string
			want   []string
		}{
			{`C:\Program Files\Vendor\missing.dll`, []string{"no such file", `C:\Windows\System32`}},
			{"vendor.dll", []string{"no C_GetFunctionList", "not a PKCS#11 module"}},
			{"vendor32.dll", []string{"built for 32-bit x86", "this tokenrun is 64-bit x86 (amd64)", "SysWOW64"}},
		} {
			r := w.run(t, dir, nil, "tokens", "--module", tt.module)
			assert.Equal(t, runner.ExitUsage, r.code, r.stderr)
			for _, want := range tt.want {
				assert.Contains(t, r.stderr, want)
			}
			assertNative(t, r.stderr)
		}

		// diagnose finds a vendor's DLL where its installer puts it.
		system32 := filepath.Join(w.prefix, "drive_c", "windows", "system32")
		copyFile(t, w.shim, filepath.Join(system32, "eTPKCS11.dll"))
		defer os.Remove(filepath.Join(system32, "eTPKCS11.dll"))
		r := w.run(t, dir, nil, "diagnose")
		require.Equal(t, runner.ExitOK, r.code, r.stderr)
		var d diagnose.Report
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
		require.NotEmpty(t, d.Probed)
		var found []string
		for _, m := range d.Modules {
			found = append(found, m.Name+" "+m.Path)
			if m.Name == "SafeNet eToken" {
				assert.True(t, m.Found)
				assert.Contains(t, m.Error, "not a PKCS#11 module")
			}
		}
		assert.Contains(t, found, `SafeNet eToken C:\windows\System32\eTPKCS11.dll`)
	})

	t.Run("system trust file judged by its ACL", func(t *testing.T) {
		// Wine makes every file the user's: a trust file there is one a non-administrator
		// wrote, and must be ignored, said in Windows terms.
		key := filepath.Join(t.TempDir(), "release")
		r0 := tokenrun(t, "", "scripts", "keygen", "--out", key, "--comment", "planted")
		require.Equal(t, runner.ExitOK, r0.code, r0.err)
		pub, err := os.ReadFile(key + ".pub")
		require.NoError(t, err)
		// Read-only (mode 0444 to Go): the mode-bit check this replaced let such a file through.
		trust := filepath.Join(w.prefix, "drive_c", "ProgramData", "tokenrun", "trusted-keys")
		require.NoError(t, os.MkdirAll(filepath.Dir(trust), 0o755))
		require.NoError(t, os.WriteFile(trust, pub, 0o444))
		defer os.Remove(trust)
		r := w.run(t, t.TempDir(), nil, "diagnose", "--probe=false")
		require.Equal(t, runner.ExitOK, r.code, r.stderr)
		var d diagnose.Report
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
		for _, k := range d.TrustedKeys {
			assert.NotEqual(t, "planted", k.Comment, "a key a user planted is not trusted")
		}
		problems := strings.Join(d.Problems, "\n")
		assert.Contains(t, problems, `C:\ProgramData\tokenrun\trusted-keys is owned by`)
		assert.Contains(t, problems, "not by Administrators")
		assertNative(t, problems)
	})

	t.Run("wizard", func(t *testing.T) { wizardSmoke(t, w) })
}

// wizardSmoke is the wizard's smoke test under wine (issue 14): `tokenrun.exe ui
// --no-browser --soft DIR` prints its one-time address; curl, as another program on the
// machine, opens it over loopback (the launch token is exchanged for the session cookie and
// the page follows) and gets the wizard's HTML; Ctrl-C then stops the wizard.
func wizardSmoke(t *testing.T, w *wine) {
	curl := hostTool(t, "CURL", "apt-get install curl", "curl")
	dir := t.TempDir()
	p := startProc(t, w.command(context.Background(), dir, nil, "ui", "--no-browser", "--soft", "token", "--lang", "en"))
	launch := regexp.MustCompile(`http://127\.0\.0\.1:\d+/launch/\S+`)
	var url string
	waitLine(t, p.out, "http://127.0.0.1:", func(line string) { url = launch.FindString(line) })
	require.NotEmpty(t, url, "the launch address is printed")

	jar := filepath.Join(dir, "cookies")
	page := filepath.Join(dir, "page.html")
	out, err := exec.Command(curl, "-sS", "--max-time", "30", "-L", "-c", jar, "-b", jar, "-o", page,
		"-w", "%{http_code} %{content_type}", url).CombinedOutput()
	require.NoError(t, err, "curl %s: %s", url, out)
	assert.Equal(t, "200 text/html; charset=utf-8", string(out))
	body, err := os.ReadFile(page)
	require.NoError(t, err)
	assert.Contains(t, strings.ToLower(string(body)), "<!doctype html")
	assert.Contains(t, string(body), "<script", "the page's code is there")

	// The address worked once: a second use is refused.
	out, err = exec.Command(curl, "-sS", "--max-time", "30", "-o", os.DevNull, "-w", "%{http_code}", url).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "403", string(out))

	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	code, stdout, stderr := p.wait(t)
	assert.Equal(t, runner.ExitOK, code, "Ctrl-C ends the wizard normally: %s%s", stdout, stderr)
	assertNative(t, stdout+stderr)
}
