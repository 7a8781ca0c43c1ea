package transcript

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is wrapped by the error of a line longer than MaxLine.
var ErrLineTooLong = errors.New("transcript line too long")

// LineReader reads a transcript a line at a time, refusing a line longer than MaxLine
// without holding more than that of it.
type LineReader struct {
	br  *bufio.Reader
	n   int // lines read
	Max int // MaxLine unless set
}

// NewLineReader reads lines from r.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{br: bufio.NewReaderSize(r, 64<<10), Max: MaxLine}
}

// Next returns the next line without its newline and its number (1 is the first), or
// io.EOF after the last. A line over Max is an error wrapping ErrLineTooLong.
func (lr *LineReader) Next() ([]byte, int, error) {
	var line []byte
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(line)+len(chunk) > lr.Max+1 {
			lr.n++
			return nil, lr.n, fmt.Errorf("transcript line %d is longer than the %d bytes a line may hold: %w", lr.n, lr.Max, ErrLineTooLong)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			lr.n++
			return bytes.TrimSuffix(line, []byte("\n")), lr.n, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, lr.n, io.EOF
			}
			lr.n++
			if len(line) > lr.Max { // the last line, without its newline
				return nil, lr.n, fmt.Errorf("transcript line %d is longer than the %d bytes a line may hold: %w", lr.n, lr.Max, ErrLineTooLong)
			}
			return line, lr.n, nil
		default:
			return nil, lr.n, fmt.Errorf("read transcript: %w", err)
		}
	}
}
