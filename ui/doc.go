// Package ui owns the conversation between a procedure and the person running it: the
// Prompt and message types and three front-ends that implement Frontend. It knows nothing
// of Lua; the ui binding adapts it to ui.ask, ui.secret, ui.choose, ui.confirm, ui.say,
// ui.warn and ui.progress.
//
//   - Terminal: a person at a text terminal (prompts on stderr, hidden secret input).
//   - Answers: a YAML answers file for batch runs; never waits.
//   - JSON: JSON lines for a GUI or web page driving the run.
//
// Every prompt has a stable ID. Answers files, the JSON protocol and transcripts all key
// on it, so an ID, once shipped, is never renamed.
//
// Secrets: the answer to a Secret prompt never appears in anything this package writes or
// returns other than the answer itself — not in prompts, re-asks, JSON lines or errors.
// A validator's message is shown as is, except that a secret answer of four or more
// characters quoted in it is replaced by "***" as a safety net.
//
// Errors from Ask wrap ErrCancelled when the person or driver gave up, ErrNoAnswer when no
// usable answer can be had without a person, and the context's cause when ctx ended.
//
// # JSON-lines protocol
//
// The JSON front-end speaks version 2 of the protocol, documented with examples in
// docs/protocol.md and described line by line by the JSON Schema docs/protocol.schema.json
// (ui/protocoltest validates lines against it). In short, the host writes one JSON object
// per line; every line has a "type":
//
//	hello          the first line: protocol, run_id, command, procedure, version, language, tokenrun, api_level
//	ask            a question: id, kind (text, secret, choice, confirm, file), label, secret,
//	               and help, default, choices, human_only, optional, hints when they apply
//	invalid        the answer was refused: id, message, code, problems (rule ids)
//	error          a driver line could not be used: id, message, code; the ask follows again
//	say            a message: level, text, and the catalog key and args it was made from
//	progress       a long operation started or moved on: id, label, fraction, note, elapsed,
//	               attempt and retry_in for a retried step
//	progress_done  it ended: id, label, ok, note, elapsed
//	signed         tokenrun sign wrote one signature: in, out, index, total
//	result         the last line: outcome, code, exit, message, result (the procedure's table)
//
// The driver sends {"id":...,"value":...} (with "person":true when a person typed it) to
// answer the pending prompt, and {"cancel":true} at any moment to stop the run: a goroutine
// reads the driver's lines all the time, so a cancel is seen while nothing is asked too.
// Drivers must ignore types and fields they do not know.
//
// Version 2 is a superset of version 1 (the ui/doc.go of tokenrun before it): no line or
// field of version 1 was removed or changed, except that kind "file" is new (drivers must
// treat an unknown kind as "text") and that a cancel line is acted on when it arrives
// rather than at the next prompt. hello and result come only from commands, which call
// Begin and End (Lifecycle); a JSON front-end used on its own writes neither.
package ui
