package main

// What the person reads of a procedure run besides the procedure's own texts: the front-end's
// chrome and the run's last line, in the run's language from its catalog. The technical
// account (the Go error chain, the script's file and line, the module's message) goes to
// --debug and the transcript, never to the person's screen.

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// runMessages is the run's catalog in cfg (regionConfig puts it there), nil when none.
func runMessages(cfg map[string]any) map[string]string {
	m, _ := cfg["messages"].(map[string]string)
	return m
}

// catalogChrome is the front-end's chrome (ui_* keys) rendered from the run's catalog; a key
// the catalog lacks (an older bundle) stays English.
func catalogChrome(messages map[string]string) ui.Chrome {
	if messages == nil {
		return nil
	}
	return func(key string, args map[string]any) string {
		if _, ok := messages[key]; !ok {
			return ""
		}
		return region.Text(messages, key, args)
	}
}

// personError is a procedure's failure with the line the person reads: the catalog's text for
// its code, or none when the procedure has already shown it (an error table marked shown).
// err is kept whole for the exit code, errors.Is and --debug.
type personError struct {
	err    error
	line   string
	detail string // the module's message behind a shown error, for --debug
}

func (e *personError) Error() string { return e.err.Error() }
func (e *personError) Unwrap() error { return e.err }

// forPerson wraps a procedure's failure for the person; a cancellation by signal (its notice
// is already the catalog's), and a mistake in how tokenrun was called or in its answers file
// (for whoever wrote the command line or the file: it names the flag, the prompt id, the
// value) pass through.
func forPerson(err error, messages map[string]string) error {
	var ce *cancelledError
	var ue usageError
	if err == nil || messages == nil || errors.As(err, &ce) || errors.As(err, &ue) || errors.Is(err, ui.ErrNoAnswer) {
		return err
	}
	pe := &personError{err: err}
	if errors.As(err, &pe) {
		return err // already worded for the person (sign's PIN checks)
	}
	pe = &personError{err: err}
	var se *runtime.ScriptError
	if errors.As(err, &se) {
		if shown, _ := se.Fields["shown"].(bool); shown {
			pe.detail, _ = se.Fields["detail"].(string)
			return pe
		}
	}
	code := failureCode(err)
	key := "error_" + strings.ToLower(code)
	if _, ok := messages[key]; !ok {
		switch errcode.ClassOf(code) {
		case errcode.ClassToken:
			key = "error_token_other"
		case errcode.ClassCA:
			key = "error_ca_other"
		default:
			key = "error_other"
		}
	}
	pe.line = region.Text(messages, key, map[string]any{"code": code})
	return pe
}

// failureCode is the error code a failure is known by: the script's, else the one its Go
// error maps to.
func failureCode(err error) string {
	if errors.Is(err, ui.ErrCancelled) {
		return errcode.Cancelled
	}
	var c coded
	if errors.As(err, &c) && c.ErrorCode() != "" {
		return c.ErrorCode()
	}
	if code := errcode.Of(err); code != errcode.TokenError {
		return code
	}
	var se *runtime.ScriptError
	if errors.As(err, &se) {
		return "SCRIPT_ERROR"
	}
	return errcode.TokenError
}

// printFailure writes a failed command's last line: the person's line for a procedure (and with
// debug the technical one too), else the error as it is.
func printFailure(w io.Writer, err error, debug bool) {
	var pe *personError
	if !errors.As(err, &pe) {
		fmt.Fprintf(w, "tokenrun: %s\n", err)
		return
	}
	if pe.line != "" {
		fmt.Fprintf(w, "tokenrun: %s\n", pe.line)
	}
	if debug {
		fmt.Fprintf(w, "tokenrun: debug: %s\n", pe.err)
		if pe.detail != "" {
			fmt.Fprintf(w, "tokenrun: debug: %s\n", pe.detail)
		}
	}
}

// reportProcedureDone is the last line of a procedure that finished, in the run's language.
func reportProcedureDone(io stdio, res *runtime.Result, command string, messages map[string]string) {
	if _, ok := messages["command_done"]; !ok || res.Procedure == nil {
		reportDone(io, res)
		return
	}
	fmt.Fprintln(io.err, region.Text(messages, "command_done", map[string]any{"command": command, "version": res.Procedure.Version}))
}

// signLangFlag is sign's --lang: the words of its prompt, messages and last line.
func signLangFlag() cli.Flag {
	return &cli.StringFlag{Name: "lang", EnvVars: []string{"TOKENRUN_LANG"}, Usage: "language: kk, ru or en (default: the region's)"}
}

// signMessages is the catalog sign speaks from: the shipped default region's, in --lang (by
// default the region's language).
func signMessages(c *cli.Context) (map[string]string, error) {
	r, err := region.Load(scripts.FS, region.DefaultName)
	if err != nil {
		return nil, usageError{err}
	}
	m, err := r.Catalog(c.String("lang"))
	if err != nil {
		return nil, usageError{fmt.Errorf("--lang: %w", err)}
	}
	return m, nil
}

// say is the catalog's text key for sign, else english (a spec built without a catalog).
func (s signSpec) say(english, key string, args map[string]any) string {
	if _, ok := s.messages[key]; !ok {
		return english
	}
	return region.Text(s.messages, key, args)
}

// personName names a token in a sentence for people, as the procedures do: label (serial).
func personName(info token.Info) string {
	if info.Label == "" {
		return info.Serial
	}
	return info.Label + " (" + info.Serial + ")"
}

// person is err worded for the person by the catalog's key, when sign has a catalog.
func (s signSpec) person(err error, key string, args map[string]any) error {
	if _, ok := s.messages[key]; !ok {
		return err
	}
	return &personError{err: err, line: region.Text(s.messages, key, args)}
}
