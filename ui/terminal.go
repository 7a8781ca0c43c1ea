package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokenrun/tokenrun/internal/termtext"
	"golang.org/x/term"
)

// pipeAttempts is how many invalid answers a non-interactive terminal input gets before
// Ask gives up. A person may retry forever; a pipe that keeps feeding bad lines (`yes |`)
// would otherwise loop forever.
const pipeAttempts = 3

// TerminalOptions adjusts a Terminal. The zero value detects everything.
type TerminalOptions struct {
	// Interactive treats in as typed by a person even when it is not a terminal: HumanOnly
	// prompts are asked, invalid answers are retried without limit and the end of input
	// counts as cancelling. For test harnesses that drive a pipe like a person; hidden
	// input still needs a real terminal.
	Interactive bool
	// Redraw shows progress as one line redrawn in place (spinner, percentage) even when
	// out is not a terminal. A terminal out always gets it.
	Redraw bool
}

// Terminal asks a person through a text terminal: prompts, messages and progress are
// written to out and answers are read from in, one line each.
//
// Pass os.Stderr as out: stdout is left to the procedure's data (its result, JSON),
// which then stays clean when redirected, the way ssh and gpg keep their prompts apart.
//
// When in is a terminal (*os.File), Secret prompts are read with echo off; Backspace and
// Ctrl-U edit the hidden line, and Ctrl-C or Ctrl-D cancel (ErrCancelled). Otherwise in
// is read line by line for every kind, so `printf 'a\nb\n' | tokenrun ...` works; there
// the end of input is ErrNoAnswer, since no person closed it.
type Terminal struct {
	out         io.Writer
	lines       *lineReader
	fd          int // in's descriptor when in is a terminal, else -1
	interactive bool
	redraw      bool
	width       int           // columns available for the progress line
	tick        time.Duration // spinner interval; 0 draws only on Update (tests)

	askMu sync.Mutex // one Ask at a time

	mu     sync.Mutex // guards out and the fields below
	asking bool       // a prompt owns the screen: the progress line must not redraw
	bar    *termBar   // the progress line on screen, if any
	chrome Chrome     // the words around the procedure's texts (chrome.go)
}

// NewTerminal returns a terminal front-end reading in and writing out.
func NewTerminal(in io.Reader, out io.Writer, opts TerminalOptions) *Terminal {
	t := &Terminal{
		out:    out,
		lines:  newLineReader(in),
		fd:     -1,
		redraw: opts.Redraw,
		width:  80,
		tick:   150 * time.Millisecond,
	}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.fd = int(f.Fd())
	}
	t.interactive = t.fd >= 0 || opts.Interactive
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.redraw = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			t.width = w
		}
	}
	return t
}

// Interactive reports whether a person is typing: in is a terminal, or
// TerminalOptions.Interactive was set.
func (t *Terminal) Interactive() bool { return t.interactive }

// Ask shows p and reads answers until one is valid. Empty input takes the default;
// surrounding spaces are dropped except from a secret. A Choice is answered by its
// number or its value (by value only when a value looks like a number), a Confirm by
// y/yes/n/no, да/нет or иә/жоқ. An invalid answer shows "Not accepted: " and the
// validator's message, then asks again: without limit for a person, up to three times
// for a pipe. A secret answer is never shown.
func (t *Terminal) Ask(ctx context.Context, p Prompt) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	if p.HumanOnly && !t.interactive {
		return "", noAnswerf("prompt '%s' needs a person at a terminal, and the input is not a terminal", p.ID)
	}
	t.askMu.Lock()
	defer t.askMu.Unlock()
	t.mu.Lock()
	t.asking = true
	t.clearBar()
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.asking = false
		t.drawBar()
		t.mu.Unlock()
	}()

	t.mu.Lock()
	p = withChrome(p, t.chrome)
	t.mu.Unlock()
	numbered := p.numbered()
	if err := t.write(intro(p, numbered)); err != nil {
		return "", promptErr(p.ID, err)
	}
	for attempt := 1; ; attempt++ {
		if err := t.write(promptLine(p, numbered)); err != nil {
			return "", promptErr(p.ID, err)
		}
		raw, err := t.readAnswer(ctx, p.Kind == Secret)
		var value string
		if err == nil {
			value, err = p.resolve(raw, numbered)
			if err == nil {
				return value, nil
			}
		}
		var retry *retryError
		if !errors.As(err, &retry) {
			return "", t.askErr(ctx, p, err)
		}
		if err := t.write(p.Chrome.text("ui_not_accepted", map[string]any{"reason": retry.msg}) + "\n"); err != nil {
			return "", promptErr(p.ID, err)
		}
		if !t.interactive && attempt >= pipeAttempts {
			return "", noAnswerf("no answer for prompt '%s': %d invalid answers, the last: %s", p.ID, attempt, retry.msg)
		}
	}
}

