package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokenrun/tokenrun/token"
)

// Job is one row to run on one token.
type Job struct {
	Row     Row
	Answers map[string]string // the row's answers over the common ones, references resolved
	Token   token.Info
	// Transcript is where the run's transcript goes; the report names it.
	Transcript string
	// Resumed: the row was started on this token before and did not finish.
	Resumed bool
}

// RunRow runs the procedure for one job, against job.Token only (a run that sees several
// tokens must not pick one), and says how it ended: Outcome Enrolled or AlreadyEnrolled, else
// Failed with Code and Message. Ctx is cancelled when the batch is stopped; a run it stops
// returns Code CANCELLED and is continued by the next run of the batch.
type RunRow func(ctx context.Context, job Job) Result

// Codes the batch branches on (bindings/errcode's).
const (
	codeCAUnavailable = "CA_UNAVAILABLE"
	codeCancelled     = "CANCELLED"
	codeTimedOut      = "TIMED_OUT"
	codeTokenMissing  = "TOKEN_NOT_PRESENT"
	codeTokenBusy     = "TOKEN_BUSY"
)

// safetyCodes are the refusals after which the operator must take the token away: its PIN is
// at its last try or locked, or the run saw more tokens than the one it was given.
var safetyCodes = map[string]bool{"PIN_LOCKED": true, "REFUSED": true, "SEVERAL_TOKENS": true, "PIN_NOT_INITIALIZED": true, "TOKEN_DAMAGED": true}

// Options configure a batch.
type Options struct {
	Procedure string // enroll, change_pin: names the journal's batch
	List      *List
	Common    map[string]string // answers shared by every row (--answers); a row's own win
	Provider  token.Provider
	Run       RunRow
	Reports   []string // --report files: .csv, else JSON lines
	Journal   string   // the batch journal; "" beside the first report (else the list)
	// Parallel is how many rows run at once, one per token (default 1; with a token column
	// the rows' tokens are all worked on, up to Parallel or 4).
	Parallel    int
	RetryFailed bool // run only the rows that failed before
	// Holds reports whether a token that no row is bound to already holds a profile (a
	// certificate, or an unfinished procedure of someone else): such a token is never given
	// a row. Nil: a token holding any certificate.
	Holds func(ctx context.Context, info token.Info) (bool, error)
	// Match narrows which tokens the batch may use (--token); nil for any.
	Match *token.URI
	// TranscriptDir holds each row's transcript; "" beside the journal.
	TranscriptDir string
	Out           io.Writer     // the operator's messages
	Poll          time.Duration // how often to look for tokens; default 250 ms
	CAPause       time.Duration // how long a CA outage pauses the batch; default 30 s
	// Idle stops the batch when no token has been worked on for this long with rows left
	// (nobody is plugging tokens in); 0 waits until the batch is stopped.
	Idle time.Duration
}

// Summary is how the batch ended: counts per outcome, over every row of the list.
type Summary struct {
	Counts  map[Outcome]int
	Results []Result // per row, in list order
	Elapsed time.Duration
	Journal string
}

// Failed reports whether any row failed.
func (s Summary) Failed() bool { return s.Counts[Failed] > 0 }

// String is the summary line.
func (s Summary) String() string {
	var parts []string
	for _, o := range []Outcome{Enrolled, AlreadyEnrolled, Skipped, Failed, Pending} {
		parts = append(parts, fmt.Sprintf("%s %d", o, s.Counts[o]))
	}
	return strings.Join(parts, ", ")
}

// JournalPath is the batch journal beside a report (or the list): NAME.journal.
func JournalPath(reports []string, list string) string {
	base := list
	if len(reports) > 0 {
		base = reports[0]
	}
	return strings.TrimSuffix(base, filepath.Ext(base)) + ".journal"
}

type rowRun struct {
	row     Row
	status  int // todo, running, done
	result  Result
	resumed bool
}

const (
	todo = iota
	running
	done
)

