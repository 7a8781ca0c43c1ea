package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/ui"
)

// procedure is one shipped procedure exposed as a command.
type procedure struct {
	command, name, usage string
	extra                []cli.Flag
}

var procedures = []procedure{
	{command: "enroll", name: "enroll", usage: "first registration: key pair on the token, certificate from the CA"},
	{command: "change-pin", name: "change_pin", usage: "change the token's user password"},
	{command: "unblock", name: "unblock", usage: "set a new user password as administrator (unblocks a locked one)"},
	{command: "format", name: "format", usage: "format the token (refused while it holds a profile, unless support overrides)",
		extra: []cli.Flag{&cli.BoolFlag{Name: "support-override",
			Usage: "support staff only: format even a token holding a profile; asks for the support ticket, which is recorded"}}},
}

// procedureFlags are run's flags plus the scripts tree and the region.
func procedureFlags() []cli.Flag {
	return append(append(runFlags(), regionFlags()...), noTranscriptFlag())
}

// regionFlags choose the scripts tree, the region, its overrides and the language: every
// command that runs a shipped procedure has them.
func regionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "region", Value: region.DefaultName, EnvVars: []string{"TOKENRUN_REGION"},
			Usage: "region configuration `NAME` (regions/NAME.yaml in the scripts tree)"},
		&cli.StringSliceFlag{Name: "set", Usage: "override one region value, e.g. --set ca.url=https://127.0.0.1:8443 (repeatable)"},
		&cli.StringFlag{Name: "lang", EnvVars: []string{"TOKENRUN_LANG"}, Usage: "language: kk, ru or en (default: the region's)"},
		&cli.StringFlag{Name: "scripts", EnvVars: []string{"TOKENRUN_SCRIPTS"},
			Usage: "run the scripts tree in `DIR` (unsigned) instead of the shipped one"},
	}
}

func procedureCommands(io stdio) []*cli.Command {
	var cmds []*cli.Command
	for _, p := range procedures {
		cmds = append(cmds, &cli.Command{
			Name:   p.command,
			Usage:  p.usage,
			Flags:  append(procedureFlags(), p.extra...),
			Action: func(c *cli.Context) error { return runProcedure(c, io, p) },
		})
	}
	return cmds
}

// namedProcedureCommand runs any procedure of the active set by name, with its region, as
// the shipped ones run: a bank's own procedure (and the wizard, which offers it).
func namedProcedureCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "procedure",
		Usage:     "run a procedure of the active scripts set by name, with its region (a bank's own, or a shipped one)",
		ArgsUsage: "NAME",
		Flags:     append(procedureFlags(), procedureNamed("format").extra...), // --support-override, which a bank's own may honour
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return runner.UsageError{Err: errors.New("procedure takes the procedure's name: tokenrun procedure [flags] NAME")}
			}
			name := c.Args().First()
			return runProcedureNamed(c, io, procedure{command: "procedure " + name, name: name})
		},
	}
}

// procedureNamed is the shipped procedure called name.
func procedureNamed(name string) procedure {
	for _, p := range procedures {
		if p.name == name {
			return p
		}
	}
	panic("no shipped procedure " + name)
}

func runProcedure(c *cli.Context, io stdio, p procedure) error {
	if c.NArg() > 0 {
		return runner.UsageError{Err: fmt.Errorf("%s takes no arguments (got %q)", p.command, c.Args().First())}
	}
	return runProcedureNamed(c, io, p)
}

func runProcedureNamed(c *cli.Context, io stdio, p procedure) error {
	proc, err := runner.LoadProcedure(runner.ProcedureOptions{Name: p.name, Scripts: c.String("scripts"),
		Region: c.String("region"), Set: c.StringSlice("set"), Lang: c.String("lang"), Warn: io.err})
	if err != nil {
		return err
	}
	runner.SetStoppingNotice(proc.Messages()["cancel_stopping"]) // the first Ctrl-C's line, in the run's language
	store, err := runner.OpenJournal()
	if err != nil {
		return err
	}
	prov, uri, err := openSource(c)
	if err != nil {
		return err
	}
	defer prov.Close()
	fe, err := frontend(c, io)
	if err != nil {
		return err
	}
	ui.SetChrome(fe, catalogChrome(runMessages(proc.Config))) // speak.go
	set := proc.Set
	args := map[string]any{"support_override": c.Bool("support-override"), "scripts": set.Source, "scripts_version": set.Manifest.Version}
	res, err := runner.Run(c.Context, runner.Spec{
		Script: proc.Script, Libraries: set.Libraries, Provider: prov, URI: uri, Frontend: fe,
		Transcript: &runner.TranscriptOptions{File: c.String("transcript"), Keep: !c.Bool("no-transcript"),
			Header: proc.TranscriptHeader(p.command, c.StringSlice("set"), args)},
		Timeout: c.Duration("timeout"), Config: proc.Config, Journal: store, Out: io.err, Extra: []runtime.Module{proc.Policy},
		Args: args, Command: "tokenrun " + p.command, LockWait: c.Duration("lock-wait"),
		Memory: int64(proc.Region.Sandbox.MemoryMiB) << 20,
		Begin: protocolRun(fe, ui.RunInfo{Command: "tokenrun " + p.command, Procedure: proc.Script.Name(), Language: lang(proc.Config)},
			runMessages(proc.Config)),
	})
	if err != nil {
		return forPerson(err, runMessages(proc.Config)) // speak.go
	}
	reportProcedureDone(io, res, "tokenrun "+p.command, runMessages(proc.Config))
	return nil
}

func scriptsCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "scripts",
		Usage: "the procedure scripts tree",
		Subcommands: []*cli.Command{{
			Name:      "export",
			Usage:     "write the shipped scripts tree to DIR, as a starting point for a bank's changes",
			ArgsUsage: "DIR",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return runner.UsageError{Err: errors.New("scripts export takes the target directory: tokenrun scripts export DIR")}
				}
				dir := c.Args().First()
				if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
					return runner.UsageError{Err: fmt.Errorf("%s is not empty: export into a new directory (nothing is ever overwritten)", dir)}
				}
				if err := os.CopyFS(dir, scripts.FS); err != nil {
					return err
				}
				fmt.Fprintf(io.out, "shipped scripts written to %s; run them with --scripts %s\n", dir, dir)
				return nil
			},
		}, checkCommand(io), typesCommand(io), docsCommand(io), keygenCommand(io), packCommand(io), verifyBundleCommand(io), installCommand(io), rollbackCommand(io), listCommand(io)},
	}
}
