package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/diagnose"
	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/runner"
)

func diagnoseCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "diagnose",
		Usage: "report modules, tokens, scripts, pending enrollments and recent transcripts, for support",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write the report to `FILE` instead of standard output"},
			&cli.BoolFlag{Name: "text", Usage: "readable text instead of JSON"},
			&cli.StringSliceFlag{Name: "module", Aliases: []string{"m"}, EnvVars: []string{"TOKENRUN_MODULE"},
				Usage: "also look at this PKCS#11 library (repeatable)"},
			&cli.StringSliceFlag{Name: "soft", EnvVars: []string{"TOKENRUN_SOFT"},
				Usage: "also look at the software token in `DIR` (repeatable; never created)"},
			&cli.BoolFlag{Name: "probe", Value: true, Usage: "look at the usual PKCS#11 module locations of this system (KAZTOKEN, SafeNet eToken, JaCarta, Rutoken, OpenSC, SoftHSM2, openCryptoki)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return runner.UsageError{Err: fmt.Errorf("diagnose takes no arguments (got %q)", c.Args().First())}
			}
			d := diagnose.Gather(c.Context, diagnose.Options{Modules: c.StringSlice("module"), Soft: c.StringSlice("soft"), Probe: c.Bool("probe")})
			var buf strings.Builder
			if c.Bool("text") {
				diagnose.WriteText(&buf, d)
			} else {
				b, err := json.MarshalIndent(d, "", "  ")
				if err != nil {
					return fmt.Errorf("diagnosis: %w", err)
				}
				buf.Write(append(b, '\n'))
			}
			if out := c.String("out"); out != "" {
				if err := atomicfile.WriteFile(out, []byte(buf.String()), 0o600); err != nil {
					return fmt.Errorf("diagnose --out: %w", err)
				}
				fmt.Fprintf(io.err, "diagnosis written to %s\n", out)
				return nil
			}
			_, err := io.out.Write([]byte(buf.String()))
			return err
		},
	}
}
