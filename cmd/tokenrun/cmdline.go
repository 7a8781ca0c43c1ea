package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The command line is read once before urfave/cli sees it (urfave/cli v2 stops reading flags
// at the first positional argument, knows global flags only before the command, and answers
// an unknown command with "No help topic" and exit 1). rewriteArgs returns the arguments
// urfave/cli gets:
//
//   - global flags (--debug) are accepted anywhere before "--" and moved in front of the
//     command: `tokenrun enroll --debug --soft DIR`;
//   - a command's flags may follow its positional arguments (permuteArgs);
//   - `tokenrun help CMD [SUB]` becomes `tokenrun CMD [SUB] --help`, for every command;
//   - an unknown command or subcommand is a usage error (exit 2) with a did-you-mean.
//
// A completion request (the shell appends --generate-bash-completion last) is passed on as
// typed: urfave/cli completes the word before the flag.
func rewriteArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 || args[len(args)-1] == "--"+cli.BashCompletionFlag.Names()[0] {
		return args, nil
	}
	globalTakesValue := takesValue(app.Flags)
	isGlobal := func(a string, cmd *cli.Command) (name string, ok bool) {
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return "", false
		}
		name, _, _ = strings.Cut(strings.TrimLeft(a, "-"), "=")
		if _, ok := globalTakesValue[name]; !ok {
			return "", false
		}
		if cmd != nil {
			if _, own := takesValue(cmd.Flags)[name]; own {
				return "", false // the command's own flag of that name wins
			}
		}
		return name, true
	}
	var globals, names []string
	take := func(args []string, i int, name string) int {
		globals = append(globals, args[i])
		if globalTakesValue[name] && !strings.Contains(args[i], "=") && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
		return i
	}

	// Global flags before the command; urfave/cli's own (--help, --version) stay there too.
	i := 1
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" && args[i] != "--"; i++ {
		if name, ok := isGlobal(args[i], nil); ok {
			i = take(args, i, name)
			continue
		}
		globals = append(globals, args[i])
	}
	if i >= len(args) || args[i] == "--" {
		return args, nil
	}
	help := false
	if args[i] == "help" || args[i] == "h" {
		help = true
		i++
	}

	// The command and its subcommands; global flags between them are taken too.
	var cmd *cli.Command
	siblings := app.Commands
	for i < len(args) {
		a := args[i]
		if name, ok := isGlobal(a, cmd); ok {
			i = take(args, i, name) + 1
			continue
		}
		if strings.HasPrefix(a, "-") {
			break
		}
		if (a == "help" || a == "h") && cmd != nil && len(siblings) > 0 && !help {
			help = true // tokenrun scripts help install
			i++
			continue
		}
		next := findCommand(siblings, a)
		if next == nil {
			if cmd == nil || (cmd.Action == nil && len(cmd.Subcommands) > 0) || help {
				return nil, unknownCommand(names, a, siblings)
			}
			break // a positional argument of cmd
		}
		cmd, siblings = next, next.Subcommands
		names = append(names, next.Name)
		i++
		if len(siblings) == 0 {
			break
		}
	}
	out := append([]string{args[0]}, globals...)
	if help {
		if len(names) == 0 {
			return append(out, "--help"), nil
		}
		return append(append(out, names...), "--help"), nil
	}
	if cmd == nil {
		return append(out, args[i:]...), nil
	}
	// Global flags among the command's arguments, up to "--".
	var rest []string
	for j := i; j < len(args); j++ {
		if args[j] == "--" {
			rest = append(rest, args[j:]...)
			break
		}
		if name, ok := isGlobal(args[j], cmd); ok {
			j = take(args, j, name)
			continue
		}
		rest = append(rest, args[j])
	}
	out = append([]string{args[0]}, globals...)
	out = append(out, names...)
	return append(out, permuteArgs(cmd.Flags, rest)...), nil
}

// takesValue maps each flag name to whether the flag takes a value.
func takesValue(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// unknownCommand is the usage error for a word that names no command under names (the
// command path so far), with the nearest visible command if one is near enough.
func unknownCommand(names []string, word string, cmds []*cli.Command) error {
	kind, where := "command", ""
	if len(names) > 0 {
		kind, where = "subcommand", " of '"+strings.Join(names, " ")+"'"
	}
	msg := fmt.Sprintf("unknown %s '%s'%s", kind, escapeArg(word), where)
	if s := suggest(word, cmds); s != "" {
		msg += fmt.Sprintf(": did you mean '%s'?", s)
	}
	help := strings.Join(append(append([]string{"tokenrun"}, names...), "--help"), " ")
	return usageError{fmt.Errorf("%s (see '%s')", msg, help)}
}

// escapeArg keeps a typed word short, on one line and free of terminal controls.
func escapeArg(s string) string { return escapeText(s, 64) }

// escapeText cuts s to at most limit runes and replaces control and bidi characters with '?'.
func escapeText(s string, limit int) string {
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x200e && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return '?'
		}
		return r
	}, s)
}

// suggest returns the visible command name (or alias) nearest to word by edit distance
// (adjacent transpositions count as one edit), if it is near enough: at most 2 edits, and
// fewer than half of the longer word. A word that begins exactly one command name suggests
// that name.
func suggest(word string, cmds []*cli.Command) string {
	best, bestD := "", -1
	var prefixed []string
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			if len(word) >= 2 && strings.HasPrefix(n, word) {
				prefixed = append(prefixed, c.Name)
			}
			if d := editDistance(strings.ToLower(word), n); bestD < 0 || d < bestD {
				best, bestD = c.Name, d
			}
		}
	}
	longer := max(len([]rune(word)), len([]rune(best)))
	if bestD >= 0 && bestD <= 2 && 2*bestD < longer {
		return best
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b, over runes.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
