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
// The host writes one JSON object per line (UTF-8, "\n"-terminated) to its output; the
// driver writes one JSON object per line to the host's input. Every host line has a
// "type". Drivers must ignore types and fields they do not know: later versions may add
// them, but will not remove or change the meaning of the ones below.
//
// Host to driver:
//
//	{"type":"ask","id":"user_id","kind":"text","label":"User ID","help":"As printed on the acceptance act","secret":false}
//
// A question. The run waits until it is answered. Fields: "id" (string, the prompt id);
// "kind" ("text", "secret", "choice" or "confirm"); "label" (string, never empty);
// "secret" (bool, true exactly when kind is "secret": mask the input); optional, left out
// when empty or false: "help" (string), "default" (string: a choice value, "yes"/"no" for a
// confirm; never present for a secret), "choices" (for kind "choice": a list of
// {"value":"1y","label":"1 year"}, answered by value), "human_only" (true: a person must
// answer; a driver must not fill it in automatically), "optional" (true: an empty value is
// accepted and the procedure uses its own default, e.g. the blank token's password).
//
//	{"type":"invalid","id":"user_id","message":"must be 11 characters"}
//
// The answer was read but not accepted; message is for the person. The prompt stays
// pending and the ask line is not repeated: send another answer.
//
//	{"type":"error","id":"user_id","message":"answer is for prompt 'otp_pin', but prompt 'user_id' is asked"}
//
// A line from the driver could not be used (not JSON, not an object, no "id", an "id"
// other than the pending prompt's, "value" not a string, too long). The message never
// quotes the line. The pending ask line is sent again right after it.
//
//	{"type":"say","level":"warn","text":"The token holds a registered profile"}
//
// A message; level is "info", "warn" or "error".
//
//	{"type":"progress","id":"generate","label":"Generating the profile","fraction":0.4,"note":"waiting for the CA"}
//
// A long operation started or moved on. The first line for an id has "fraction":null;
// later ones have a number in [0, 1], or null when the amount is unknown. "note" is left
// out when empty. Prompts and messages may arrive while an operation is running.
//
//	{"type":"progress_done","id":"generate","label":"Generating the profile","ok":true}
//
// The operation ended; "ok" is false when it failed; "note" is left out when empty.
//
// Driver to host, only while an ask is pending (lines sent earlier are read at the next
// ask):
//
//	{"id":"user_id","value":"qq111111_qwertyui"}
//
// An answer. "value" is a string: the text; the choice's value for a choice; "yes" or
// "no" for a confirm (y/n, true/false, да/нет and иә/жоқ are accepted too). An empty
// string takes the default. Blank lines are ignored.
//
//	{"id":"user_id","cancel":true}
//
// Gives up the pending prompt; the run ends as cancelled. "id" may be left out, and then
// cancels whatever is pending. To stop a run while nothing is asked, signal the process.
//
// When the driver closes the host's input while an ask is pending, the run ends with an
// error saying that prompt had no answer.
package ui
