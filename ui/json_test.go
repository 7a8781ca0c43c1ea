package ui

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/ui/protocoltest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./ui/... -update to create it")
	assert.Equal(t, string(want), got)
}

// driver plays a GUI: it reads the host's lines and, whenever the host waits for an
// answer (after "ask" or "invalid"), sends the next scripted reply, or closes the input
// when the script is used up. It records both directions: "<" from the host, ">" to it.
func driver(hostOut io.Reader, hostIn io.WriteCloser, replies []string) <-chan []string {
	done := make(chan []string, 1)
	go func() {
		var transcript []string
		sc := bufio.NewScanner(hostOut)
		for sc.Scan() {
			line := sc.Text()
			transcript = append(transcript, "< "+line)
			var ev struct{ Type string }
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				transcript = append(transcript, "! host line is not JSON")
				continue
			}
			if ev.Type != "ask" && ev.Type != "invalid" {
				continue
			}
			for {
				if len(replies) == 0 {
					hostIn.Close()
					break
				}
				reply := replies[0]
				replies = replies[1:]
				transcript = append(transcript, "> "+reply)
				_, _ = io.WriteString(hostIn, reply+"\n")
				if reply != "" {
					break // the host ignores a blank line and waits for the next
				}
			}
		}
		hostIn.Close()
		done <- transcript
	}()
	return done
}

