package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
)

// recordChangePin runs change-pin on a fresh software token with current as the PIN typed,
// and returns its transcript and the exit code.
func recordChangePin(t *testing.T, current string) (string, int) {
	t.Helper()
	t.Setenv("TOKENRUN_HOME", t.TempDir())
	dir, _ := softToken(t)
	const pin = "Rv3nT8wq"
	file := filepath.Join(t.TempDir(), "run.jsonl")
	r := tokenrun(t, "", "change-pin", "--soft", dir, "--yes", "--lang", "en", "--transcript", file, "--no-transcript",
		"--answers", writeAnswers(t, map[string]any{"current_pin": current, "new_pin": pin, "new_pin_confirm": pin}))
	return file, r.code
}

// exportedWith writes the shipped scripts tree with change_pin.lua edited by replacing old
// with new.
func exportedWith(t *testing.T, old, new string) string {
	t.Helper()
	return exportedFileWith(t, "change_pin.lua", old, new)
}

// exportedFileWith writes the shipped scripts tree with name (a path in the tree) edited
// by replacing old with new.
func exportedFileWith(t *testing.T, name, old, new string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "scripts")
	r := tokenrun(t, "", "scripts", "export", dir)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	file := filepath.Join(dir, filepath.FromSlash(name))
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(src), old)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(src), old, new, 1)), 0o644))
	return dir
}

func TestReplayReproducesChangePin(t *testing.T) {
	file, code := recordChangePin(t, "12345678")
	require.Equal(t, runner.ExitOK, code)
	h, _, _, _ := readTranscript(t, file)
	assert.Equal(t, "embedded", h.Args["scripts"], "ctx.args are recorded for the replay")

	embedded, err := scripts.Embedded()
	require.NoError(t, err)
	assert.Equal(t, embedded.Digest, h.ScriptsDigest, "the header names the scripts' content")

	r := tokenrun(t, "", "replay", file)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "reproduced: change_pin 1.0.0")
	assert.Contains(t, r.stdout, "outcome ok")
	assert.NotContains(t, r.err, "not those of the recorded run")

	// Recorded with other scripts of the same version: the replay says so.
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	other := filepath.Join(t.TempDir(), "other.jsonl")
	require.NoError(t, os.WriteFile(other, []byte(strings.Replace(string(raw), embedded.Digest, strings.Repeat("0", 64), 1)), 0o600))
	r = tokenrun(t, "", "replay", other)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.err, "not those of the recorded run (embedded, digest 000000000000)")

	// The exported, unchanged tree reproduces it too.
	dir := exportedWith(t, "tok:logout()", "tok:logout()")
	r = tokenrun(t, "", "replay", "--scripts", dir, file)
	require.Equal(t, runner.ExitOK, r.code, r.err)
}

func TestReplayReproducesFailedRun(t *testing.T) {
	file, code := recordChangePin(t, "11112222")
	require.Equal(t, runner.ExitToken, code)
	r := tokenrun(t, "", "replay", file)
	require.Equal(t, runner.ExitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "reproduced")
	assert.Contains(t, r.stdout, "PIN_INCORRECT")
}

func TestReplayDiverges(t *testing.T) {
	file, code := recordChangePin(t, "12345678")
	require.Equal(t, runner.ExitOK, code)
	_, calls, _, _ := readTranscript(t, file)
	logout := findCall(calls, "token.Token:logout")
	require.NotNil(t, logout)
	var after string // the call recorded after the logout
	for i, c := range calls {
		if c.Seq == logout.Seq && i+1 < len(calls) {
			after = calls[i+1].Name
		}
	}
	require.NotEmpty(t, after)

	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"one more call", "tok:logout()", "tok:logout()\n    tok:info()",
			[]string{"step " + itoa(logout.Seq+1), "recorded " + after, "new token.Token:info()"}},
		{"one call fewer", "    tok:logout()\n", "",
			[]string{"step " + itoa(logout.Seq), "recorded token.Token:logout()", "new " + after}},
		{"other arguments", `msg.say("change_pin_done")`, `msg.say("token_blank")`,
			[]string{"policy.text(\"change_pin_done\"", "new policy.text(\"token_blank\""}},
		{"more calls than recorded", `msg.say("change_pin_done")`, `msg.say("change_pin_done")
    tok:info()`, []string{"more calls than recorded", "token.Token:info()"}},
		{"fewer calls than recorded", `    msg.say("change_pin_done")`, `    do return { serial = info.serial } end
    msg.say("change_pin_done")`, []string{"fewer calls than recorded", "recorded policy.text(\"change_pin_done\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := exportedWith(t, tt.old, tt.new)
			r := tokenrun(t, "", "replay", "--scripts", dir, file)
			require.Equal(t, runner.ExitDiverged, r.code, r.err)
			assert.Contains(t, r.err, "replay diverged")
			for _, w := range tt.want {
				assert.Contains(t, r.err, w)
			}
			// The client's screens up to the divergence, then both calls side by side.
			assert.Contains(t, r.stdout, "change_pin 1.0.0 (change-pin)")
			assert.Contains(t, r.stdout, "current_pin]")
			assert.Contains(t, r.stdout, "--- the replay diverges at step ")
			assert.Regexp(t, `(?m)^recorded  \S`, r.stdout)
			assert.Regexp(t, `(?m)^new       \S`, r.stdout)
		})
	}
}

