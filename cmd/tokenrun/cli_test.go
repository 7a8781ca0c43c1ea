package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	rdebug "runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// A hidden command only compiled in tests: it panics in the main goroutine, as a bug in an
// action would.
func init() {
	testCommands = func(stdio) []*cli.Command {
		return []*cli.Command{{
			Name:   "test-panic",
			Hidden: true,
			Flags:  []cli.Flag{&cli.StringFlag{Name: "what", Value: "boom\nsecond line"}},
			Action: func(c *cli.Context) error {
				var m map[string]int
				if c.String("what") == "nil-map" {
					m["x"] = 1 // a runtime error, as a real bug would be
				}
				panic(c.String("what"))
			},
		}}
	}
}

func TestCLIPanicExitsInternal(t *testing.T) {
	r := tokenrun(t, "", "test-panic")
	assert.Equal(t, exitInternal, r.code)
	assert.Equal(t, 1, strings.Count(r.err, "\n"), "one line: %q", r.err)
	assert.Contains(t, r.err, "tokenrun: internal error: boom second line")
	assert.Contains(t, r.err, "please report it")
	assert.NotContains(t, r.err, "goroutine")

	r = tokenrun(t, "", "test-panic", "--what", "nil-map", "--debug")
	assert.Equal(t, exitInternal, r.code)
	assert.Contains(t, r.err, "assignment to entry in nil map")
	assert.Contains(t, r.err, "goroutine", "--debug, even after the command, shows the stack")
	assert.Contains(t, r.err, "cli_test.go")
}

func TestCLIHelpForEveryCommand(t *testing.T) {
	app := newApp(stdio{})
	var paths [][]string
	for _, c := range app.VisibleCommands() {
		paths = append(paths, []string{c.Name})
		for _, s := range c.Subcommands {
			paths = append(paths, []string{c.Name, s.Name})
		}
	}
	require.Greater(t, len(paths), 20)
	for _, p := range paths {
		name := strings.Join(p, " ")
		t.Run(name, func(t *testing.T) {
			help := tokenrun(t, "", append([]string{"help"}, p...)...)
			require.Equal(t, exitOK, help.code, help.err)
			assert.Contains(t, help.stdout, "tokenrun "+name+" - ")
			flag := tokenrun(t, "", append(p, "--help")...)
			require.Equal(t, exitOK, flag.code, flag.err)
			assert.Equal(t, flag.stdout, help.stdout)
		})
	}
	r := tokenrun(t, "", "scripts", "help", "install")
	assert.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "tokenrun scripts install - ")

	r = tokenrun(t, "", "help")
	assert.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.stdout, "enroll")
	assert.Contains(t, r.stdout, "completion")
	assert.NotContains(t, r.stdout, "test-panic")
}

func TestCLIUnknownCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"enrol"}, "unknown command 'enrol': did you mean 'enroll'?"},
		{[]string{"chnage-pin", "--soft", "x"}, "did you mean 'change-pin'?"},
		{[]string{"--debug", "sing", "a.txt"}, "did you mean 'sign'?"},
		{[]string{"scripts", "isntall", "b.tar.gz"}, "unknown subcommand 'isntall' of 'scripts': did you mean 'install'?"},
		{[]string{"ca", "serv"}, "did you mean 'serve'?"},
		{[]string{"help", "enrol"}, "did you mean 'enroll'?"},
		{[]string{"help", "scripts", "instal"}, "did you mean 'install'?"},
		{[]string{"diag"}, "did you mean 'diagnose'?"},
		{[]string{"xyzzy"}, "unknown command 'xyzzy' (see 'tokenrun --help')"},
		{[]string{"\x1b[31mred"}, "unknown command '?[31mred'"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := tokenrun(t, "", tt.args...)
			assert.Equal(t, exitUsage, r.code, r.err)
			assert.Contains(t, r.err, tt.want)
			assert.NotContains(t, r.err, "\x1b")
			assert.NotContains(t, r.err, "test-panic", "hidden commands are never suggested")
		})
	}
	r := tokenrun(t, "", "xyzzy")
	assert.NotContains(t, r.err, "did you mean")
}

