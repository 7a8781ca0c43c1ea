package runtime

import (
	"fmt"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// ScriptError is how every failure of a script reaches Go: a syntax error, a
// Lua error, an error raised by a binding, an expected failure reported as
// {code = ..., message = ...}, or the run being stopped by its context.
type ScriptError struct {
	File    string
	Line    int // 0 when no line applies, e.g. a value returned by run
	Message string

	// Procedure and Version are empty for plain scripts and for errors
	// raised before the procedure's metadata was read.
	Procedure string
	Version   string

	// Code and Fields come from an error table: Code is its code field and
	// Fields holds every field but code and message, converted by ToGo.
	Code   string
	Fields map[string]any

	// Traceback is the Lua stack traceback (and the Go stack for a panic
	// in a binding). It is never part of Error(): it is for --debug.
	Traceback string

	// Cause is the Go error behind the failure when there is one: the
	// context's error for a stopped run, the error a binding passed to
	// Raise, the parser's error for a syntax error.
	Cause error

	stopped bool
}

// Error is "file.lua:LINE: message (procedure NAME VERSION)"; a stopped run
// reads "script stopped: timed out after 2s at file.lua:LINE (...)".
func (e *ScriptError) Error() string {
	var b strings.Builder
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	msg := e.Message
	if msg == "" {
		msg = e.Code
	}
	switch {
	case e.stopped && loc != "":
		b.WriteString(msg + " at " + loc)
	case loc != "":
		b.WriteString(loc + ": " + msg)
	default:
		b.WriteString(msg)
	}
	if e.Procedure != "" {
		b.WriteString(" (procedure " + e.Procedure)
		if e.Version != "" {
			b.WriteString(" " + e.Version)
		}
		b.WriteString(")")
	}
	return b.String()
}

func (e *ScriptError) Unwrap() error { return e.Cause }

// ErrorCode is the script-visible code ("PIN_INCORRECT"), "" when the
// failure was not reported with one; the CLI maps it to an exit code.
func (e *ScriptError) ErrorCode() string { return e.Code }

// Raise raises err as a Lua error at the calling script line and keeps err
// as the ScriptError's Cause, so the CLI can still use errors.Is and
// errors.As on what a binding's Go code returned.
func Raise(L *lua.LState, err error) {
	if st := stateOf(L); st != nil {
		st.raised = raised{msg: err.Error(), cause: err}
	}
	L.RaiseError("%s", err.Error())
}

// Fail pushes the expected-failure pair nil, {code = code, message =
// message, ...fields} and returns 2, so a binding can end with
// "return runtime.Fail(L, ...)". A procedure's run returning this pair
// becomes a ScriptError with Code set.
func Fail(L *lua.LState, code, message string, fields map[string]any) int {
	t := L.CreateTable(0, len(fields)+2)
	for k, v := range fields {
		t.RawSetString(k, ToLua(L, v))
	}
	t.RawSetString("code", lua.LString(code))
	t.RawSetString("message", lua.LString(message))
	L.Push(lua.LNil)
	L.Push(t)
	return 2
}

// failure is what the PCall error handler records while the stack of the
// failing call still exists; after PCall returns, it is gone.
type failure struct {
	file      string
	line      int
	traceback string
}

// errorHandler returns a function for PCall that records where the error
// happened. It is Go, so the context check in the VM loop cannot interrupt
// it after a deadline.
func errorHandler(L *lua.LState, f *failure) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		f.file, f.line = locate(L)
		f.traceback = traceback(L)
		L.Push(L.Get(1))
		return 1
	})
}

// locate finds the innermost Lua frame: for an error raised by a Go
// function that is its caller, the script line a user can act on.
func locate(L *lua.LState) (string, int) {
	for level := 0; ; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			return "", 0
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			continue
		}
		if dbg.CurrentLine > 0 {
			return dbg.Source, dbg.CurrentLine
		}
	}
}

func traceback(L *lua.LState) string {
	var b strings.Builder
	b.WriteString("stack traceback:")
	// Level 0 is the error handler itself.
	for level := 1; level < 64; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sln", dbg, lua.LNil); err != nil {
			continue
		}
		b.WriteString("\n\t")
		if dbg.CurrentLine > 0 {
			fmt.Fprintf(&b, "%s:%d:", dbg.Source, dbg.CurrentLine)
		} else {
			b.WriteString("[G]:")
		}
		switch {
		case dbg.What == "main":
			b.WriteString(" in main chunk")
		case dbg.Name != "":
			fmt.Fprintf(&b, " in function '%s'", dbg.Name)
		default:
			b.WriteString(" in function <?>")
		}
	}
	return b.String()
}

// toScriptError turns the error value that reached the top of a run into a
// ScriptError, taking the position from the message when Lua put one there
// (error("x", 2) means the caller's line) and from the failing frame
// otherwise (error tables, error("x", 0)).
func (st *runState) toScriptError(obj lua.LValue, f *failure, file string) *ScriptError {
	e := &ScriptError{File: f.file, Line: f.line, Traceback: f.traceback}
	if e.File == "" {
		e.File = file
	}
	switch v := obj.(type) {
	case lua.LString:
		msg := string(v)
		fl, line, rest, ok := splitPosition(msg, file)
		if !ok && f.file != "" && f.file != file {
			// Raised in a library (lib/NAME.lua) the procedure required.
			fl, line, rest, ok = splitPosition(msg, f.file)
		}
		if ok {
			e.File, e.Line, msg = fl, line, rest
		}
		// Only the error that ended the run keeps the Go details: one
		// caught by pcall earlier must not explain a later failure.
		if st.raised.msg != "" && msg == st.raised.msg {
			e.Cause = st.raised.cause
			if st.raised.goStack != "" {
				e.Traceback += "\n\n" + st.raised.goStack
			}
		}
		e.Message = msg
	case *lua.LTable:
		e.Code, e.Message, e.Fields = errorTable(v)
	default:
		e.Message = valueText(v)
	}
	return e
}

// valueText formats a non-string error value without running Lua code: the
// state may be past repair (a full data stack) when this is called.
func valueText(v lua.LValue) string {
	if _, ok := v.(*lua.LUserData); ok {
		return describe(v)
	}
	return v.String()
}

// errorTable splits {code=, message=, ...} into its parts.
func errorTable(t *lua.LTable) (code, message string, fields map[string]any) {
	if s, ok := t.RawGetString("code").(lua.LString); ok {
		code = string(s)
	}
	if s, ok := t.RawGetString("message").(lua.LString); ok {
		message = string(s)
	}
	t.ForEach(func(k, v lua.LValue) {
		if ks, ok := k.(lua.LString); ok && (ks == "code" || ks == "message") {
			return
		}
		if fields == nil {
			fields = map[string]any{}
		}
		fields[keyString(k)] = ToGo(v)
	})
	if code == "" && message == "" {
		message = "error raised with a table that has no code or message field"
	}
	return code, message, fields
}

// splitPosition strips a leading "file:LINE: " that Lua prepends to string
// errors. It only accepts the script's own chunk name, so a message that
// merely contains a colon is left alone.
func splitPosition(msg, file string) (string, int, string, bool) {
	if file == "" || !strings.HasPrefix(msg, file+":") {
		return "", 0, "", false
	}
	rest := msg[len(file)+1:]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || !strings.HasPrefix(rest[i:], ":") {
		return "", 0, "", false
	}
	line, err := strconv.Atoi(rest[:i])
	if err != nil {
		return "", 0, "", false
	}
	return file, line, strings.TrimPrefix(rest[i+1:], " "), true
}
