package cli

import (
	"io"
	"os"

	"github.com/moby/term"
)

// InStream is standard input with its terminal state.
type InStream struct {
	io.ReadCloser
	fd    uintptr
	isTTY bool
	state *term.State
}

// NewInStream wraps r, noting whether it is a terminal.
func NewInStream(r io.ReadCloser) *InStream {
	fd, isTTY := term.GetFdInfo(r)
	return &InStream{ReadCloser: r, fd: fd, isTTY: isTTY}
}

// IsTerminal says whether the stream is a terminal.
func (s *InStream) IsTerminal() bool { return s.isTTY }

// SetRawTerminal puts a terminal into raw mode; RestoreTerminal undoes it.
func (s *InStream) SetRawTerminal() error {
	if !s.isTTY || os.Getenv("NORAW") != "" {
		return nil
	}
	st, err := term.SetRawTerminal(s.fd)
	if err != nil {
		return err
	}
	s.state = st
	return nil
}

// RestoreTerminal restores the state saved by SetRawTerminal.
func (s *InStream) RestoreTerminal() {
	if s.state != nil {
		term.RestoreTerminal(s.fd, s.state)
		s.state = nil
	}
}

// OutStream is an output stream with its terminal state.
type OutStream struct {
	io.Writer
	fd    uintptr
	isTTY bool
	state *term.State
}

// NewOutStream wraps w, noting whether it is a terminal.
func NewOutStream(w io.Writer) *OutStream {
	fd, isTTY := term.GetFdInfo(w)
	return &OutStream{Writer: w, fd: fd, isTTY: isTTY}
}

// IsTerminal says whether the stream is a terminal.
func (s *OutStream) IsTerminal() bool { return s.isTTY }

// FD is the stream's file descriptor (meaningful on a terminal).
func (s *OutStream) FD() uintptr { return s.fd }

// SetRawTerminal puts the output terminal into raw mode (no newline
// translation) while a container's TTY writes to it.
func (s *OutStream) SetRawTerminal() error {
	if !s.isTTY || os.Getenv("NORAW") != "" {
		return nil
	}
	st, err := term.SetRawTerminalOutput(s.fd)
	if err != nil {
		return err
	}
	s.state = st
	return nil
}

// RestoreTerminal restores the state saved by SetRawTerminal.
func (s *OutStream) RestoreTerminal() {
	if s.state != nil {
		term.RestoreTerminal(s.fd, s.state)
		s.state = nil
	}
}

// Size is the terminal's height and width, zero when not a terminal.
func (s *OutStream) Size() (height, width uint) {
	if !s.isTTY {
		return 0, 0
	}
	ws, err := term.GetWinsize(s.fd)
	if err != nil || ws == nil {
		return 0, 0
	}
	return uint(ws.Height), uint(ws.Width)
}
