package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/signing"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// A front-end that follows whole runs (ui.Lifecycle: the JSON protocol's hello and result
// lines, and its cancel line at any moment) is told here when one begins and how it ended.
// Commands call beginRun and the function it returns; a front-end that is no Lifecycle is
// left alone.

// beginRun announces a run to fe when it is a ui.Lifecycle, and returns the context to run
// under (cancelled when the driver asks to stop), what to pass to runtime.RunOptions as
// OnProcedure (nil without a Lifecycle), and end, which reports the outcome; call it once.
func beginRun(ctx context.Context, fe ui.Frontend, info ui.RunInfo, messages map[string]string) (_ context.Context, onProcedure func(*runtime.Procedure), end func(result any, err error)) {
	lc, ok := ui.Find[ui.Lifecycle](fe)
	if !ok {
		return ctx, nil, func(any, error) {}
	}
	// "tokenrun run FILE.lua" is command run; a script file's name is its procedure's until
	// its metadata says otherwise.
	if f := strings.Fields(strings.TrimPrefix(info.Command, "tokenrun ")); len(f) > 0 {
		info.Command = f[0]
	}
	info.Procedure = strings.TrimSuffix(filepath.Base(info.Procedure), ".lua")
	if info.Tokenrun == "" {
		info.Tokenrun = runtime.Version
	}
	if info.APILevel == 0 {
		info.APILevel = runtime.APILevel
	}
	ctx = lc.Begin(ctx, info)
	onProcedure = func(p *runtime.Procedure) { lc.Procedure(p.Name, p.Version) }
	return ctx, onProcedure, func(result any, err error) { _ = lc.End(runResult(result, err, messages)) }
}

// protocolRun is runner.Spec.Begin for a procedure run: beginRun, with the result line told
// the procedure's result table.
func protocolRun(fe ui.Frontend, info ui.RunInfo, messages map[string]string) func(context.Context) (context.Context, func(*runtime.Procedure), func(*runtime.Result, error)) {
	return func(ctx context.Context) (context.Context, func(*runtime.Procedure), func(*runtime.Result, error)) {
		ctx, onProcedure, end := beginRun(ctx, fe, info, messages)
		return ctx, onProcedure, func(res *runtime.Result, err error) { end(resultTable(res), err) }
	}
}

// lang is the run's language in its config, "" for none.
func lang(cfg map[string]any) string {
	l, _ := cfg["language"].(string)
	return l
}

// runResult is how a run ended, for the result line: the outcome, the error's code and
// exit code as runMain will report them, and the procedure's result table.
func runResult(result any, err error, messages map[string]string) ui.RunResult {
	if err == nil {
		r := ui.RunResult{Outcome: ui.OutcomeOK, Exit: runner.ExitOK}
		if m, ok := result.(map[string]any); ok && len(m) > 0 {
			r.Result = m
		}
		return r
	}
	r := ui.RunResult{Outcome: ui.OutcomeError, Exit: runner.ExitCode(err), Code: protocolCode(err), Message: err.Error()}
	if m, ok := result.(map[string]any); ok && len(m) > 0 {
		r.Result = m // a sign batch stopped half-way says how far it got
	}
	var se *runtime.ScriptError
	var ce *runner.CancelledError
	var pe *personError
	switch {
	case errors.As(err, &ce):
		// The notice: what state the token is in and how a rerun continues.
	case errors.As(forPerson(err, messages), &pe) && pe.line != "":
		r.Message = pe.line // the catalog's words for the code, as the last line says it
	case errors.As(err, &se) && se.Code != "" && se.Message != "":
		r.Message = se.Message // the procedure's own words (msg.fail's catalog text)
	}
	if r.Exit == runner.ExitCancelled {
		r.Outcome, r.Code = ui.OutcomeCancelled, errcode.Cancelled
		if errors.Is(err, context.DeadlineExceeded) {
			r.Code = errcode.TimedOut
		}
	}
	return r
}

// protocolCode is the script-visible code of err (errorCode), or one of the protocol's own: NO_ANSWER,
// USAGE, SCRIPT_ERROR, INTERNAL.
func protocolCode(err error) string {
	if c := runner.ErrorCode(err); c != "" {
		return c
	}
	if errors.Is(err, ui.ErrNoAnswer) {
		return "NO_ANSWER"
	}
	var ue runner.UsageError
	if errors.As(err, &ue) {
		return "USAGE"
	}
	switch runner.ExitCode(err) {
	case runner.ExitToken:
		return errcode.TokenError
	case runner.ExitScript:
		return "SCRIPT_ERROR"
	}
	return "INTERNAL"
}

// resultTable is what a run returned first (a procedure's result table), nil for none.
func resultTable(res *runtime.Result) any {
	if res == nil || len(res.Values) == 0 {
		return nil
	}
	return res.Values[0]
}

// signFrontend is sign's front-end for the PIN prompt and its report: the terminal, or the
// JSON protocol.
func signFrontend(c *cli.Context, io stdio) (ui.Frontend, error) {
	switch mode := c.String("ui"); mode {
	case "", "terminal":
		return ui.NewTerminal(io.in, io.err, ui.TerminalOptions{}), nil
	case "json":
		return ui.NewJSON(io.in, io.out), nil
	default:
		return nil, runner.UsageError{Err: fmt.Errorf("--ui %q: sign takes terminal or json", mode)}
	}
}

// signSummary is what a sign batch did, for the protocol's "signed" lines and its result.
type signSummary struct {
	total, count int
	key, token   string
	cert         *x509.Certificate
}

// signed reports document j, the n-th signed, to a front-end that reports signatures; an
// error means it does not, and the caller prints the usual line.
func (s *signSummary) signed(ctx context.Context, fe ui.Frontend, j signing.Job, n int) error {
	if s == nil {
		return errors.New("no summary")
	}
	s.count = n
	rep, ok := ui.Find[ui.SignReporter](fe)
	if !ok {
		return errors.New("no reporter")
	}
	return rep.Signed(ctx, ui.SignedDocument{In: j.In, Out: j.Out, Index: n, Total: s.total})
}

// done notes the key, token and certificate the batch signed with.
func (s *signSummary) done(key *token.Key, info token.Info, cert *x509.Certificate) {
	if s != nil {
		s.key, s.token, s.cert = key.Name(), info.Name(), cert
	}
}

// result is the batch's result table: how many were signed, with which key and certificate.
func (s *signSummary) result() map[string]any {
	r := map[string]any{"signed": s.count, "total": s.total}
	if s.key != "" {
		r["key"], r["token"] = s.key, s.token
	}
	if s.cert != nil {
		r["certificate_serial"] = bindsign.Serial(s.cert)
		r["not_after"] = s.cert.NotAfter.UTC().Format(time.RFC3339)
	}
	return r
}

// scriptName is the script's file name, "" for none.
func scriptName(s *runtime.Script) string {
	if s == nil {
		return ""
	}
	return s.Name()
}
