package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/signing"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// fileList collects a repeatable flag without splitting on commas, as cli.StringSliceFlag
// would: a file name may contain one.
type fileList []string

func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }
func (l *fileList) String() string     { return strings.Join(*l, " ") }

func signCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign documents (CMS SignedData) with a key on the token: many documents, one login",
		ArgsUsage: "[FILE...] (more documents, as with --in)",
		Description: "The key is named by --token: pkcs11:token=LABEL;object=KEY_LABEL (and/or id=%01%02). Its certificate\n" +
			"is the one on the token with the key's id. The PIN comes from --pin-file, from the URI's\n" +
			"pin-source=file:PATH, or from the terminal; with one try left, only from a person at a terminal.",
		Flags: append(tokenFlags(),
			&cli.StringFlag{Name: "pin-file", EnvVars: []string{"TOKENRUN_PIN_FILE"},
				Usage: "read the user PIN from `FILE` (one trailing newline is dropped); keep it chmod 600"},
			&cli.GenericFlag{Name: "in", Value: &fileList{}, TakesFile: true,
				Usage: "a document `FILE` to sign; repeat for several, signed in one login"},
			&cli.BoolFlag{Name: "detached", Usage: "leave the document out of the signature (the verifier then needs both)"},
			&cli.StringFlag{Name: "out", TakesFile: true, Usage: "write the signature to `FILE` (one document only; default: the document's name + .p7s)"},
			&cli.StringFlag{Name: "out-dir", TakesFile: true, Usage: "write each signature to `DIR`/NAME.p7s instead of next to its document"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite signature files that exist"},
			&cli.StringFlag{Name: "ui", EnvVars: []string{"TOKENRUN_UI"},
				Usage: "front-end for the PIN prompt and the report: terminal, or json (JSON lines on stdin/stdout, docs/protocol.md)"},
			lockWaitFlag(),
			signLangFlag(),
		),
		Action: func(c *cli.Context) (err error) {
			messages, err := signMessages(c) // speak.go
			if err != nil {
				return err
			}
			inputs := append([]string{}, *c.Generic("in").(*fileList)...)
			inputs = append(inputs, c.Args().Slice()...)
			jobs, err := signing.PlanOutputs(inputs, c.String("out"), c.String("out-dir"), c.Bool("force"))
			if err != nil {
				return runner.UsageError{Err: err}
			}
			// The URI is parsed again by openSource; parsing it here first lets every usage
			// error show before a module is loaded.
			uri, err := token.ParseURI(c.String("token"))
			if err != nil {
				return runner.UsageError{Err: fmt.Errorf("--token: %w", err)}
			}
			if err := signing.CheckKeyURI(uri); err != nil {
				return runner.UsageError{Err: err}
			}
			pinFile, err := signing.PINFilePath(c.String("pin-file"), uri.PINSource)
			if err != nil {
				return runner.UsageError{Err: err}
			}
			fe, err := signFrontend(c, io)
			if err != nil {
				return err
			}
			ctx, _, end := beginRun(c.Context, fe, ui.RunInfo{Command: "sign", Procedure: "sign"}, messages)
			summary := &signSummary{total: len(jobs)}
			defer func() { end(summary.result(), err) }()
			p, uri, err := openSource(c)
			if err != nil {
				return err
			}
			defer p.Close()
			return forPerson(signing.Sign(ctx, signing.Batch{
				Provider: p, URI: uri, PINFile: pinFile, Jobs: jobs, Detached: c.Bool("detached"),
				Force: c.Bool("force"), Out: io.out, Err: io.err, LockWait: c.Duration("lock-wait"),
				Frontend: ui.SetChrome(fe, catalogChrome(messages)),
				Messages: messages, Person: personWorded(messages),
				Signed: func(ctx context.Context, j signing.Job, n int) error { return summary.signed(ctx, fe, j, n) },
				Done:   summary.done,
			}), messages)
		},
	}
}
