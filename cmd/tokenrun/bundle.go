package main

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bundle"
	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/runner"
)

// Signed script bundles: keygen, pack, verify, install, rollback, list. The format and the
// checks live in package bundle; these commands only read flags and report.

func trustFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "trust", Usage: "trust the release key in `NAME.pub` (repeatable), besides the system trust file " + bundle.SystemTrustPath}
}

// trustedKeys are the --trust keys (returned apart too: an install remembers them) plus the
// built-in and system-wide ones.
func trustedKeys(c *cli.Context, io stdio) (all, given bundle.Keyring, err error) {
	for _, f := range c.StringSlice("trust") {
		b, err := readfile.Read(f, readfile.Keys)
		if err != nil {
			return nil, nil, runner.UsageError{Err: fmt.Errorf("--trust: %w", err)}
		}
		keys, err := bundle.ParsePublicKeys(b)
		if err != nil {
			return nil, nil, runner.UsageError{Err: fmt.Errorf("--trust %s: %w", f, err)}
		}
		given.Add(keys...)
	}
	all.Add(given...)
	all.Add(bundle.SystemKeys(io.err)...)
	if len(all) == 0 {
		return nil, nil, runner.UsageError{Err: bundle.ErrNoTrust}
	}
	return all, given, nil
}

// readBundle reads and verifies FILE; a refusal is a runner.VerifyError (exit 8).
func readBundle(c *cli.Context, io stdio, keys bundle.Keyring) (*bundle.Bundle, string, error) {
	if c.NArg() != 1 {
		return nil, "", runner.UsageError{Err: fmt.Errorf("%s takes one bundle file: tokenrun scripts %s --trust KEY.pub FILE", c.Command.Name, c.Command.Name)}
	}
	file := c.Args().First()
	f, err := readfile.Open(file, readfile.Bundle)
	if err != nil {
		return nil, "", runner.UsageError{Err: err}
	}
	defer f.Close()
	files, err := bundle.Read(f)
	if err != nil {
		return nil, "", runner.VerifyError{Err: fmt.Errorf("%s: %w", file, err)}
	}
	b, err := bundle.Verify(files, keys, file)
	if err != nil {
		return nil, "", runner.VerifyError{Err: err}
	}
	return b, file, nil
}

func keygenCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "make a release key pair: NAME (private, mode 0600) and NAME.pub",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true, Usage: "write the private key to `NAME` and the public key to NAME.pub"},
			&cli.StringFlag{Name: "comment", Usage: "a note kept with the key, e.g. the bank and year"},
		},
		Action: func(c *cli.Context) error {
			out := c.String("out")
			k, err := bundle.GenerateKey(c.String("comment"))
			if err != nil {
				return err
			}
			// Never over an existing key: losing a release key is not recoverable.
			if err := atomicfile.WriteNew(out, []byte(k.String()), 0o600); err != nil {
				return runner.UsageError{Err: fmt.Errorf("%w (keys are never overwritten: choose another --out)", err)}
			}
			if err := atomicfile.WriteNew(out+".pub", []byte(k.Public().String()), 0o644); err != nil {
				return runner.UsageError{Err: fmt.Errorf("%w (keys are never overwritten: choose another --out)", err)}
			}
			fmt.Fprintf(io.out, "release key %s written: %s (private, keep it offline) and %s.pub (give it to --trust)\n", k.Public().ID(), out, out)
			return nil
		},
	}
}

func packCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "pack",
		Usage: "sign the scripts tree in DIR into one bundle file",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Required: true, Usage: "the scripts tree `DIR` (as tokenrun scripts export writes it)"},
			&cli.StringFlag{Name: "key", Required: true, Usage: "the private release key `NAME`"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "write the bundle to `FILE`"},
		},
		Action: func(c *cli.Context) error {
			kb, err := readfile.Read(c.String("key"), readfile.Keys)
			if err != nil {
				return runner.UsageError{Err: fmt.Errorf("--key: %w", err)}
			}
			key, err := bundle.ParsePrivateKey(kb)
			if err != nil {
				return runner.UsageError{Err: fmt.Errorf("--key %s: %w", c.String("key"), err)}
			}
			var buf bytes.Buffer
			m, err := bundle.Pack(c.String("dir"), key, &buf)
			if err != nil {
				return runner.UsageError{Err: err}
			}
			if err := atomicfile.WriteFile(c.String("out"), buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(io.out, "scripts %s (%d files) packed into %s, signed by %s\n", m.Version, len(m.Files)+1, c.String("out"), key.Public().ID())
			return nil
		},
	}
}

func verifyBundleCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle's signature and every file in it, without installing",
		ArgsUsage: "FILE",
		Flags:     []cli.Flag{trustFlag()},
		Action: func(c *cli.Context) error {
			keys, _, err := trustedKeys(c, io)
			if err != nil {
				return err
			}
			b, file, err := readBundle(c, io, keys)
			if err != nil {
				return err
			}
			fmt.Fprintf(io.out, "%s: scripts %s, %d files, signed by %s %s: OK\n", file, b.Manifest.Version, len(b.Manifest.Files), b.Signer.ID(), b.Signer.Comment)
			return nil
		},
	}
}

func installCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "verify a bundle, then make it the active scripts under TOKENRUN_HOME (the former stays as previous)",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{trustFlag(),
			&cli.BoolFlag{Name: "allow-downgrade", Usage: "install a bundle older than the active one"}},
		Action: func(c *cli.Context) error {
			keys, given, err := trustedKeys(c, io)
			if err != nil {
				return err
			}
			b, file, err := readBundle(c, io, keys)
			if err != nil {
				return err
			}
			home, err := runner.Home()
			if err != nil {
				return err
			}
			m, err := bundle.OpenStore(home).Install(b, bundle.InstallOptions{Source: file, AllowDowngrade: c.Bool("allow-downgrade"), UserKeys: given})
			if errors.Is(err, bundle.ErrDowngrade) {
				return runner.UsageError{Err: err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(io.out, "scripts %s installed and active (%s), signed by %s\n", m.Version, m.ID, m.Signer)
			return nil
		},
	}
}

func rollbackCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "make the previous installed scripts active again",
		Action: func(c *cli.Context) error {
			home, err := runner.Home()
			if err != nil {
				return err
			}
			from, to, err := bundle.OpenStore(home).Rollback()
			if err != nil {
				return runner.UsageError{Err: err}
			}
			fmt.Fprintf(io.out, "scripts %s active again (was %s)\n", to, from)
			return nil
		},
	}
}

func listCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "show the active scripts, where they came from, and every procedure's version",
		Action: func(c *cli.Context) error {
			b, set, err := runner.InstalledBundle(io.err)
			if err != nil {
				return err
			}
			home, err := runner.Home()
			if err != nil {
				return err
			}
			store := bundle.OpenStore(home)
			esc := termtext.Escape
			if b == nil {
				fmt.Fprintf(io.out, "active: embedded scripts %s (built into tokenrun)\n", esc(set.Manifest.Version))
			} else {
				// The signer is the key that verified the bundle just now; the install record
				// (unsigned, in $TOKENRUN_HOME) gives only where it came from and when.
				signer := b.Signer.ID()
				if b.Signer.Comment != "" {
					signer += " " + esc(b.Signer.Comment)
				}
				fmt.Fprintf(io.out, "active: scripts %s (%s), signed by %s", esc(b.Manifest.Version), esc(set.Source), signer)
				if m, err := store.Meta(b.ID()); err == nil {
					fmt.Fprintf(io.out, ", installed from %s %s", esc(m.Source), m.Installed.Format("2006-01-02 15:04:05Z"))
				} else {
					fmt.Fprintf(io.out, " (no install record: %s)", esc(err.Error()))
				}
				fmt.Fprintln(io.out)
			}
			if prev, _ := store.Previous(); prev != "" {
				fmt.Fprintf(io.out, "previous: %s (tokenrun scripts rollback)\n", esc(prev))
			}
			names := set.Names()
			sort.Strings(names)
			for _, n := range names {
				v := esc(set.Manifest.ProcedureVersions[n].Version)
				if v == "" {
					v = "(version in " + esc(set.Manifest.Procedures[n]) + ")"
				}
				fmt.Fprintf(io.out, "  %-12s %s\n", esc(n), v)
			}
			return nil
		},
	}
}