func TestCLISuggest(t *testing.T) {
	cmds := newApp(stdio{}).Commands
	for word, want := range map[string]string{
		"enrol": "enroll", "enrolll": "enroll", "Enroll": "enroll", "fromat": "format",
		"verfy": "verify", "tokns": "tokens", "replya": "replay", "x": "", "ab": "", "signs": "sign",
		"completoin": "completion", "demos": "demo", "unblok": "unblock",
	} {
		assert.Equal(t, want, suggest(word, cmds), word)
	}
	assert.Equal(t, 1, editDistance("isntall", "install"))
	assert.Equal(t, 3, editDistance("", "abc"))
	assert.Equal(t, 0, editDistance("қазақ", "қазақ"))
}

func TestCLIGlobalFlagsAfterTheCommand(t *testing.T) {
	app := newApp(stdio{})
	for _, tt := range []struct{ in, want string }{
		{"tokenrun enroll --debug --soft D", "tokenrun --debug enroll --soft D"},
		{"tokenrun --debug enroll --soft D", "tokenrun --debug enroll --soft D"},
		{"tokenrun run tour --debug --soft D", "tokenrun --debug run --soft D tour"},
		{"tokenrun scripts --debug install --trust k.pub f.tgz", "tokenrun --debug scripts install --trust k.pub f.tgz"},
		{"tokenrun scripts install f.tgz --debug=true", "tokenrun --debug=true scripts install f.tgz"},
		{"tokenrun run x.lua -- --debug", "tokenrun run x.lua -- --debug"},
		{"tokenrun help scripts install", "tokenrun scripts install --help"},
		{"tokenrun --debug help enroll", "tokenrun --debug enroll --help"},
		{"tokenrun help", "tokenrun --help"},
		{"tokenrun --version", "tokenrun --version"},
		{"tokenrun run tour --soft --generate-bash-completion", "tokenrun run tour --soft --generate-bash-completion"},
	} {
		got, err := rewriteArgs(app, strings.Fields(tt.in))
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, strings.Join(got, " "), tt.in)
	}

	// In a real run: the traceback of a script error is shown with --debug after the command.
	tok := filepath.Join(t.TempDir(), "tok")
	r := tokenrun(t, "", "run", td+"scripts/bug.lua", "--soft", tok, "--debug")
	assert.Equal(t, exitScript, r.code, r.err)
	assert.Contains(t, r.err, "stack traceback")
	r = tokenrun(t, "", "tokens", "--soft", tok, "--debug")
	assert.Equal(t, exitOK, r.code, r.err)
}

func TestCLICompletion(t *testing.T) {
	for shell, want := range map[string][]string{
		"bash": {"complete -o bashdefault -o default -o nospace -F _tokenrun_bash_autocomplete tokenrun", "--generate-bash-completion"},
		"zsh":  {"#compdef tokenrun", "compdef _tokenrun_zsh_autocomplete tokenrun", "--generate-bash-completion"},
		"fish": {"complete -c tokenrun", "enroll", "change-pin", "install"},
	} {
		r := tokenrun(t, "", "completion", shell)
		require.Equal(t, exitOK, r.code, r.err)
		for _, w := range want {
			assert.Contains(t, r.stdout, w, shell)
		}
		assert.NotContains(t, r.stdout, "test-panic", shell)
	}
	r := tokenrun(t, "", "completion", "tcsh")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.err, "bash, zsh or fish")
	r = tokenrun(t, "", "completion")
	assert.Equal(t, exitUsage, r.code)

	// urfave/cli reads the word before the request from os.Args (as the real binary has it).
	complete := func(args ...string) result {
		saved := os.Args
		defer func() { os.Args = saved }()
		os.Args = append([]string{"tokenrun"}, args...)
		return tokenrun(t, "", args...)
	}
	r = complete("--generate-bash-completion")
	require.Equal(t, exitOK, r.code, r.err)
	lines := strings.Fields(r.stdout)
	for _, c := range []string{"enroll", "change-pin", "unblock", "format", "sign", "verify", "tokens", "run", "scripts", "ca", "completion", "help"} {
		assert.Contains(t, lines, c)
	}
	assert.NotContains(t, lines, "test-panic")

	r = complete("scripts", "--generate-bash-completion")
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, strings.Fields(r.stdout), "install")

	r = complete("completion", "--generate-bash-completion")
	require.Equal(t, exitOK, r.code, r.err)
	assert.Equal(t, []string{"bash", "zsh", "fish"}, strings.Fields(r.stdout))
}

