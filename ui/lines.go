package ui

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds one answer line, so that a stream without newlines (a mistaken
// `tokenrun < /dev/zero`) ends in an error rather than in exhausted memory. It leaves room
// for a file prompt's answer carrying its file (MaxFileData, in base64).
const maxLine = 2 << 20

var errLineTooLong = fmt.Errorf("answer line longer than %d bytes", maxLine)

// lineReader reads answers from a stream that may never deliver, such as a pipe whose
// writer hangs. Each read runs in its own goroutine so Ask can return when its context
// ends; a read left running is not restarted but handed to the next call, so no line is
// lost or read twice. A read left blocked on a stream that never ends stays blocked: Go
// cannot interrupt it, and the process is normally about to exit.
type lineReader struct {
	br      *bufio.Reader
	pending chan lineResult // a read started by an earlier call, not yet collected
}

type lineResult struct {
	line string
	err  error
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReader(r)}
}

// readLine reads one line without its line ending. A last line without a newline is a
// line; after it comes io.EOF.
func (r *lineReader) readLine() (string, error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			// Skip the rest of the line so the stream stays in step with the prompts.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.br.ReadSlice('\n')
			}
			return "", errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return string(trimEOL(buf)), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return string(trimEOL(buf)), nil
		default:
			return "", err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// busy reports whether a read is still pending from an earlier call.
func (r *lineReader) busy() bool { return r.pending != nil }

// read runs fn (a line read, or a hidden read at a terminal) unless an earlier read is
// still pending, and waits for it or for ctx. Callers serialise calls.
func (r *lineReader) read(ctx context.Context, fn func() (string, error)) (string, error) {
	if r.pending == nil {
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		ch := make(chan lineResult, 1)
		go func() {
			line, err := fn()
			ch <- lineResult{line, err}
		}()
		r.pending = ch
	}
	select {
	case res := <-r.pending:
		r.pending = nil
		return res.line, res.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}
