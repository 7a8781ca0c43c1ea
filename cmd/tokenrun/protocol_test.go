package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/ui/protocoltest"
)

// refDriver is a small reference driver of the JSON protocol, version 2, as a GUI would be
// written against docs/protocol.md: it announces itself, checks that the run begins with
// hello, answers each ask from answers (by prompt id; a person's answers, marked so),
// checks each answer against the prompt's hints first, validates every line both ways
// against the schema, and returns the result line. An ask it has no answer for, or one
// asked again after an invalid answer, is cancelled; cancelAfter, when not "", sends a
// bare cancel line (no prompt pending) as soon as a line of that type arrives.
type refDriver struct {
	answers     map[string]any
	cancelAfter string

	lines    []string // every line the host wrote
	problems []string // what broke the protocol
	result   map[string]any
}

func (d *refDriver) run(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errBuf golden.SyncBuffer
	done := make(chan int, 1)
	go func() {
		c := runMain(append([]string{"tokenrun"}, args...), inR, outW, &errBuf)
		outW.Close()
		done <- c
	}()
	send := func(m map[string]any) {
		b, _ := json.Marshal(m)
		if err := protocoltest.DriverLine(string(b)); err != nil {
			d.problems = append(d.problems, "driver line: "+err.Error())
		}
		go func() { _, _ = inW.Write(append(b, '\n')) }()
	}
	send(map[string]any{"type": "hello", "protocol": 2, "driver": "tokenrun tests"})
	asked := map[string]bool{}
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		d.lines = append(d.lines, line)
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			d.problems = append(d.problems, "not JSON: "+line)
			continue
		}
		typ, _ := m["type"].(string)
		id, _ := m["id"].(string)
		if len(d.lines) == 1 && typ != "hello" {
			d.problems = append(d.problems, "the first line is not hello: "+line)
		}
		switch typ {
		case "ask":
			v, ok := d.answers[id]
			if m["human_only"] == true || (!ok && m["optional"] != true) || asked[id] {
				send(map[string]any{"id": id, "cancel": true})
				continue
			}
			asked[id] = true
			text := golden.AnswerText(v, fmt.Sprint(m["kind"]))
			if h, ok := m["hints"].(map[string]any); ok {
				if why := breaksHints(text, h); why != "" {
					// A GUI would not send it; the host must refuse it too.
					t.Logf("answer to %s breaks its hints (%s): sent anyway, expecting invalid", id, why)
				}
			}
			send(map[string]any{"id": id, "value": text, "person": m["kind"] == "secret"})
		case "result":
			d.result = m
		}
		if typ == d.cancelAfter {
			d.cancelAfter = ""
			send(map[string]any{"cancel": true})
		}
	}
	code = <-done
	inW.Close()
	if err := protocoltest.Session(strings.Join(d.lines, "\n") + "\n"); err != nil {
		d.problems = append(d.problems, err.Error())
	}
	return code, errBuf.String()
}

// breaksHints says which hint text breaks, "" for none.
func breaksHints(text string, h map[string]any) string {
	n := len([]rune(text))
	if v, ok := h["min_length"].(float64); ok && n < int(v) {
		return "min_length"
	}
	if v, ok := h["max_length"].(float64); ok && n > int(v) {
		return "max_length"
	}
	if p, ok := h["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(text) {
		return "pattern"
	}
	if a, ok := h["allowed"].(string); ok && !regexp.MustCompile("^["+a+"]*$").MatchString(text) {
		return "allowed"
	}
	return ""
}

