package ui

import (
	"context"
	"time"
)

// What front-ends may show beyond Frontend's plain text: structured messages, detailed
// progress steps and the run's beginning and end. Each is an optional interface found on
// the front-end (through wrappers that say what they wrap, see Unwrapper), so a front-end
// that has no use for it (the terminal, an answers file) need not implement it, and callers
// use the helpers, which fall back to Frontend's methods.

// Message is a message with what it was made from: the catalog key and its arguments, so
// that a GUI can show its own wording or react to one message (enroll_done), and the text
// rendered in the run's language for those that do not.
type Message struct {
	Level Level
	Text  string
	Key   string         // the catalog key; "" when the text has none
	Args  map[string]any // the key's placeholders; never a secret
}

// MessageSayer is a front-end that shows a Message with its key and arguments.
type MessageSayer interface {
	SayMessage(ctx context.Context, m Message) error
}

// SayMessage shows m on fe: with its key and arguments where fe can show them, as text
// otherwise.
func SayMessage(ctx context.Context, fe Frontend, m Message) error {
	if ms, ok := Find[MessageSayer](fe); ok {
		return ms.SayMessage(ctx, m)
	}
	return fe.Say(ctx, m.Level, m.Text)
}

// Step is one update of a long operation, with more than Progress.Update says.
type Step struct {
	Fraction float64 // in [0, 1]; below 0 when unknown
	Note     string  // optional detail ("waiting for the CA")
	// Attempt is the 1-based attempt of an operation that is tried again (a CA request);
	// 0 when it is not counted.
	Attempt int
	// RetryIn is the wait before the next attempt; 0 when none is planned.
	RetryIn time.Duration
}

// StepProgress is a Progress that shows a whole Step.
type StepProgress interface {
	Step(s Step)
}

// UpdateProgress shows s on p, as Update(fraction, note) where p shows no more.
func UpdateProgress(p Progress, s Step) {
	if sp, ok := p.(StepProgress); ok {
		sp.Step(s)
		return
	}
	p.Update(s.Fraction, s.Note)
}

// RunInfo is what a run is: the hello of the JSON protocol.
type RunInfo struct {
	Command   string // the tokenrun command: enroll, run, sign
	Procedure string // the procedure's name, or the script file's for a plain script
	Version   string // the procedure's version; "" when it has none (a plain script)
	Language  string // the run's language (kk, ru, en); "" when it has none
	Tokenrun  string // tokenrun's own version
	APILevel  int    // the script API level of this tokenrun
}

// Outcomes of a run.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeCancelled = "cancelled"
)

// RunResult is how a run ended: the result of the JSON protocol.
type RunResult struct {
	Outcome string // OutcomeOK, OutcomeError or OutcomeCancelled
	Code    string // the error code (PIN_INCORRECT, CANCELLED); "" when ok
	Exit    int    // the process's exit code
	Message string // what went wrong, for the person; "" when ok
	// Result is what the procedure returned (serial, profile, key id, certificate serial
	// and expiry), as plain values; nil when it returned nothing or failed.
	Result map[string]any
}

// Lifecycle is a front-end that is told when a run begins and how it ends, and that may
// end it early (a driver's cancel line). The command calls Begin before the procedure
// runs and End after, once; a front-end that is not one is simply not told.
type Lifecycle interface {
	// Begin announces the run and returns the context to run it under: the front-end
	// cancels it (with a cause wrapping ErrCancelled) when its driver asks to stop.
	Begin(ctx context.Context, info RunInfo) context.Context
	// Procedure completes the RunInfo once the procedure's metadata has been read.
	Procedure(name, version string)
	// End reports how the run ended. It is the last thing the front-end shows.
	End(r RunResult) error
}

// SignedDocument is one document of a sign batch, signed and written.
type SignedDocument struct {
	In, Out      string // the document and its signature file
	Index, Total int    // 1-based position in the batch, and the batch's size
}

// SignReporter is a front-end that reports each signed document (the JSON "signed" line).
type SignReporter interface {
	Signed(ctx context.Context, d SignedDocument) error
}

// Unwrapper is a front-end that wraps another (the safety floor's witness, the transcript's
// secret collector): Find looks through it for the optional interfaces above.
type Unwrapper interface {
	Unwrap() Frontend
}

// Find returns the first front-end in fe's chain of wrappers that implements T.
func Find[T any](fe Frontend) (T, bool) {
	for fe != nil {
		if t, ok := fe.(T); ok {
			return t, true
		}
		u, ok := fe.(Unwrapper)
		if !ok {
			break
		}
		fe = u.Unwrap()
	}
	var zero T
	return zero, false
}

// FileSource is a front-end holding files a person chose in a page that cannot hand over
// a path (a browser sends the bytes with the answer): ui.JSON. A binding that opens a file
// answered to a prompt asks FileFrom first.
type FileSource interface {
	File(name string) ([]byte, bool)
}

type filesKey struct{}

// WithFiles makes fs's files reachable from ctx, for the bindings of a run.
func WithFiles(ctx context.Context, fs FileSource) context.Context {
	return context.WithValue(ctx, filesKey{}, fs)
}

// FileFrom is the content a person sent for a file prompt answered name, if any.
func FileFrom(ctx context.Context, name string) ([]byte, bool) {
	fs, ok := ctx.Value(filesKey{}).(FileSource)
	if !ok {
		return nil, false
	}
	return fs.File(name)
}
