package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bindings/all"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/scripts/check"
	"github.com/tokenrun/tokenrun/scripts/golden"
)

// checkCommand is `tokenrun scripts check [DIR]`: everything about a scripts tree that can
// be verified without a token, before a bank signs or ships it.
func checkCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "check a scripts tree: compile, procedure metadata, regions, message catalogs, luacheck, and its golden tests (tests/) on a temporary software token",
		ArgsUsage: "[DIR] (default: the shipped tree)",
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return runner.UsageError{Err: errors.New("scripts check takes at most one directory: tokenrun scripts check [DIR]")}
			}
			var fsys fs.FS = scripts.FS
			name, dir := "the shipped scripts", ""
			if c.NArg() == 1 {
				dir = c.Args().First()
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					return runner.UsageError{Err: fmt.Errorf("scripts check: %s is not a directory", dir)}
				}
				abs, err := filepath.Abs(dir)
				if err != nil {
					return fmt.Errorf("scripts check: %w", err)
				}
				fsys, name, dir = os.DirFS(abs), c.Args().First(), abs
			}
			rep, err := check.Tree(c.Context, fsys, check.Options{Modules: all.Modules(), Goldens: golden.Check(dir, io.err, runMain)})
			if err != nil {
				return fmt.Errorf("scripts check: %w", err)
			}
			for _, n := range rep.Notes {
				fmt.Fprintf(io.err, "note: %s\n", n)
			}
			for _, p := range rep.Problems {
				fmt.Fprintln(io.out, p)
			}
			if len(rep.Problems) > 0 {
				// A ScriptError exits with the scripts' exit code (3), which is what a
				// broken tree is.
				return &runtime.ScriptError{Message: fmt.Sprintf("scripts check: %d problem(s) in %s", len(rep.Problems), name)}
			}
			fmt.Fprintf(io.out, "%s: ok\n", name)
			return nil
		},
	}
}

// typesCommand is `tokenrun scripts types --out DIR`: LuaLS definitions for editors.
func typesCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "types",
		Usage: "write LuaLS definition files (token.lua, ui.lua, ...) for editor completion and type checks",
		Flags: []cli.Flag{&cli.StringFlag{Name: "out", Required: true, Usage: "write the files into `DIR` (add it to Lua.workspace.library)"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return runner.UsageError{Err: errors.New("scripts types takes no arguments: tokenrun scripts types --out DIR")}
			}
			files, err := all.WriteTypes(c.String("out"))
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(io.out, f)
			}
			return nil
		},
	}
}

// docsCommand is `tokenrun scripts docs --out DIR`: the Markdown reference of the modules.
func docsCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "docs",
		Usage: "write the Lua module reference (" + all.ReferenceFile + ") generated from this tokenrun's modules",
		Flags: []cli.Flag{&cli.StringFlag{Name: "out", Required: true, Usage: "write the reference into `DIR`"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return runner.UsageError{Err: errors.New("scripts docs takes no arguments: tokenrun scripts docs --out DIR")}
			}
			dir := c.String("out")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("scripts docs: %w", err)
			}
			f := filepath.Join(dir, all.ReferenceFile)
			out, err := os.Create(f)
			if err != nil {
				return fmt.Errorf("scripts docs: %w", err)
			}
			if err := all.WriteReference(out); err != nil {
				out.Close()
				return fmt.Errorf("scripts docs: %w", err)
			}
			if err := out.Close(); err != nil {
				return fmt.Errorf("scripts docs: %w", err)
			}
			fmt.Fprintln(io.out, f)
			return nil
		},
	}
}