// TestGoldenCasesOverJSONProtocol runs every golden case over --ui json with the reference
// driver, the answers-file cases too: every line validates against the schema, the run
// ends with result, and the result's exit code is the process's.
func TestGoldenCasesOverJSONProtocol(t *testing.T) {
	cases, err := golden.LoadCases(os.DirFS(goldenTree))
	require.NoError(t, err)
	for _, c := range cases {
		t.Run(c.Path(), func(t *testing.T) {
			if why := c.Skip(golden.BackendSoft); why != "" {
				t.Skip(why)
			}
			c.Setup.Mode = "" // over JSON, whatever the case's own golden uses
			var stdout string
			_, err := golden.Run(context.Background(), c, golden.Options{Backend: golden.BackendSoft, TempDir: t.TempDir(), Main: runMain,
				CheckJSON: func(out string) error { stdout = out; return protocoltest.Session(out) }})
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			var hello, result map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &hello))
			require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &result))
			assert.Equal(t, c.Proc, hello["procedure"])
			assert.Equal(t, "1.0.0", hello["version"])
			if result["outcome"] == "ok" && c.Proc == "enroll" && !c.Setup.Enrolled {
				r, _ := result["result"].(map[string]any)
				for _, k := range []string{"serial", "profile", "key_id", "certificate_serial", "not_after"} {
					assert.NotEmpty(t, r[k], "enroll's result has %s", k)
				}
			}
		})
	}
}

// TestJSONCancelWhileNothingIsAsked: a bare cancel line while the run is busy (no prompt
// pending) stops it at once: result cancelled, exit 6.
func TestJSONCancelWhileNothingIsAsked(t *testing.T) {
	defer golden.IsolateEnv(t.TempDir())()
	script := writeFile(t, t.TempDir()+"/busy.lua", `require("ui").say("working"); while true do end`)
	d := &refDriver{answers: map[string]any{}, cancelAfter: "say"}
	start := time.Now()
	code, stderr := d.run(t, "run", "--soft", t.TempDir(), "--ui", "json", "--timeout", "1m", script)
	assert.Empty(t, d.problems)
	require.NotNil(t, d.result, stderr)
	assert.Equal(t, "cancelled", d.result["outcome"], stderr)
	assert.Equal(t, "CANCELLED", d.result["code"], stderr)
	assert.Equal(t, runner.ExitCancelled, code, stderr)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Contains(t, d.lines[0], `"procedure":"busy"`)
}

// TestSignOverJSON: tokenrun sign --ui json asks the PIN over the protocol, reports each
// signed document, and ends with the result.
func TestSignOverJSON(t *testing.T) {
	ca := newGoCA(t, "Test Root")
	dir := softSigner(t, ca)
	docs := documents(t, 2)
	d := &refDriver{answers: map[string]any{"current_pin": "12345678"}}
	args := append([]string{"sign", "--soft", dir, "--token", "pkcs11:token=KAZTOKEN;object=payments", "--ui", "json"}, docs...)
	code, stderr := d.run(t, args...)
	require.Equal(t, runner.ExitOK, code, stderr)
	assert.Empty(t, d.problems)
	var types []string
	for _, l := range d.lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		types = append(types, fmt.Sprint(m["type"]))
	}
	assert.Equal(t, []string{"hello", "ask", "signed", "signed", "result"}, types)
	assert.Contains(t, d.lines[2], `"index":1,"total":2`)
	require.NotNil(t, d.result)
	r := d.result["result"].(map[string]any)
	assert.Equal(t, float64(2), r["signed"])
	assert.NotEmpty(t, r["certificate_serial"])
	assert.NotEmpty(t, r["not_after"])
	for _, doc := range docs {
		assert.FileExists(t, doc+".p7s")
	}

	// A wrong PIN: the result says why, with the token's code and exit 4.
	d = &refDriver{answers: map[string]any{"current_pin": "00000000"}}
	code, stderr = d.run(t, append([]string{"sign", "--soft", dir, "--token", "pkcs11:token=KAZTOKEN;object=payments", "--ui", "json", "--force"}, docs...)...)
	assert.Equal(t, runner.ExitToken, code, stderr)
	assert.Empty(t, d.problems)
	require.NotNil(t, d.result)
	assert.Equal(t, "PIN_INCORRECT", d.result["code"])
	assert.Equal(t, float64(0), d.result["result"].(map[string]any)["signed"])
}
