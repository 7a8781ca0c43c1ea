package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
)

// The demo's client, as on the bank's acceptance act and OTP card.
const (
	demoUserID = "qq111111_qwertyui"
	demoOTPPIN = "AB1CD0EFG2H"
	demoPIN    = "Tb4nRp8w" // the password after the demo's change (answers-change-pin.yaml)
)

// demoCommand runs the main job end to end on embedded defaults, in a temporary directory:
// a development CA on loopback, a blank software token, the bank's initial key, an
// enrollment from a shipped answers file, a password change, a signed payment order and its
// verification. Each step is the tokenrun command a person would type, printed before it
// runs, so the demo doubles as a walk-through.
func demoCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "enroll a fresh software token against a development CA, change its password, sign and verify a payment order",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work in `DIR` (kept afterwards) instead of a temporary directory"},
			&cli.StringFlag{Name: "lang", Value: "en", Usage: "language of the procedures: kk, ru or en"},
		},
		Action: func(c *cli.Context) error {
			dir := c.String("dir")
			if dir == "" {
				tmp, err := os.MkdirTemp("", "tokenrun-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return runner.UsageError{Err: fmt.Errorf("--dir %s is not empty: the demo starts from nothing", dir)}
			}
			return runDemo(c.Context, io, dir, c.String("lang"))
		},
	}
}

func runDemo(ctx context.Context, io stdio, dir, lang string) error {
	start := time.Now()
	out := io.out
	step := func(format string, args ...any) { fmt.Fprintf(out, "\n== "+format+"\n", args...) }

	// Every path the commands see is relative to dir, as a person working there would type it.
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	defer os.Chdir(cwd)
	// The demo's journals stay in the demo's directory, not in the user's.
	restore := setenv("TOKENRUN_HOME", "home")
	defer restore()

	step("1. The bank's development CA (in this process, on loopback)")
	app := func(args ...string) error {
		fmt.Fprintf(out, "$ tokenrun %s\n", strings.Join(args, " "))
		err := newApp(stdio{in: strings.NewReader(""), out: out, err: out}).RunContext(ctx, append([]string{"tokenrun"}, args...))
		if err != nil {
			return fmt.Errorf("tokenrun %s: %w", args[0], err)
		}
		return nil
	}
	if err := app("ca", "init", "ca"); err != nil {
		return err
	}
	// The OTP PIN goes through a file: even a demo's secrets never reach the screen.
	if err := os.WriteFile("otp-pin.txt", []byte(demoOTPPIN+"\n"), 0o600); err != nil {
		return err
	}
	if err := app("ca", "add-user", "--dir", "ca", "--user-id", demoUserID, "--pin-file", "otp-pin.txt", "--out", "Key.pfx"); err != nil {
		return err
	}
	authority, err := devca.Open("ca")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srvCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- authority.ServeListener(srvCtx, ln, devca.ServerOptions{}) }()
	defer func() { stop(); <-served }()
	url := "https://" + ln.Addr().String()
	fmt.Fprintf(out, "EST server on %s/.well-known/est/\n", url)

	step("2. Enroll a blank software token: key pair on the token, certificate from the CA")
	for _, f := range []string{"answers-enroll.yaml", "answers-change-pin.yaml", "payment-order.txt"} {
		b, err := fs.ReadFile(scripts.FS, "demo/"+f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return err
		}
	}
	region := []string{"--set", "ca.url=" + url, "--set", "ca.roots=ca/" + devca.RootCertFile, "--lang", lang}
	if err := app(append([]string{"enroll", "--soft", "token", "--answers", "answers-enroll.yaml", "--yes"}, region...)...); err != nil {
		return err
	}

	step("3. Change the token's password")
	if err := app(append([]string{"change-pin", "--soft", "token", "--answers", "answers-change-pin.yaml"}, region...)...); err != nil {
		return err
	}

	step("4. Sign a payment order with the key on the token, and verify the signature")
	if err := os.WriteFile("pin.txt", []byte(demoPIN+"\n"), 0o600); err != nil {
		return err
	}
	if err := app("sign", "--soft", "token", "--token", "pkcs11:object=Demo%20LLP", "--pin-file", "pin.txt", "--detached", "--in", "payment-order.txt", "--lang", lang); err != nil {
		return err
	}
	if err := app("verify", "--in", "payment-order.txt.p7s", "--content", "payment-order.txt", "--roots", "ca/"+devca.RootCertFile); err != nil {
		return err
	}

	step("Done in %s. What the token holds now:", time.Since(start).Round(10*time.Millisecond))
	if err := app("tokens", "--soft", "token"); err != nil {
		return err
	}
	if _, err := os.Stat("payment-order.txt.p7s"); err != nil {
		return errors.New("the demo made no signature")
	}
	return nil
}

// setenv sets an environment variable for the demo and returns what puts it back.
func setenv(key, value string) func() {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	return func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	}
}