// TestReplayChecksValidate: the calls a prompt's validate callback made are replayed and
// checked too, and a changed rule that refuses the client's answer is a divergence at that
// prompt.
func TestReplayChecksValidate(t *testing.T) {
	file, code := recordChangePin(t, "12345678")
	require.Equal(t, runner.ExitOK, code)
	_, calls, _, _ := readTranscript(t, file)
	var nested int
	for _, c := range calls {
		if c.Depth == 1 && c.Name == "policy.password" {
			nested++
		}
	}
	require.Equal(t, 2, nested, "the record holds the calls of both password prompts' validate")

	const first = `      local ok, err = policy.password(v, v)`
	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"a stricter rule", first, `      local ok, err = false, { message = "at least 20 characters" }`,
			[]string{`ui.secret "new_pin": its validate refuses the recorded answer (at least 20 characters)`}},
		{"one more call", first, first + "\n      policy.text(\"token_blank\")",
			[]string{"validate made more calls than recorded", `policy.text("token_blank")`}},
		{"one call fewer", first, `      local ok, err = true, nil`,
			[]string{"fewer calls than recorded", "recorded policy.password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := exportedFileWith(t, "lib/input.lua", tt.old, tt.new)
			r := tokenrun(t, "", "replay", "--scripts", dir, file)
			require.Equal(t, runner.ExitDiverged, r.code, r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.err, w)
			}
		})
	}
	// Unchanged, the validate calls reproduce.
	dir := exportedFileWith(t, "lib/input.lua", first, first)
	r := tokenrun(t, "", "replay", "--scripts", dir, file)
	require.Equal(t, runner.ExitOK, r.code, r.err)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestReplayRefusesBadTranscripts(t *testing.T) {
	file, code := recordChangePin(t, "12345678")
	require.Equal(t, runner.ExitOK, code)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.SplitAfter(strings.TrimSpace(string(raw)), "\n")
	dir := t.TempDir()
	tests := []struct{ name, text, want string }{
		{"empty", "", "empty"},
		{"no footer", strings.Join(lines[:len(lines)-1], ""), "no footer"},
		{"not JSON", lines[0] + "{oops\n" + strings.Join(lines[1:], ""), "line 2"},
		{"no header", strings.Join(lines[1:], ""), "want a header"},
		{"newer format", strings.Replace(lines[0], `"format":2`, `"format":99`, 1) + strings.Join(lines[1:], ""), "format 99"},
		{"calls out of order", lines[0] + lines[2] + lines[1] + strings.Join(lines[3:], ""), "seq 1 after seq 2"},
		{"recorded version differs", strings.Replace(lines[0], `"version":"1.0.0"`, `"version":"0.9.0"`, 1) + strings.Join(lines[1:], ""),
			"records change_pin 0.9.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".jsonl"), tt.text)
			r := tokenrun(t, "", "replay", f)
			require.Equal(t, runner.ExitUsage, r.code, r.err)
			assert.Contains(t, r.err, tt.want)
		})
	}
	r := tokenrun(t, "", "replay", filepath.Join(dir, "missing.jsonl"))
	assert.Equal(t, runner.ExitUsage, r.code, r.err)
}

// TestReplayOfEnroll replays an enrollment against the dev CA. Enroll compares the typed
// current password with the region's default, which the replay's secret guesses find, and
// reads the data fields of handles (key.id), which the transcript records with them.
func TestReplayOfEnroll(t *testing.T) {
	_, file := recordEnroll(t)

	// The generated key is recorded with its fields.
	_, calls, _, _ := readTranscript(t, file)
	gen := findCall(calls, "token.Token:generate_key")
	require.NotNil(t, gen)
	require.NotEmpty(t, gen.Results)
	key, ok := gen.Results[0].(map[string]any)
	require.True(t, ok, "a key is recorded as a handle with fields: %v", gen.Results[0])
	assert.Equal(t, "token.Key", key["type"])
	assert.Equal(t, "token.Key", key["$handle"])
	fields, _ := key["fields"].(map[string]any)
	assert.NotEmpty(t, fields["id"])
	assert.Contains(t, fields["public_key"], "PUBLIC KEY")

	r := tokenrun(t, "", "replay", file)
	require.Equal(t, runner.ExitOK, r.code, "replay of enroll:\n%s%s", r.stdout, r.err)
	assert.Contains(t, r.stdout, "reproduced")
	assert.Contains(t, r.stdout, "outcome ok")
}
