package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/diagnose"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
)

func tokensCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "tokens",
		Usage: "list the tokens present, with their PIN states",
		Flags: append(tokenFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return runner.UsageError{Err: fmt.Errorf("tokens takes no arguments (got %q)", c.Args().First())}
			}
			p, uri, err := openSource(c)
			if err != nil {
				return err
			}
			defer p.Close()
			infos, err := p.Tokens(c.Context)
			if err != nil {
				return err
			}
			var shown []token.Info
			for _, i := range infos {
				if uri.MatchToken(i) {
					shown = append(shown, i)
				}
			}
			if c.Bool("json") {
				if shown == nil {
					shown = []token.Info{}
				}
				enc := json.NewEncoder(io.out)
				enc.SetIndent("", "  ")
				return enc.Encode(shown)
			}
			if len(shown) == 0 {
				fmt.Fprintf(io.err, "no token present in %s\n", p.Description())
				return nil
			}
			w := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LABEL\tSERIAL\tMANUFACTURER\tMODEL\tUSER PIN\tSO PIN")
			for _, i := range shown {
				label := i.Label
				if !i.Initialized {
					label = "(uninitialised)"
				}
				user := diagnose.PINState(i.UserPIN)
				if i.Initialized && !i.UserPINInitialized {
					user = "not set"
				}
				// Label, serial, manufacturer and model are whatever the token says.
				esc := termtext.Escape
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", esc(label), esc(i.Serial), esc(i.Manufacturer), esc(i.Model), user, diagnose.PINState(i.SOPIN))
			}
			return w.Flush()
		},
	}
}
