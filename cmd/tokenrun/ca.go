package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/signing"
)

// caCommand is the development CA: what the tests, the demo and a bank's staging use in
// place of the National Bank's CA.
func caCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "ca",
		Usage: "a development certificate authority with an EST server (tests, demo, staging)",
		Subcommands: []*cli.Command{
			{
				Name:      "init",
				Usage:     "make a new CA in DIR (root key and certificate, server certificate for 127.0.0.1/localhost)",
				ArgsUsage: "DIR",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return runner.UsageError{Err: errors.New("ca init takes the CA directory: tokenrun ca init DIR")}
					}
					a, err := devca.Init(c.Args().First())
					if err != nil {
						if errors.Is(err, devca.ErrExists) {
							return runner.UsageError{Err: err}
						}
						return err
					}
					fmt.Fprintf(io.out, "CA made in %s; its root certificate (give it to clients as ca.roots): %s\n",
						a.Dir(), filepath.Join(a.Dir(), devca.RootCertFile))
					return nil
				},
			},
			{
				Name:  "add-user",
				Usage: "issue a user's initial-key container (Key.pfx), protected by the OTP PIN",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Required: true, Usage: "the CA `DIR`"},
					&cli.StringFlag{Name: "user-id", Required: true, Usage: "the user ID on the acceptance act, e.g. qq111111_qwertyui"},
					&cli.StringFlag{Name: "pin", Usage: "the OTP-card PIN protecting the container (development CA only: prefer --pin-file)"},
					&cli.StringFlag{Name: "pin-file", Usage: "read the PIN from `FILE`"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "where to write the container, e.g. Key.pfx"},
				},
				Action: func(c *cli.Context) error {
					pin, err := flagSecret(c, io, "pin", "pin-file")
					if err != nil {
						return err
					}
					a, err := devca.Open(c.String("dir"))
					if err != nil {
						return runner.UsageError{Err: err}
					}
					if err := a.AddUser(c.String("user-id"), pin, c.String("out")); err != nil {
						return err
					}
					fmt.Fprintf(io.out, "initial key for %s written to %s\n", c.String("user-id"), c.String("out"))
					return nil
				},
			},
			{
				Name:  "serve",
				Usage: "serve EST (RFC 7030) under /.well-known/est/ until interrupted",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Required: true, Usage: "the CA `DIR`"},
					&cli.StringFlag{Name: "listen", Value: devca.DefaultListenAddr, Usage: "`ADDR` to listen on (loopback by default)"},
					&cli.IntFlag{Name: "pending-first", Usage: "answer each user's first `N` enrollments with 202 + Retry-After"},
				},
				Action: func(c *cli.Context) error {
					a, err := devca.Open(c.String("dir"))
					if err != nil {
						return runner.UsageError{Err: err}
					}
					ln, err := net.Listen("tcp", c.String("listen"))
					if err != nil {
						return runner.UsageError{Err: fmt.Errorf("listen on %s: %w", c.String("listen"), err)}
					}
					ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
					defer stop()
					fmt.Fprintf(io.err, "EST server on https://%s/.well-known/est/ (labels 1y, 3y); roots: %s\n",
						ln.Addr(), filepath.Join(a.Dir(), devca.RootCertFile))
					err = a.ServeListener(ctx, ln, devca.ServerOptions{
						PendingFirst: c.Int("pending-first"),
						Log:          slog.New(slog.NewTextHandler(io.err, nil)),
					})
					if ctx.Err() != nil {
						return nil // interrupted: a normal stop
					}
					return err
				},
			},
		},
	}
}

// flagSecret reads a secret from --NAME or --NAME-file, exactly one of them. The file is read
// as tokenrun sign reads its PIN file.
func flagSecret(c *cli.Context, io stdio, name, fileFlag string) (string, error) {
	v, f := c.String(name), c.String(fileFlag)
	switch {
	case v != "" && f != "":
		return "", runner.UsageError{Err: fmt.Errorf("give --%s or --%s, not both", name, fileFlag)}
	case f != "":
		pin, err := signing.ReadPINFile(f, func(msg string) { fmt.Fprintf(io.err, "warning: %s\n", msg) })
		if err != nil {
			return "", runner.UsageError{Err: fmt.Errorf("--%s: %w", fileFlag, err)}
		}
		return pin, nil
	case v != "":
		return v, nil
	}
	return "", runner.UsageError{Err: fmt.Errorf("give --%s or --%s", name, fileFlag)}
}
