//go:build linux

package ui

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pty is a pseudo-terminal: the Terminal reads the slave side like a person's terminal,
// the test types on the master side and sees there what the terminal echoes.
type pty struct {
	master, slave *os.File
	echoed        *syncBuffer // everything the terminal echoed back
}

// openPTY uses the Linux ptmx ioctls from the standard library, so the test needs no
// pty package.
func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminals here (the hidden-input tests need /dev/ptmx): %v", err)
		}
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if err := ioctl(m.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		m.Close()
		t.Skipf("unlock pty: %v", err)
	}
	var n uint32
	if err := ioctl(m.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		m.Close()
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pty slave: %v", err)
	}
	p := &pty{master: m, slave: s, echoed: &syncBuffer{}}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(p.echoed, m) // ends with EIO when the slave closes
		close(copied)
	}()
	t.Cleanup(func() {
		s.Close()
		m.Close()
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
			// A read still blocked on the slave keeps it open; the test that left it
			// is wrong, not this cleanup.
			t.Error("pty still in use at the end of the test")
		}
	})
	return p
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func (p *pty) echoOn(t *testing.T) bool {
	t.Helper()
	var tio syscall.Termios
	require.NoError(t, ioctl(p.slave.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)))
	return tio.Lflag&syscall.ECHO != 0
}

// typeWhenEchoOff types s once the terminal has turned echo off, as a person would type
// after the prompt appears; typing earlier would be echoed by the kernel.
func (p *pty) typeWhenEchoOff(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return !p.echoOn(t) }, 5*time.Second, time.Millisecond, "echo never went off")
	_, err := p.master.Write([]byte(s))
	require.NoError(t, err)
}

func TestTerminalTTYHiddenSecret(t *testing.T) {
	p := openPTY(t)
	out := &syncBuffer{}
	term := NewTerminal(p.slave, out, TerminalOptions{})
	require.True(t, term.Interactive(), "a terminal is interactive")
	require.True(t, p.echoOn(t))

	const secret = "Zq7SECRETxK9"
	done := make(chan struct{})
	var got string
	var err error
	go func() {
		defer close(done)
		got, err = term.Ask(context.Background(), Prompt{ID: "new_password", Kind: Secret, Label: "New password"})
	}()
	p.typeWhenEchoOff(t, secret+"\n")
	<-done
	require.NoError(t, err)
	assert.Equal(t, secret, got)
	assert.True(t, p.echoOn(t), "echo is back on after the secret")
	assert.Equal(t, "New password: \n", out.String())

	// A plain prompt is echoed by the terminal as usual; the secret never was.
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		got, err = term.Ask(context.Background(), Prompt{ID: "user_id", Label: "User ID"})
	}()
	_, werr := p.master.Write([]byte("qq1\n"))
	require.NoError(t, werr)
	<-done2
	require.NoError(t, err)
	assert.Equal(t, "qq1", got)
	require.Eventually(t, func() bool { return strings.Contains(p.echoed.String(), "qq1") }, 5*time.Second, time.Millisecond)
	assert.NotContains(t, p.echoed.String(), secret)
}

func TestTerminalTTYCtrlD(t *testing.T) {
	p := openPTY(t)
	term := NewTerminal(p.slave, io.Discard, TerminalOptions{})
	for _, kind := range []Kind{Text, Secret} {
		errc := make(chan error, 1)
		go func() {
			_, err := term.Ask(context.Background(), Prompt{ID: "user_id", Kind: kind})
			errc <- err
		}()
		if kind == Secret {
			p.typeWhenEchoOff(t, "\x04")
		} else {
			_, err := p.master.Write([]byte("\x04"))
			require.NoError(t, err)
		}
		select {
		case err := <-errc:
			require.ErrorIs(t, err, ErrCancelled, kind.String())
			assert.EqualError(t, err, "prompt 'user_id': cancelled by end of input")
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Ctrl-D did not end the prompt", kind)
		}
	}
}

func TestTerminalTTYCancelRestoresEcho(t *testing.T) {
	p := openPTY(t)
	term := NewTerminal(p.slave, io.Discard, TerminalOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := term.Ask(ctx, Prompt{ID: "otp_pin", Kind: Secret})
		errc <- err
	}()
	require.Eventually(t, func() bool { return !p.echoOn(t) }, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the hidden read")
	}
	assert.True(t, p.echoOn(t), "a cancelled hidden read must not leave the terminal without echo")

	// The read left running gets the next line and hands it to the next prompt.
	_, err := p.master.Write([]byte("late\n"))
	require.NoError(t, err)
	got, err := term.Ask(context.Background(), Prompt{ID: "user_id"})
	require.NoError(t, err)
	assert.Equal(t, "late", got)
}

func TestTerminalTTYLineEditing(t *testing.T) {
	tests := []struct {
		name, typed, want string
		wantErr           string
	}{
		{"backspace", "abX\x7fc\r", "abc", ""},
		{"backspace removes a whole rune", "пинЖ\x7f\x08н\r", "пин", ""},
		{"ctrl-u clears", "wrong\x15right\r", "right", ""},
		{"control bytes dropped", "a\x01b\x1bc\r", "abc", ""},
		{"ctrl-d inside a line is ignored", "ab\x04c\r", "abc", ""},
		{"ctrl-c cancels", "abc\x03", "", "prompt 'otp_pin': cancelled by Ctrl-C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := openPTY(t)
			term := NewTerminal(p.slave, io.Discard, TerminalOptions{})
			type result struct {
				v   string
				err error
			}
			res := make(chan result, 1)
			go func() {
				v, err := term.Ask(context.Background(), Prompt{ID: "otp_pin", Kind: Secret})
				res <- result{v, err}
			}()
			p.typeWhenEchoOff(t, tt.typed)
			select {
			case r := <-res:
				if tt.wantErr != "" {
					require.EqualError(t, r.err, tt.wantErr)
					assert.ErrorIs(t, r.err, ErrCancelled)
				} else {
					require.NoError(t, r.err)
					assert.Equal(t, tt.want, r.v)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no answer")
			}
			assert.True(t, p.echoOn(t))
		})
	}
}

func TestTerminalTTYPastedLines(t *testing.T) {
	// A pasted "secret\r\nnext\n" answers two prompts; the \n after \r is not an empty
	// answer for the second.
	p := openPTY(t)
	term := NewTerminal(p.slave, io.Discard, TerminalOptions{})
	res := make(chan []string, 1)
	go func() {
		var got []string
		for _, pr := range []Prompt{{ID: "pin", Kind: Secret}, {ID: "pin2", Kind: Secret}} {
			v, err := term.Ask(context.Background(), pr)
			if err != nil {
				v = "error: " + err.Error()
			}
			got = append(got, v)
		}
		res <- got
	}()
	p.typeWhenEchoOff(t, "first\r\nsecond\r")
	select {
	case got := <-res:
		assert.Equal(t, []string{"first", "second"}, got)
	case <-time.After(5 * time.Second):
		t.Fatal("no answers")
	}
}