func TestJSONSessionGolden(t *testing.T) {
	ctx := context.Background()
	replies := []string{
		`{"id":"registration_type","value":"2"}`, // positions are for terminals only
		`{"id":"registration_type","value":"3y"}`,
		`not json`,
		`{"id":"otp_pin","value":"x"}`, // answer for another prompt
		`{"id":"user_id"}`,
		`{"id":"user_id","value":42}`,
		``, // blank lines are ignored
		`{"id":"user_id","value":" qq111111_qwertyui ","extra":"ignored"}`,
		`{"id":"otp_pin","value":"a1b2"}`,
		`{"id":"otp_pin","value":"A1B2C3D4E5F"}`,
		`{"id":"confirm_format","value":"да"}`,
		`{"id":"token_label","value":""}`,
		`{"cancel":true}`,
	}
	prompts := []Prompt{
		{ID: "registration_type", Kind: Choice, Label: "Registration type", Help: "As on the acceptance act",
			Choices: periods, Default: "1y"},
		{ID: "user_id", Label: "User ID"},
		{ID: "otp_pin", Kind: Secret, Label: "PIN from the OTP card", Validate: validPIN},
		{ID: "confirm_format", Kind: Confirm, Label: "Format the token?", Default: "no", HumanOnly: true},
		{ID: "token_label", Label: "Token name", Default: "KAZTOKEN <1>"},
		{ID: "new_password", Kind: Secret, Label: "New password"},
		{ID: "after_eof", Label: "Never answered"},
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	j := NewJSON(inR, outW)
	j.now = func() time.Time { return time.Time{} } // elapsed 0 in the golden
	done := driver(outR, inW, replies)

	var results []string
	require.NoError(t, j.Say(ctx, Info, "Plug in the token."))
	for i, p := range prompts {
		if i == 3 {
			require.NoError(t, j.Say(ctx, Warn, "Formatting destroys the keys"))
			bar, err := j.Progress(ctx, "generate", "Generating the profile")
			require.NoError(t, err)
			bar.Update(0.5, "waiting for the CA")
			bar.Update(-1, "")
			bar.Update(math.NaN(), "")
			bar.Update(7, "")
			bar.Done(true, "")
			bar.Done(false, "ignored")
		}
		v, err := j.Ask(ctx, p)
		switch {
		case err != nil:
			results = append(results, fmt.Sprintf("= %s: error: %v (cancelled=%t, no answer=%t)",
				p.ID, err, errors.Is(err, ErrCancelled), errors.Is(err, ErrNoAnswer)))
		case p.Kind == Secret:
			results = append(results, fmt.Sprintf("= %s: <%d-character secret>", p.ID, len(v)))
		default:
			results = append(results, fmt.Sprintf("= %s: %q", p.ID, v))
		}
	}
	bar, err := j.Progress(ctx, "format", "")
	require.NoError(t, err)
	bar.Done(false, "two tokens connected")
	outW.Close()
	var transcript []string
	select {
	case transcript = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("driver did not finish")
	}
	assert.Equal(t, []string{
		`= registration_type: "3y"`,
		`= user_id: "qq111111_qwertyui"`,
		`= otp_pin: <11-character secret>`,
		`= confirm_format: "yes"`,
		`= token_label: "KAZTOKEN <1>"`,
		`= new_password: error: prompt 'new_password': cancelled by the driver (cancelled=true, no answer=false)`,
		`= after_eof: error: no answer for prompt 'after_eof': input closed (cancelled=false, no answer=true)`,
	}, results)
	for _, line := range transcript {
		var v map[string]any
		if strings.HasPrefix(line, "< ") {
			require.NoError(t, json.Unmarshal([]byte(line[2:]), &v), "every host line is one JSON object: %s", line)
			assert.NoError(t, protocoltest.HostLine(line[2:]))
		}
	}
	golden(t, "json_session.golden", strings.Join(append(transcript, results...), "\n")+"\n")
}

func TestJSONAnswerLines(t *testing.T) {
	user := Prompt{ID: "user_id", Label: "User ID"}
	tests := []struct {
		name    string
		p       Prompt
		input   string
		want    string
		wantErr string
		out     []string // host lines after the first ask
	}{
		{"value", user, `{"id":"user_id","value":"qq1"}`, "qq1", "", nil},
		{"choice by value", Prompt{ID: "t", Kind: Choice, Choices: periods}, `{"id":"t","value":"3y"}`, "3y", "", nil},
		{"confirm word", Prompt{ID: "c", Kind: Confirm}, `{"id":"c","value":"no"}`, "no", "", nil},
		{"cancel with id", user, `{"id":"user_id","cancel":true}`, "", "prompt 'user_id': cancelled by the driver", nil},
		{"cancel wins over value", user, `{"id":"user_id","value":"x","cancel":true}`, "", "prompt 'user_id': cancelled by the driver", nil},
		{"cancel for another prompt", user, `{"id":"other","cancel":true}` + "\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"answer is for prompt 'other', but prompt 'user_id' is asked","code":"WRONG_PROMPT"}`,
			"ask"}},
		{"cancel false is no answer", user, `{"id":"user_id","cancel":false}` + "\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: no \"value\"","code":"MALFORMED"}`, "ask"}},
		{"null line", user, "null\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: no \"id\"","code":"MALFORMED"}`, "ask"}},
		{"array line", user, "[1]\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: want an object with \"id\" and \"value\"","code":"MALFORMED"}`, "ask"}},
		{"two objects on a line", user, `{"id":"user_id","value":"a"} {}` + "\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: invalid JSON at byte 30","code":"MALFORMED"}`, "ask"}},
		{"cancel not a bool", user, `{"id":"user_id","cancel":"yes"}` + "\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: \"cancel\" must be a boolean","code":"MALFORMED"}`, "ask"}},
		{"id not an id", user, `{"id":"user id\n","value":"x"}` + "\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"answer is for an unknown prompt id, but prompt 'user_id' is asked","code":"WRONG_PROMPT"}`, "ask"}},
		{"id not a string", user, `{"id":7,"value":"x"}` + "\n" + `{"id":"user_id","value":"v"}`, "v", "", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: \"id\" must be a string","code":"MALFORMED"}`, "ask"}},
		{"eof", user, ``, "", "no answer for prompt 'user_id': input closed", nil},
		{"eof after partial line", user, `{"id":"user_id","val`, "", "no answer for prompt 'user_id': input closed", []string{
			`{"type":"error","id":"user_id","message":"malformed answer line: invalid JSON at byte 20","code":"MALFORMED"}`, "ask"}},
		{"line without newline at eof", user, `{"id":"user_id","value":"v"}`, "v", "", nil},
		{"crlf", user, "{\"id\":\"user_id\",\"value\":\"v\"}\r\n", "v", "", nil},
		{"bad prompt", Prompt{ID: ""}, "", "", "prompt has no id", nil},
		{"aborted validation", Prompt{ID: "user_id", Validate: func(string) error { return Abort(errors.New("lua: boom")) }},
			`{"id":"user_id","value":"v"}`, "", "prompt 'user_id': validate: lua: boom", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			j := NewJSON(strings.NewReader(tt.input), out)
			got, err := j.Ask(context.Background(), tt.p)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if tt.p.Check() != nil {
				assert.Equal(t, "", out.String(), "a bad prompt is not sent")
				return
			}
			require.NotEmpty(t, lines)
			assert.True(t, strings.HasPrefix(lines[0], `{"type":"ask"`), lines[0])
			var rest []string
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, `{"type":"ask"`) {
					l = "ask"
				}
				rest = append(rest, l)
			}
			assert.Equal(t, tt.out, rest)
		})
	}
}