func TestCLIVersion(t *testing.T) {
	r := tokenrun(t, "", "--version")
	require.Equal(t, exitOK, r.code, r.err)
	assert.Regexp(t, `^tokenrun version \S+ \(.*script API \d+\)\n$`, r.stdout)

	parts := buildParts(&rdebug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      rdebug.Module{Path: "github.com/tokenrun/tokenrun", Version: "v1.4.0"},
		Settings: []rdebug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-04T19:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	})
	assert.Equal(t, []string{"module v1.4.0", "commit 0123456789ab", "committed 2026-12-04T19:00:00Z", "modified", "go1.26.8"}, parts)
	assert.Equal(t, []string{"go1.26.8"}, buildParts(&rdebug.BuildInfo{GoVersion: "go1.26.8", Main: rdebug.Module{Version: "(devel)"}}))
	assert.Empty(t, buildParts(&rdebug.BuildInfo{}))
}

// TestCLIBuiltBinary builds tokenrun as a person would and reads its --version (a build
// that embeds a VCS revision, as go build in a git clone does, shows it), completes words in
// bash with the script it prints, and checks an unknown command's exit code.
func TestCLIBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "tokenrun")
	build := exec.Command(goBin, "build", "-buildvcs=auto", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	info, err := exec.Command(goBin, "version", "-m", bin).CombinedOutput()
	require.NoError(t, err, "%s", info)
	v, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", v)
	assert.Regexp(t, `^tokenrun version \S+ \(.*go1\.\d+.*, script API \d+\)\n$`, string(v))
	if m := regexp.MustCompile(`vcs\.revision=([0-9a-f]{12})`).FindSubmatch(info); m != nil {
		assert.Contains(t, string(v), "commit "+string(m[1]))
	} else {
		t.Logf("this build embeds no VCS revision (a git worktree, or not a git checkout): %s", v)
	}

	// Flag completion reads the word before the request from os.Args: only the binary shows it.
	c, err := exec.Command(bin, "sign", "--p", "--generate-bash-completion").Output()
	require.NoError(t, err)
	assert.Contains(t, strings.Fields(string(c)), "--pin-file")

	// bash, with or without the bash-completion package, sourcing the printed script.
	if bash, err := exec.LookPath("bash"); err == nil {
		script := `source <(tokenrun completion bash)
t() { COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _tokenrun_bash_autocomplete; echo "${COMPREPLY[*]}"; }
t tokenrun scr; t tokenrun scripts ins; t tokenrun enroll --reg; t tokenrun completion f`
		sh := exec.Command(bash, "--norc", "--noprofile", "-c", script)
		sh.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		got, err := sh.CombinedOutput()
		require.NoError(t, err, "%s", got)
		assert.Equal(t, "scripts\ninstall\n--region\nfish\n", string(got))
	}

	// Unknown commands exit 2 from the real binary too.
	cmd := exec.Command(bin, "enrol")
	out, _ = cmd.CombinedOutput()
	assert.Equal(t, exitUsage, cmd.ProcessState.ExitCode(), "%s", out)
	assert.Contains(t, string(out), "did you mean 'enroll'?")
}
