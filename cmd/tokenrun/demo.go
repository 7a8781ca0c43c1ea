package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/ui"
)

// demoCommand runs the shipped tour on a fresh software token, non-interactively: what a
// new user runs first, with nothing installed.
func demoCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the shipped tour on a fresh software token in a temporary directory",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "keep the software token in `DIR` instead of a temporary directory"},
		},
		Action: func(c *cli.Context) error {
			// The demo is read as a story: everything goes to stdout, in order.
			io := stdio{in: io.in, out: io.out, err: io.out}
			dir := c.String("dir")
			if dir == "" {
				tmp, err := os.MkdirTemp("", "tokenrun-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = filepath.Join(tmp, "token")
			}
			p, err := soft.Open(soft.Options{}, dir)
			if err != nil {
				return usageError{err}
			}
			defer p.Close()
			fmt.Fprintf(io.err, "Software token in %s (blank: user password 12345678, administrator 87654321)\n", dir)
			script, err := loadScript("tour")
			if err != nil {
				return err
			}
			// The demo answers its one prompt itself, as a bank's batch file would.
			answers := ui.NewAnswers(map[string]string{"current_pin": "12345678"}, ui.AnswersOptions{Out: io.out, Name: "the demo's answers"})
			res, err := execute(c.Context, runSpec{script: script, provider: p, frontend: answers, stdio: io})
			if err != nil {
				return err
			}
			reportDone(io, res)
			return nil
		},
	}
}