func TestJSONAskLine(t *testing.T) {
	tests := []struct {
		name string
		p    Prompt
		want string
	}{
		{"text", Prompt{ID: "user_id", Label: "User ID"},
			`{"type":"ask","id":"user_id","kind":"text","label":"User ID","secret":false}`},
		{"label from id, html kept", Prompt{ID: "a", Help: "<b>&</b>", Default: "x"},
			`{"type":"ask","id":"a","kind":"text","label":"a","help":"<b>&</b>","default":"x","secret":false}`},
		{"secret human only", Prompt{ID: "pin", Kind: Secret, Label: "PIN", HumanOnly: true},
			`{"type":"ask","id":"pin","kind":"secret","label":"PIN","secret":true,"human_only":true}`},
		{"choice", Prompt{ID: "t", Kind: Choice, Label: "Тип", Choices: periods, Default: "3y"},
			`{"type":"ask","id":"t","kind":"choice","label":"Тип","default":"3y","choices":[{"value":"1y","label":"1 year"},{"value":"3y","label":"3 years"}],"secret":false}`},
		{"confirm", Prompt{ID: "c", Kind: Confirm, Label: "Go?", Default: "yes"},
			`{"type":"ask","id":"c","kind":"confirm","label":"Go?","default":"yes","secret":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			_, err := NewJSON(strings.NewReader(""), out).Ask(context.Background(), tt.p)
			require.ErrorIs(t, err, ErrNoAnswer)
			assert.Equal(t, tt.want+"\n", out.String())
		})
	}
}

func TestJSONLongLine(t *testing.T) {
	in := `{"id":"a","value":"` + strings.Repeat("x", maxLine) + `"}` + "\n" + `{"id":"a","value":"ok"}` + "\n"
	out := &syncBuffer{}
	got, err := NewJSON(strings.NewReader(in), out).Ask(context.Background(), Prompt{ID: "a"})
	require.NoError(t, err)
	assert.Equal(t, "ok", got)
	assert.Contains(t, out.String(), `{"type":"error","id":"a","message":"answer line longer than 2097152 bytes","code":"LINE_TOO_LONG"}`)
}

func TestJSONContextCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	j := NewJSON(pr, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := j.Ask(ctx, Prompt{ID: "user_id"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.True(t, j.Interactive())
}

func TestJSONSayLevels(t *testing.T) {
	out := &syncBuffer{}
	j := NewJSON(strings.NewReader(""), out)
	ctx := context.Background()
	require.NoError(t, j.Say(ctx, Error, "Two tokens are connected"))
	assert.EqualError(t, j.Say(ctx, Level(3), "x"), "unknown message level 3")
	assert.Equal(t, `{"type":"say","level":"error","text":"Two tokens are connected"}`+"\n", out.String())

	j = NewJSON(strings.NewReader(""), failWriter{})
	assert.EqualError(t, j.Say(ctx, Info, "x"), "say: disk full")
	_, err := j.Progress(ctx, "g", "G")
	assert.EqualError(t, err, "show progress: disk full")
	_, err = j.Ask(ctx, Prompt{ID: "a"})
	assert.EqualError(t, err, "prompt 'a': disk full")
}

// A page sends the chosen file with its answer; the run reads it from memory, and the
// content is gone when the run ends.
func TestJSONFileData(t *testing.T) {
	pfx := []byte("\x30\x82 container bytes")
	b64 := base64.StdEncoding.EncodeToString(pfx)
	tests := []struct {
		name      string
		prompt    Prompt
		lines     []string
		want      string // the answer Ask returns
		wantError string // in an error line before the good answer
	}{
		{name: "file with content", prompt: Prompt{ID: "key_file", Kind: File},
			lines: []string{`{"id":"key_file","value":"Key.pfx","data":"` + b64 + `"}`}, want: "Key.pfx"},
		{name: "content on a text prompt", prompt: Prompt{ID: "user_id"},
			lines: []string{`{"id":"user_id","value":"a","data":"` + b64 + `"}`, `{"id":"user_id","value":"b"}`}, want: "b",
			wantError: `\"data\" is only for a file prompt`},
		{name: "not base64", prompt: Prompt{ID: "key_file", Kind: File},
			lines: []string{`{"id":"key_file","value":"Key.pfx","data":"%%%"}`, `{"id":"key_file","value":"/media/Key.pfx"}`}, want: "/media/Key.pfx",
			wantError: `\"data\" must be base64`},
		{name: "a name with folders", prompt: Prompt{ID: "key_file", Kind: File},
			lines: []string{`{"id":"key_file","value":"../Key.pfx","data":"` + b64 + `"}`, `{"id":"key_file","value":"x"}`}, want: "x",
			wantError: "without folders"},
		{name: "too large", prompt: Prompt{ID: "key_file", Kind: File},
			lines: []string{`{"id":"key_file","value":"Key.pfx","data":"` + base64.StdEncoding.EncodeToString(make([]byte, MaxFileData+1)) + `"}`, `{"id":"key_file","value":"x"}`}, want: "x",
			wantError: "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			j := NewJSON(strings.NewReader(strings.Join(tt.lines, "\n")+"\n"), out)
			got, err := j.Ask(context.Background(), tt.prompt)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			data, ok := FileFrom(WithFiles(context.Background(), j), tt.want)
			if tt.wantError != "" {
				assert.Contains(t, out.String(), tt.wantError)
				assert.False(t, ok, "a refused line keeps nothing")
				return
			}
			require.True(t, ok)
			assert.Equal(t, pfx, data)
			require.NoError(t, j.End(RunResult{Outcome: OutcomeOK}))
			_, ok = j.File("Key.pfx")
			assert.False(t, ok, "the run is over: the content is forgotten")
			assert.Equal(t, make([]byte, len(pfx)), data, "and wiped")
			assert.NotContains(t, out.String(), b64)
		})
	}
}