func (t *Terminal) askErr(ctx context.Context, p Prompt, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("prompt '%s': %w", p.ID, err)
	}
	if errors.Is(err, errInterrupted) {
		return cancelledf("prompt '%s': cancelled by Ctrl-C", p.ID)
	}
	if errors.Is(err, io.EOF) {
		if t.interactive {
			return cancelledf("prompt '%s': cancelled by end of input", p.ID)
		}
		return noAnswerf("no answer for prompt '%s': input closed", p.ID)
	}
	var abort *abortError
	if errors.As(err, &abort) {
		return promptErr(p.ID, err)
	}
	return fmt.Errorf("prompt '%s': read answer: %w", p.ID, err)
}

// readAnswer reads one line, with echo off for a secret at a terminal.
func (t *Terminal) readAnswer(ctx context.Context, hidden bool) (string, error) {
	// A read left pending by a cancelled prompt is collected as it is: it already
	// started, with echo on or off.
	if !hidden || t.fd < 0 || t.lines.busy() {
		line, err := t.lines.read(ctx, t.lines.readLine)
		if t.fd < 0 && (err == nil || errors.Is(err, errLineTooLong)) {
			// Nothing typed was echoed, so end the prompt line for whoever reads out.
			_ = t.write("\n")
		}
		return t.lineErr(line, err)
	}
	// Raw mode, not term.ReadPassword: ReadPassword spins forever on Ctrl-D (its Unix
	// reader returns 0 bytes without io.EOF), and it reads the descriptor behind the
	// buffered reader's back, losing what was typed ahead.
	old, err := term.MakeRaw(t.fd)
	if err != nil {
		return "", fmt.Errorf("turn off echo: %w", err)
	}
	var once sync.Once
	restore := func() { once.Do(func() { _ = term.Restore(t.fd, old) }) }
	line, err := t.lines.read(ctx, func() (string, error) {
		defer restore()
		return readHidden(t.lines.br)
	})
	if err != nil && ctx.Err() != nil {
		// The read goroutine may never return; the terminal must not stay without echo
		// after the program exits.
		restore()
	}
	// Echo was off, so the person's Enter did not move to a new line.
	_ = t.write("\n")
	return t.lineErr(line, err)
}

// Control bytes seen in raw mode, where the terminal no longer interprets them.
const (
	keyCtrlC     = 0x03
	keyCtrlD     = 0x04
	keyBackspace = 0x08
	keyCtrlU     = 0x15
	keyCtrlZ     = 0x1a // end of input on Windows consoles
	keyDelete    = 0x7f // what most terminals send for Backspace
)

// errInterrupted is Ctrl-C during a hidden read: raw mode turns off the signal, so the
// key arrives as a byte and is taken as the person cancelling.
var errInterrupted = errors.New("interrupted")