// Run runs the batch until every row has ended or ctx is cancelled (Ctrl-C: the rows running
// stop at their safe point and stay pending, the journal consistent), and returns the summary.
// An error is returned only when the batch itself cannot go on (its journal or report cannot
// be written, the token provider fails); a row's failure is its line in the report.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.List == nil || len(o.List.Rows) == 0 {
		return Summary{}, fmt.Errorf("%w: no rows", ErrUsage)
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	caPause := o.CAPause
	if caPause <= 0 {
		caPause = 30 * time.Second
	}
	byToken := false
	for _, r := range o.List.Rows {
		byToken = byToken || r.Token != ""
	}
	parallel := o.Parallel
	if parallel <= 0 {
		parallel = 1
		if byToken {
			parallel = 4
		}
	}
	jpath := o.Journal
	if jpath == "" {
		jpath = JournalPath(o.Reports, o.List.Path)
	}
	tdir := o.TranscriptDir
	if tdir == "" {
		tdir = strings.TrimSuffix(jpath, filepath.Ext(jpath)) + ".transcripts"
	}
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return Summary{}, fmt.Errorf("transcripts: %w", err)
	}
	j, err := openJournal(jpath, o.Procedure)
	if err != nil {
		return Summary{}, err
	}
	defer j.close()
	rep, err := openReport(o.Reports)
	if err != nil {
		return Summary{}, err
	}
	defer rep.close()
	holds := o.Holds
	if holds == nil {
		holds = func(ctx context.Context, info token.Info) (bool, error) {
			return holdsCertificate(ctx, o.Provider, info)
		}
	}

	start := time.Now()
	rows := make([]*rowRun, len(o.List.Rows))
	total := len(rows)
	var ranDur time.Duration // rows run this time, for the estimate
	ranN := 0
	finished := 0
	for i, r := range o.List.Rows {
		rr := &rowRun{row: r}
		rows[i] = rr
		st := j.state(r.ID)
		switch {
		case st.end == nil:
			if o.RetryFailed {
				rr.status, rr.result = done, pendingResult(r, st)
			}
			rr.resumed = st.started > 0
		case st.end.Outcome == Failed && o.RetryFailed:
			rr.resumed = true
		default:
			prev := *st.end
			if prev.Outcome == Enrolled {
				prev.Outcome = AlreadyEnrolled
			}
			prev.Duration, prev.Ended = 0, time.Now()
			rr.status, rr.result = done, prev
			finished++
			if err := rep.write(prev); err != nil {
				return Summary{}, err
			}
		}
	}
	if finished > 0 {
		fmt.Fprintf(out, "%d of %d rows were finished by an earlier run of this batch (%s)\n", finished, total, jpath)
	}

	type doneMsg struct {
		rr  *rowRun
		res Result
	}
	results := make(chan doneMsg)
	var wg sync.WaitGroup
	busy := map[string]bool{} // serials running now
	nrunning := 0
	var pausedUntil time.Time
	told := map[string]bool{}    // what the operator was told, once each
	holding := map[string]bool{} // tokens found holding someone else's profile
	tell := func(key, format string, args ...any) {
		if !told[key] {
			told[key] = true
			fmt.Fprintf(out, format+"\n", args...)
		}
	}
	lastWork := time.Now()
	var fatal error

	left := func() int {
		n := 0
		for _, rr := range rows {
			if rr.status != done {
				n++
			}
		}
		return n
	}
	finish := func(rr *rowRun, res Result) {
		res.Row, res.UserID = rr.row.ID, rr.row.UserID()
		res.Resumed = res.Resumed || rr.resumed
		if res.Ended.IsZero() {
			res.Ended = time.Now()
		}
		switch {
		case ctx.Err() != nil && (res.Code == codeCancelled || res.Code == codeTimedOut):
			rr.status = todo // stopped by Ctrl-C: pending, continued by a rerun
			rr.resumed = true
			return
		case res.Code == codeCAUnavailable:
			rr.status, rr.resumed = todo, true
			pausedUntil = time.Now().Add(caPause)
			fmt.Fprintf(out, "row %s: the CA cannot be reached (%s): the batch pauses for %s and tries again; the token %s may stay plugged in\n",
				rr.row.ID, res.Message, caPause.Round(time.Second), res.Serial)
			return
		case res.Code == codeTokenMissing || res.Code == codeTokenBusy:
			rr.status, rr.resumed = todo, true // unplugged mid-row, or in use: the row waits for it again
			fmt.Fprintf(out, "row %s: the token %s went away or is in use (%s): plug it in again to continue this row\n", rr.row.ID, res.Serial, res.Code)
			return
		}
		if res.Outcome == AlreadyEnrolled && rr.resumed && j.state(rr.row.ID).started > 1 {
			res.Outcome = Enrolled // this batch's own row, finished by a run that was stopped before it said so
		}
		if res.Outcome == "" {
			res.Outcome = Failed
		}
		rr.status, rr.result = done, res
		if err := j.end(res); err != nil && fatal == nil {
			fatal = err
		}
		if err := rep.write(res); err != nil && fatal == nil {
			fatal = err
		}
		ranDur += res.Duration
		ranN++
		n := total - left()
		eta := ""
		if l := left(); l > 0 && ranN > 0 {
			eta = fmt.Sprintf(", about %s left", (ranDur / time.Duration(ranN) * time.Duration(l) / time.Duration(parallel)).Round(time.Second))
		}
		what := string(res.Outcome)
		if res.Code != "" {
			first, _, _ := strings.Cut(res.Message, "\n") // the whole message is in the report
			what += " (" + res.Code + ": " + first + ")"
		}
		fmt.Fprintf(out, "row %d of %d (%s, %s): %s in %s; elapsed %s%s\n", n, total, rr.row.ID, res.Serial, what,
			res.Duration.Round(time.Millisecond), time.Since(start).Round(time.Second), eta)
		switch {
		case safetyCodes[res.Code]:
			fmt.Fprintf(out, "remove the token %s: it was refused for safety (%s); do not use it for another user\n", res.Serial, res.Code)
		case !byToken && parallel == 1 && left() > 0:
			fmt.Fprintf(out, "remove the token %s and plug in the next one\n", res.Serial)
		}
		told["done-"+res.Serial] = true
	}

	dispatch := func(rr *rowRun, info token.Info) {
		st := j.state(rr.row.ID)
		// The answers first: a reference that does not resolve fails the row before it is
		// bound to a token, which stays free for the next row.
		answers, err := rr.row.Answers(o.Common)
		if err != nil {
			finish(rr, Result{Outcome: Failed, Code: "INVALID_INPUT", Message: err.Error(), MessageEN: English("INVALID_INPUT"), Ended: time.Now()})
			return
		}
		if err := j.start(rr.row.ID, info.Serial, info.Label); err != nil {
			fatal = err
			return
		}
		rr.status = running
		busy[info.Serial] = true
		nrunning++
		lastWork = time.Now()
		resumed := rr.resumed || st.serial == info.Serial && st.started > 0
		rr.resumed = resumed
		job := Job{Row: rr.row, Answers: answers, Token: info, Resumed: resumed,
			Transcript: filepath.Join(tdir, fmt.Sprintf("%s-%s-%d.jsonl", safeName(rr.row.ID), safeName(info.Serial), st.started+1))}
		who := ""
		if u := rr.row.UserID(); u != "" {
			who = ", user " + u
		}
		fmt.Fprintf(out, "row %s (%d of %d%s) on token %s\n", rr.row.ID, rr.row.Num, total, who, info.Name())
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			res := o.Run(ctx, job)
			if res.Duration == 0 {
				res.Duration = time.Since(t0)
			}
			if res.Serial == "" {
				res.Serial, res.Label = info.Serial, info.Label
			}
			if res.Transcript == "" {
				if _, serr := os.Stat(job.Transcript); serr == nil {
					res.Transcript = job.Transcript
				}
			}
			results <- doneMsg{rr, res}
		}()
	}

	tick := time.NewTicker(poll)
	defer tick.Stop()
	for fatal == nil {
		if left() == 0 || ctx.Err() != nil {
			break
		}
		now := time.Now()
		if now.Before(pausedUntil) {
			if s := int(pausedUntil.Sub(now).Seconds()); s%5 == 0 {
				tell(fmt.Sprintf("pause-%d-%d", pausedUntil.Unix(), s), "the CA is unavailable: trying again in %d s", s)
			}
		} else if nrunning < parallel {
			infos, err := o.Provider.Tokens(ctx)
			if err != nil && ctx.Err() == nil {
				fatal = fmt.Errorf("list tokens: %w", err)
				break
			}
			sort.SliceStable(infos, func(a, b int) bool { return infos[a].Serial < infos[b].Serial })
			for _, info := range infos {
				if nrunning >= parallel {
					break
				}
				if !info.Initialized || busy[info.Serial] || (o.Match != nil && !o.Match.MatchToken(info)) {
					continue
				}
				rr := pick(rows, j, info, byToken)
				if rr == nil {
					if id := j.boundRow(info.Serial); id != "" {
						if byID(rows, id) != nil && byID(rows, id).status == done && !byToken && parallel == 1 && left() > 0 {
							tell("done-"+info.Serial, "the token %s is done (row %s): remove it and plug in the next one", info.Name(), id)
						}
						continue
					}
					if !anyFree(rows, j) || namedByRow(rows, info) {
						continue // a token the list names is only ever its own row's
					}
					if holding[info.Serial] {
						continue
					}
					h, err := holds(ctx, info)
					holding[info.Serial] = h && err == nil // a profile stays: not asked again
					if err != nil {
						tell("err-"+info.Serial, "the token %s cannot be read (%v): remove it", info.Name(), err)
						continue
					}
					if h {
						tell("holds-"+info.Serial, "the token %s already holds a profile and is not part of this batch: remove it", info.Name())
						continue
					}
					rr = nextFree(rows, j)
				}
				if rr != nil {
					dispatch(rr, info)
				}
			}
			if nrunning == 0 && fatal == nil {
				if next := nextWaiting(rows, j); next != nil {
					st := j.state(next.row.ID)
					switch {
					case st.serial != "":
						tell(fmt.Sprintf("wait-%s-%d", next.row.ID, len(told)), "waiting for the token %s of row %s (user %s): plug it in again", st.serial, next.row.ID, next.row.UserID())
					case next.row.Token != "":
						tell("wait-"+next.row.ID, "waiting for the token %s of row %s (user %s)", next.row.Token, next.row.ID, next.row.UserID())
					default:
						tell("wait-"+next.row.ID, "row %d of %d: plug in a blank token for user %s", total-left()+1, total, next.row.UserID())
					}
				}
				if o.Idle > 0 && time.Since(lastWork) > o.Idle {
					fmt.Fprintf(out, "no token came for %s: the batch stops; rerun it to continue\n", o.Idle)
					break
				}
			}
		}
		select {
		case m := <-results:
			nrunning--
			delete(busy, m.res.Serial)
			delete(busy, m.rr.row.Token)
			lastWork = time.Now()
			finish(m.rr, m.res)
			// the token just finished is still busy until the operator sees the message
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	// Rows running finish (a cancelled run stops at its safe point).
	go func() { wg.Wait(); close(results) }()
	for m := range results {
		nrunning--
		finish(m.rr, m.res)
	}
	sum := Summary{Counts: map[Outcome]int{}, Elapsed: time.Since(start), Journal: jpath}
	for _, rr := range rows {
		if rr.status != done {
			rr.result = pendingResult(rr.row, j.state(rr.row.ID))
			if err := rep.write(rr.result); err != nil && fatal == nil {
				fatal = err
			}
		}
		sum.Counts[rr.result.Outcome]++
		sum.Results = append(sum.Results, rr.result)
	}
	if fatal != nil {
		return sum, fatal
	}
	if ctx.Err() != nil {
		return sum, context.Cause(ctx)
	}
	return sum, nil
}

func pendingResult(r Row, st rowState) Result {
	if st.end != nil {
		res := *st.end
		if res.Outcome == Enrolled {
			res.Outcome = AlreadyEnrolled
		}
		res.Duration = 0
		return res
	}
	return Result{Row: r.ID, UserID: r.UserID(), Serial: st.serial, Label: st.label, Outcome: Pending, Resumed: st.started > 0, Ended: time.Now()}
}

func byID(rows []*rowRun, id string) *rowRun {
	for _, rr := range rows {
		if rr.row.ID == id {
			return rr
		}
	}
	return nil
}

// pick is the row the token info is for: the row it is bound to, or the row naming it.
func pick(rows []*rowRun, j *batchJournal, info token.Info, byToken bool) *rowRun {
	if id := j.boundRow(info.Serial); id != "" {
		if rr := byID(rows, id); rr != nil && rr.status == todo {
			return rr
		}
		return nil
	}
	for _, rr := range rows {
		if rr.status != todo || rr.row.Token == "" || j.state(rr.row.ID).serial != "" {
			continue
		}
		if matchToken(rr.row.Token, info) {
			return rr
		}
	}
	return nil
}

// matchToken: a row's token column is a PKCS#11 URI or a serial.
func matchToken(want string, info token.Info) bool {
	if strings.HasPrefix(want, "pkcs11:") {
		u, err := token.ParseURI(want)
		return err == nil && u.MatchToken(info)
	}
	return want == info.Serial
}

// namedByRow: some row's token column names info.
func namedByRow(rows []*rowRun, info token.Info) bool {
	for _, rr := range rows {
		if rr.row.Token != "" && matchToken(rr.row.Token, info) {
			return true
		}
	}
	return false
}

// free rows take the next token plugged in: no token column, not bound to a token yet.
func isFree(rr *rowRun, j *batchJournal) bool {
	return rr.status == todo && rr.row.Token == "" && j.state(rr.row.ID).serial == ""
}

func anyFree(rows []*rowRun, j *batchJournal) bool { return nextFree(rows, j) != nil }

func nextFree(rows []*rowRun, j *batchJournal) *rowRun {
	for _, rr := range rows {
		if isFree(rr, j) {
			return rr
		}
	}
	return nil
}

func nextWaiting(rows []*rowRun, j *batchJournal) *rowRun {
	for _, rr := range rows {
		if rr.status == todo {
			return rr
		}
	}
	return nil
}

// holdsCertificate: the token holds a certificate (certificates are public: no login).
func holdsCertificate(ctx context.Context, p token.Provider, info token.Info) (bool, error) {
	t, err := p.Open(ctx, info)
	if err != nil {
		return false, err
	}
	defer t.Close()
	certs, err := t.Certificates(ctx)
	if err != nil {
		return false, err
	}
	return len(certs) > 0, nil
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// ErrFailed is what a batch in which a row failed returns to the CLI, for its exit code.
var ErrFailed = errors.New("rows failed")
