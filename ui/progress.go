package ui

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/tokenrun/tokenrun/internal/termtext"
)

// sayLine formats a message for people reading a terminal or a log: warnings and errors
// get a word in front so they stand out without colour, which logs and old Windows
// consoles lack.
func sayLine(c Chrome, level Level, text string) string {
	text = termtext.Lines(text) // it may quote a token's label or a file name
	switch level {
	case Warn:
		return c.text("ui_warning", map[string]any{"text": text}) + "\n"
	case Error:
		return c.text("ui_error", map[string]any{"text": text}) + "\n"
	}
	return text + "\n"
}

// percent returns fraction as a whole percentage, or -1 when unknown. NaN counts as
// unknown: it comes from a division by a zero total.
func percent(fraction float64) int {
	if fraction < 0 || math.IsNaN(fraction) {
		return -1
	}
	return int(math.Round(math.Min(fraction, 1) * 100))
}

func doneLine(c Chrome, label string, ok bool, note string) string {
	label, note = termtext.Lines(label), termtext.Lines(note)
	key := "ui_progress_done"
	if !ok {
		key = "ui_progress_failed"
	}
	line := c.text(key, map[string]any{"label": label})
	if note != "" {
		return fmt.Sprintf("%s (%s)\n", line, note)
	}
	return line + "\n"
}

// plainProgress writes one line per visible change: for logs, pipes and answers files,
// where redrawing a line would leave a mess of carriage returns. Updates are thinned to
// steps of 10% so that a progress callback per kilobyte does not flood a log.
type plainProgress struct {
	mu    *sync.Mutex // shared with the front-end's other output
	out   io.Writer
	label string
	step  int // last 10% step printed, -1 for none
	note  string
	done  bool
	words Chrome
}

func startPlain(mu *sync.Mutex, out io.Writer, label string, c Chrome) (*plainProgress, error) {
	// Catalogs often end a progress label with an ellipsis; the lines below add their own.
	label = strings.TrimRight(label, ".… ")
	p := &plainProgress{mu: mu, out: out, label: label, step: -1, words: c}
	mu.Lock()
	defer mu.Unlock()
	if _, err := io.WriteString(out, label+"...\n"); err != nil {
		return nil, fmt.Errorf("show progress: %w", err)
	}
	return p, nil
}

func (p *plainProgress) Update(fraction float64, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	pc := percent(fraction)
	step := -1
	if pc >= 0 {
		step = pc / 10
	}
	if step == p.step && note == p.note {
		return
	}
	p.step, p.note = step, note
	var b strings.Builder
	b.WriteString(p.label + ":")
	if pc >= 0 {
		fmt.Fprintf(&b, " %d%%", step*10)
	}
	if note != "" {
		b.WriteString(" " + note)
	}
	b.WriteString("\n")
	_, _ = io.WriteString(p.out, b.String())
}

func (p *plainProgress) Done(ok bool, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	_, _ = io.WriteString(p.out, doneLine(p.words, p.label, ok, note))
}
