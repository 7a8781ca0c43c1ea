package region

import (
	"fmt"
	"strings"
)

// Error is one mistake in a region: where, which key, what is wrong and what to do.
type Error struct {
	File string // "regions/almaty.yaml", or "--set" for a value given on the command line
	Line int    // 0 when there is no line (--set, a file that cannot be read)
	Key  string // dotted path: "ca.url", "validity[2].id", "messages.ru.enroll_done"
	Msg  string
}

func (e *Error) Error() string {
	where := e.File
	switch {
	case e.Line > 0:
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	case strings.HasPrefix(e.File, "--") && e.Key != "":
		return e.File + " " + e.Key + ": " + e.Msg // "--set ca.url: ..."
	}
	if e.Key == "" {
		return where + ": " + e.Msg
	}
	return where + ": " + e.Key + ": " + e.Msg
}

// Errors is every mistake found at once, so a file can be fixed in one go.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the first *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