// readHidden reads a line typed with the terminal in raw mode: no echo, and the line
// editing a person expects done here (backspace, Ctrl-U), since raw mode turns it off.
func readHidden(br *bufio.Reader) (string, error) {
	var line []byte
	tooLong := false // then the rest of the line is skipped, to stay in step
	for {
		c, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 && !tooLong {
				return string(line), nil
			}
			return "", err
		}
		switch c {
		case '\r', '\n':
			// Enter sends \r in raw mode; a pasted \r\n must not leave an empty line
			// behind for the next prompt.
			if c == '\r' && br.Buffered() > 0 {
				if next, _ := br.Peek(1); len(next) == 1 && next[0] == '\n' {
					_, _ = br.ReadByte()
				}
			}
			if tooLong {
				return "", errLineTooLong
			}
			return string(line), nil
		case keyCtrlC:
			return "", errInterrupted
		case keyCtrlD, keyCtrlZ:
			if len(line) == 0 {
				return "", io.EOF
			}
		case keyBackspace, keyDelete:
			if len(line) > 0 {
				_, n := utf8.DecodeLastRune(line)
				line = line[:len(line)-n]
			}
		case keyCtrlU:
			line = line[:0]
		default:
			if c >= 0x20 {
				line = append(line, c)
			}
			if len(line) > maxLine {
				tooLong, line = true, line[:0]
			}
		}
	}
}

func (t *Terminal) lineErr(line string, err error) (string, error) {
	if errors.Is(err, errLineTooLong) {
		t.mu.Lock()
		c := t.chrome
		t.mu.Unlock()
		return "", retryf(CodeTooLong, "%s", c.text("ui_answer_too_long", nil))
	}
	return line, err
}

func (t *Terminal) write(s string) error {
	if s == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := io.WriteString(t.out, s)
	return err
}

// intro is what is shown once per prompt, before the first try: help and the options.
func intro(p Prompt, numbered bool) string {
	var b strings.Builder
	if p.Help != "" {
		b.WriteString(p.Help + "\n")
	}
	if p.Kind == Choice {
		b.WriteString(p.label() + ":\n")
		for i, c := range p.Choices {
			fmt.Fprintf(&b, "  %s) %s\n", choiceKey(p, numbered, i), c.Label)
		}
	}
	return termtext.Lines(b.String())
}

func choiceKey(p Prompt, numbered bool, i int) string {
	if numbered {
		return strconv.Itoa(i + 1)
	}
	return p.Choices[i].Value
}

// promptLine is the line the answer is typed on, shown again after an invalid answer.
func promptLine(p Prompt, numbered bool) string {
	switch p.Kind {
	case Secret:
		return p.label() + ": "
	case Choice:
		var keys string
		if numbered {
			keys = fmt.Sprintf("1-%d", len(p.Choices))
			if len(p.Choices) == 1 {
				keys = "1"
			}
		} else {
			vals := make([]string, len(p.Choices))
			for i, c := range p.Choices {
				vals[i] = c.Value
			}
			keys = strings.Join(vals, ", ")
		}
		def := ""
		for i, c := range p.Choices {
			if c.Value == p.Default {
				def = " [" + choiceKey(p, numbered, i) + "]"
			}
		}
		return p.Chrome.text("ui_enter", map[string]any{"keys": keys}) + def + ": "
	case Confirm:
		switch p.Default {
		case "yes":
			return p.label() + " " + p.Chrome.text("ui_confirm_default_yes", nil) + ": "
		case "no":
			return p.label() + " " + p.Chrome.text("ui_confirm_default_no", nil) + ": "
		}
		return p.label() + " " + p.Chrome.text("ui_confirm", nil) + ": "
	}
	if p.Default != "" {
		return p.label() + " [" + p.Default + "]: "
	}
	return p.label() + ": "
}

