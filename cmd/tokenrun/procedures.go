package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	bindpolicy "github.com/tokenrun/tokenrun/bindings/policy"

	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/region"
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
	return append(runFlags(),
		&cli.StringFlag{Name: "region", Value: region.DefaultName, EnvVars: []string{"TOKENRUN_REGION"},
			Usage: "region configuration `NAME` (regions/NAME.yaml in the scripts tree)"},
		&cli.StringSliceFlag{Name: "set", Usage: "override one region value, e.g. --set ca.url=https://127.0.0.1:8443 (repeatable)"},
		&cli.StringFlag{Name: "lang", EnvVars: []string{"TOKENRUN_LANG"}, Usage: "language: kk, ru or en (default: the region's)"},
		&cli.StringFlag{Name: "scripts", EnvVars: []string{"TOKENRUN_SCRIPTS"},
			Usage: "run the scripts tree in `DIR` (unsigned) instead of the shipped one"},
		noTranscriptFlag(),
	)
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

// loadSet is --scripts DIR with a warning that it is unsigned, else the verified active
// installed bundle (see bundle.go), else the shipped scripts tree.
func loadSet(c *cli.Context, io stdio) (*scripts.Set, error) {
	dir := c.String("scripts")
	if dir == "" {
		return installedOrEmbedded(io)
	}
	fmt.Fprintf(io.err, "warning: running unsigned scripts from %s\n", dir)
	s, err := scripts.Load(os.DirFS(dir), dir)
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// regionConfig loads the region with --set overrides and --lang: the script's ctx.config,
// the policy module that checks what people type against it, and the region itself.
func regionConfig(c *cli.Context, set *scripts.Set) (map[string]any, runtime.Module, *region.Region, error) {
	r, err := region.Load(set.FS, c.String("region"))
	if err != nil {
		return nil, runtime.Module{}, nil, usageError{err}
	}
	if err := r.Set(c.StringSlice("set")...); err != nil {
		return nil, runtime.Module{}, nil, usageError{err}
	}
	lang := c.String("lang")
	if lang == "" {
		lang = r.Language
	}
	messages, err := r.Catalog(lang)
	if err != nil {
		return nil, runtime.Module{}, nil, usageError{err}
	}
	cfg := r.Map()
	cfg["language"] = lang
	cfg["messages"] = messages
	return cfg, bindpolicy.Module(r, messages), r, nil
}

func runProcedure(c *cli.Context, io stdio, p procedure) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("%s takes no arguments (got %q)", p.command, c.Args().First())}
	}
	set, err := loadSet(c, io)
	if err != nil {
		return err
	}
	script, ok := set.Procedures[p.name]
	if !ok {
		return usageError{fmt.Errorf("the scripts tree %s has no procedure %s", set.Source, p.name)}
	}
	cfg, policy, reg, err := regionConfig(c, set)
	if err != nil {
		return err
	}
	if m, ok := cfg["messages"].(map[string]string); ok {
		setStoppingNotice(m["cancel_stopping"]) // the first Ctrl-C's line, in the run's language
	}
	store, err := openJournal()
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
	ui.SetChrome(fe, catalogChrome(runMessages(cfg))) // speak.go
	args := map[string]any{"support_override": c.Bool("support-override"), "scripts": set.Source, "scripts_version": set.Manifest.Version}
	tr, err := procedureTranscript(c, p, set, cfg, args)
	if err != nil {
		return err
	}
	res, err := execute(c.Context, runSpec{
		script: script, libs: set.Libraries, provider: prov, uri: uri, frontend: fe, transcript: tr,
		timeout: c.Duration("timeout"), config: cfg, journal: store, stdio: io, extra: []runtime.Module{policy},
		args: args, command: "tokenrun " + p.command, lockWait: c.Duration("lock-wait"),
		memory: int64(reg.Sandbox.MemoryMiB) << 20,
	})
	if err != nil {
		return forPerson(err, runMessages(cfg)) // speak.go
	}
	reportProcedureDone(io, res, "tokenrun "+p.command, runMessages(cfg))
	return nil
}

// homeDir is TOKENRUN_HOME, or tokenrun under the user's config directory.
func homeDir() (string, error) {
	if h := os.Getenv("TOKENRUN_HOME"); h != "" {
		return h, nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", usageError{fmt.Errorf("no data directory: set TOKENRUN_HOME: %w", err)}
	}
	return filepath.Join(cfg, "tokenrun"), nil
}

// openJournal opens the enrollment journals under the data directory.
func openJournal() (*journal.Store, error) {
	home, err := homeDir()
	if err != nil {
		return nil, err
	}
	return journal.Open(filepath.Join(home, "journal"))
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
					return usageError{errors.New("scripts export takes the target directory: tokenrun scripts export DIR")}
				}
				dir := c.Args().First()
				if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
					return usageError{fmt.Errorf("%s is not empty: export into a new directory (nothing is ever overwritten)", dir)}
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
