package main

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/batch"
	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// batchRows runs one row of a batch through the runner: what every row shares (the
// procedure compiled once, the region's configuration, the journal store, the one provider)
// is loaded once here.
type batchRows struct {
	p        procedure
	proc     *runner.Procedure
	store    *journal.Store
	provider token.Provider
	yes      bool
	timeout  time.Duration
	lockWait time.Duration
	sets     []string
}

func newBatchRows(c *cli.Context, io stdio, p procedure) (*batchRows, error) {
	proc, err := runner.LoadProcedure(runner.ProcedureOptions{Name: p.name, Scripts: c.String("scripts"),
		Region: c.String("region"), Set: c.StringSlice("set"), Lang: c.String("lang"), Warn: io.err})
	if err != nil {
		return nil, err
	}
	runner.SetStoppingNotice(proc.Messages()["cancel_stopping"]) // the first Ctrl-C's line, in the run's language
	store, err := runner.OpenJournal()
	if err != nil {
		return nil, err
	}
	return &batchRows{p: p, proc: proc, store: store, yes: c.Bool("yes"),
		timeout: c.Duration("timeout"), lockWait: c.Duration("lock-wait"), sets: c.StringSlice("set")}, nil
}

func (b *batchRows) close() {}

// holds: the token has a certificate, or an unfinished procedure in its journal.
func (b *batchRows) holds(ctx context.Context, info token.Info) (bool, error) {
	if _, err := b.store.Load(info.Serial); err == nil {
		return true, nil
	} else if !errors.Is(err, journal.ErrNotFound) {
		return false, err
	}
	t, err := b.provider.Open(ctx, info)
	if err != nil {
		return false, err
	}
	defer t.Close()
	certs, err := t.Certificates(ctx)
	return len(certs) > 0, err
}

// run is the seam to the procedure runner: one row, one token.
func (b *batchRows) run(ctx context.Context, job batch.Job) batch.Result {
	uri, err := tokenURI(job.Token)
	if err != nil {
		return failed(err)
	}
	fe := ui.NewAnswers(job.Answers, ui.AnswersOptions{AllowConfirm: b.yes, Name: "row " + job.Row.ID})
	set := b.proc.Set
	args := map[string]any{"support_override": false, "scripts": set.Source, "scripts_version": set.Manifest.Version,
		"batch_row": job.Row.ID}
	var timing rowTiming
	res, err := runner.Run(ctx, runner.Spec{
		Script: b.proc.Script, Libraries: set.Libraries, Provider: b.provider, URI: uri, Frontend: fe,
		Transcript: &runner.TranscriptOptions{File: job.Transcript,
			Header: b.proc.TranscriptHeader("batch "+b.p.command, b.sets, args)},
		Timeout: b.timeout, Config: b.proc.Config, Journal: b.store, Extra: []runtime.Module{b.proc.Policy},
		Args: args, Command: "tokenrun batch " + b.p.command, LockWait: b.lockWait, Observer: &timing,
		Memory: int64(b.proc.Region.Sandbox.MemoryMiB) << 20,
	})
	if err != nil {
		out := failed(err)
		out.Keygen, out.CA = timing.keygen, timing.ca
		var ue runner.UsageError
		if errors.As(err, &ue) && !timing.touched {
			// The answers check before the run: the row's answers do not fit the procedure.
			out.Code, out.MessageEN, out.Untouched = "INVALID_INPUT", batch.English("INVALID_INPUT"), true
		}
		return out
	}
	out := batch.Result{Outcome: batch.Enrolled, Keygen: timing.keygen, CA: timing.ca}
	if res != nil && len(res.Values) > 0 {
		if m, ok := res.Values[0].(map[string]any); ok {
			if u, _ := m["unchanged"].(bool); u {
				out.Outcome = batch.AlreadyEnrolled
			}
			out.KeyID, _ = m["key_id"].(string)
		}
	}
	if !timing.fill(&out) {
		b.certificate(ctx, job.Token, &out)
	}
	return out
}

// certificate fills in the certificate next to the row's key (or the token's only one).
func (b *batchRows) certificate(ctx context.Context, info token.Info, out *batch.Result) {
	t, err := b.provider.Open(ctx, info)
	if err != nil {
		return
	}
	defer t.Close()
	certs, err := t.Certificates(ctx)
	if err != nil {
		return
	}
	for _, c := range certs {
		if c.X509 == nil || (out.KeyID != "" && hex.EncodeToString(c.ID) != out.KeyID) {
			continue
		}
		if out.KeyID == "" {
			out.KeyID = hex.EncodeToString(c.ID)
		}
		out.CertSerial = c.X509.SerialNumber.Text(16)
		out.Subject = c.X509.Subject.String()
		na := c.X509.NotAfter
		out.NotAfter = &na
		return
	}
}

// failed is a row's failure: the script's code and message (in the run's language), and
// the code's English gloss.
func failed(err error) batch.Result {
	code := runner.ErrorCode(err)
	if code == "" {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			code = errcode.Cancelled
		} else if cd := errcode.Of(err); cd != errcode.TokenError {
			code = cd
		} else if errors.Is(err, ui.ErrNoAnswer) {
			code = "NO_ANSWER"
		} else {
			code = errcode.TokenError
		}
	}
	msg := err.Error()
	var se *runtime.ScriptError
	if errors.As(err, &se) && se.Message != "" {
		msg = se.Message
	}
	return batch.Result{Outcome: batch.Failed, Code: code, Message: msg, MessageEN: batch.English(code)}
}

// rowTiming sums the time a row spends generating its key and in the CA step, for the
// report and the benchmark's per-row overhead.
type rowTiming struct {
	mu         sync.Mutex
	keygen, ca time.Duration
	touched    bool             // the run made a token call
	stored     map[string]any   // the certificate the run stored
	listed     []map[string]any // the certificates the run listed (a token already enrolled)
}

// fill puts the certificate the run stored (else the one the run found, matching the key)
// into out; false when the run showed none, and the token must be asked.
func (r *rowTiming) fill(out *batch.Result) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.stored
	for _, l := range r.listed {
		if c == nil && (out.KeyID == "" || l["id"] == out.KeyID) {
			c = l
		}
	}
	if c == nil {
		return false
	}
	if out.KeyID == "" {
		out.KeyID, _ = c["id"].(string)
	}
	out.CertSerial, _ = c["serial"].(string)
	out.Subject, _ = c["subject"].(string)
	if na, ok := c["not_after"].(string); ok {
		if t, err := time.Parse(time.RFC3339, na); err == nil {
			out.NotAfter = &t
		}
	}
	return out.CertSerial != ""
}

// batchCallTimes, when set (by the benchmark), is told every call's time.
var batchCallTimes func(name string, d time.Duration)

func (r *rowTiming) Call(e runtime.CallEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if batchCallTimes != nil && e.Depth == 0 {
		batchCallTimes(e.Name(), e.Duration)
	}
	if e.Module == "token" {
		r.touched = true
	}
	switch e.Name() {
	case "token.Token:generate_key":
		r.keygen += e.Duration
	case "ca.enroll":
		r.ca += e.Duration
	case "token.Token:store_certificate":
		if len(e.Results) > 0 {
			r.stored, _ = e.Results[0].(map[string]any)
		}
	case "token.Token:certificates":
		if len(e.Results) > 0 {
			if list, ok := e.Results[0].([]any); ok {
				r.listed = r.listed[:0]
				for _, c := range list {
					if m, ok := c.(map[string]any); ok {
						r.listed = append(r.listed, m)
					}
				}
			}
		}
	}
}