// Say writes text, marked "Warning:" or "Error:" for those levels.
func (t *Terminal) Say(ctx context.Context, level Level, text string) error {
	if err := level.check(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clearBar()
	_, err := io.WriteString(t.out, sayLine(t.chrome, level, text))
	if !t.asking {
		t.drawBar()
	}
	if err != nil {
		return fmt.Errorf("say: %w", err)
	}
	return nil
}

// Progress shows a spinner line redrawn in place when out is a terminal (or Redraw is
// set), and plain "label..." and "label: done" lines otherwise.
func (t *Terminal) Progress(ctx context.Context, id, label string) (Progress, error) {
	if label == "" {
		label = id
	}
	if !t.redraw {
		return startPlain(&t.mu, t.out, label, t.chrome)
	}
	b := &termBar{t: t, label: label, start: time.Now(), fraction: -1, stop: make(chan struct{})}
	t.mu.Lock()
	// A newer operation takes the line; an older one still running just stops drawing.
	t.clearBar()
	t.bar = b
	if !t.asking {
		t.drawBar()
	}
	t.mu.Unlock()
	if t.tick > 0 {
		go b.spin(ctx, t.tick)
	}
	return b, nil
}

// spinner frames are ASCII: not every Windows console font has braille or box glyphs.
const spinner = `|/-\`

// termBar is the redrawn progress line. All fields are guarded by t.mu.
type termBar struct {
	t        *Terminal
	label    string
	start    time.Time
	fraction float64
	note     string
	frame    int
	shown    int // runes on screen now; 0 when the line is clear
	done     bool
	stop     chan struct{}
}

// spin advances the spinner so a long silent wait (the CA may take minutes) still shows
// the program is alive.
func (b *termBar) spin(ctx context.Context, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-ctx.Done():
			return
		case <-tk.C:
			b.t.mu.Lock()
			b.frame++
			if b.t.bar == b && !b.t.asking {
				b.t.drawBar()
			}
			b.t.mu.Unlock()
		}
	}
}

func (b *termBar) Update(fraction float64, note string) {
	b.t.mu.Lock()
	defer b.t.mu.Unlock()
	if b.done {
		return
	}
	b.fraction, b.note = fraction, note
	if b.t.bar == b && !b.t.asking {
		b.t.drawBar()
	}
}

func (b *termBar) Done(ok bool, note string) {
	t := b.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	close(b.stop)
	t.clearBar()
	if t.bar == b {
		t.bar = nil
	}
	_, _ = io.WriteString(t.out, doneLine(t.chrome, b.label, ok, note))
	if !t.asking {
		t.drawBar()
	}
}

// line renders the bar, cut to the terminal width so it never wraps: a wrapped line
// cannot be redrawn with a carriage return.
func (b *termBar) line() string {
	var s strings.Builder
	s.WriteByte(spinner[b.frame%len(spinner)])
	s.WriteString(" " + b.label)
	if pc := percent(b.fraction); pc >= 0 {
		fmt.Fprintf(&s, " %3d%%", pc)
	}
	if b.note != "" {
		s.WriteString(" - " + b.note)
	}
	// Shown only once the wait is noticeable, so quick operations do not flicker a clock.
	if d := time.Since(b.start); d >= 3*time.Second {
		fmt.Fprintf(&s, " (%s)", d.Truncate(time.Second))
	}
	line := termtext.Escape(s.String())
	if max := b.t.width - 1; utf8.RuneCountInString(line) > max {
		r := []rune(line)
		line = string(r[:max])
	}
	return line
}

// drawBar redraws the current progress line over what it showed before. t.mu is held.
func (t *Terminal) drawBar() {
	b := t.bar
	if b == nil || b.done {
		return
	}
	line := b.line()
	n := utf8.RuneCountInString(line)
	pad := ""
	if b.shown > n {
		pad = strings.Repeat(" ", b.shown-n)
	}
	// Spaces rather than an ANSI erase: the Windows console does not always honour it.
	_, _ = io.WriteString(t.out, "\r"+line+pad)
	b.shown = n
}

// clearBar blanks the progress line so other output starts at column 0. t.mu is held.
func (t *Terminal) clearBar() {
	b := t.bar
	if b == nil || b.shown == 0 {
		return
	}
	_, _ = io.WriteString(t.out, "\r"+strings.Repeat(" ", b.shown)+"\r")
	b.shown = 0
}

// askSourced is Ask; a person typed the answer when this is a terminal (or said to be one).
func (t *Terminal) askSourced(ctx context.Context, p Prompt) (string, bool, error) {
	v, err := t.Ask(ctx, p)
	return v, t.interactive, err
}
