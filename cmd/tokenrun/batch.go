package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/batch"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
)

// exitBatchFailed: a batch ended with a row failed, or left pending when no token came for
// --idle (the report says which).
const exitBatchFailed = 10

// batchFailedError is a batch in which rows failed.
type batchFailedError struct{ summary batch.Summary }

func (e batchFailedError) Error() string {
	if e.summary.Counts[batch.Failed] == 0 {
		return fmt.Sprintf("%d row(s) not finished (rerun to continue): %s", e.summary.Counts[batch.Pending], e.summary)
	}
	return fmt.Sprintf("%d row(s) failed: %s", e.summary.Counts[batch.Failed], e.summary)
}

func batchCommand(io stdio) *cli.Command {
	var subs []*cli.Command
	for _, p := range procedures {
		if p.name == "format" {
			continue // formatting never runs from a list: one token, a person, a reason
		}
		subs = append(subs, &cli.Command{
			Name:   p.command,
			Usage:  "run " + p.command + " for each user of a list, one token each",
			Flags:  append(procedureFlags(), batchFlags()...),
			Action: func(c *cli.Context) error { return runBatch(c, io, p) },
		})
	}
	return &cli.Command{Name: "batch", Usage: "run a procedure for a list of users: tokens one after another or several at once, a report, resumable",
		Subcommands: subs}
}

func batchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "list", Required: true, Usage: "the users: CSV (';' or ',') or YAML, columns named by prompt id, plus token and id"},
		&cli.StringSliceFlag{Name: "report", Usage: "write each row's outcome to `FILE` (.csv or .jsonl) as it ends; repeatable"},
		&cli.IntFlag{Name: "parallel", Usage: "work on up to N tokens at once (default 1; 4 with a token column)"},
		&cli.BoolFlag{Name: "retry-failed", Usage: "run again only the rows that failed"},
		&cli.StringFlag{Name: "soft-root", Usage: "software tokens: each directory that appears in `DIR` is a token plugged in"},
		&cli.DurationFlag{Name: "ca-pause", Value: 30 * time.Second, Usage: "how long a CA outage pauses the batch before it tries again"},
		&cli.DurationFlag{Name: "idle", Usage: "stop when no token came for this long (0: wait until stopped)"},
	}
}

func runBatch(c *cli.Context, io stdio, p procedure) error {
	if c.NArg() > 0 {
		return runner.UsageError{Err: fmt.Errorf("batch %s takes no arguments (got %q)", p.command, c.Args().First())}
	}
	list, err := batch.ReadList(c.String("list"), io.err)
	if err != nil {
		return runner.UsageError{Err: err}
	}
	common := map[string]string{}
	if f := c.String("answers"); f != "" {
		if common, err = batch.ReadCommon(f); err != nil {
			return runner.UsageError{Err: err}
		}
	}
	for _, r := range c.StringSlice("report") {
		if !strings.HasSuffix(r, ".csv") && !strings.HasSuffix(r, ".jsonl") {
			return runner.UsageError{Err: fmt.Errorf("--report %s: want a .csv or .jsonl file", r)}
		}
	}
	rows, err := newBatchRows(c, io, p)
	if err != nil {
		return err
	}
	defer rows.close()
	var match *token.URI
	if root := c.String("soft-root"); root != "" {
		if c.String("module") != "" || len(c.StringSlice("soft")) > 0 {
			return runner.UsageError{Err: errors.New("give one of --module, --soft or --soft-root")}
		}
		prov, err := soft.OpenRoot(soft.Options{}, root)
		if err != nil {
			return runner.UsageError{Err: err}
		}
		rows.provider = prov
	} else {
		prov, uri, err := openSource(c)
		if err != nil {
			return err
		}
		rows.provider, match = prov, uri
	}
	defer rows.provider.Close()
	fmt.Fprintf(io.err, "batch %s: %d rows from %s\n", p.command, len(list.Rows), list.Path)
	sum, err := batch.Run(c.Context, batch.Options{
		Procedure: p.name, List: list, Common: common, Provider: rows.provider, Run: rows.run,
		Reports: c.StringSlice("report"), Parallel: c.Int("parallel"), RetryFailed: c.Bool("retry-failed"),
		Holds: rows.holds, Match: match, Out: io.err, CAPause: c.Duration("ca-pause"), Idle: c.Duration("idle"),
	})
	fmt.Fprintf(io.err, "batch %s: %s in %s (journal %s)\n", p.command, sum, sum.Elapsed.Round(time.Second), sum.Journal)
	if err != nil {
		return err
	}
	if sum.Failed() || sum.Counts[batch.Pending] > 0 {
		return batchFailedError{sum}
	}
	return nil
}

// tokenURI narrows a row's run to its one token.
func tokenURI(info token.Info) (*token.URI, error) {
	return token.ParseURI("pkcs11:serial=" + escapeURI(info.Serial))
}

func escapeURI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
