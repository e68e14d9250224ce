// Package syncpipe is the message channel between the runtime parent and the
// container's init process: a unix stream socketpair carrying length-prefixed
// JSON messages, each optionally with file descriptors (SCM_RIGHTS), or
// messages in a positional binary encoding (SendBinary, RecvBinary).
//
// Frame layout (all integers little endian):
//
//	+----------------+------------------------+
//	| length uint32  | JSON message (length)  |   fds ride on the first byte
//	+----------------+------------------------+
//
// The protocol that runs over it is documented in package nsinit.
package syncpipe

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxMessage bounds one message, so a confused peer cannot make us allocate
// without limit.
const maxMessage = 64 << 20

// Pipe is one end of the channel.
type Pipe struct {
	f *os.File
}

// New returns the two ends of a fresh channel, both close-on-exec.
func New() (parent, child *Pipe, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return &Pipe{os.NewFile(uintptr(fds[0]), "sync-parent")}, &Pipe{os.NewFile(uintptr(fds[1]), "sync-child")}, nil
}

// FromFD wraps an inherited descriptor.
func FromFD(fd int) *Pipe {
	unix.CloseOnExec(fd)
	return &Pipe{os.NewFile(uintptr(fd), "sync")}
}

// File returns the underlying file, e.g. to pass it to a child process.
func (p *Pipe) File() *os.File { return p.f }

// Close closes this end.
func (p *Pipe) Close() error { return p.f.Close() }

// Send writes v as one message, with fds attached.
func (p *Pipe) Send(v any, fds ...int) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode sync message: %w", err)
	}
	buf := make([]byte, 4+len(body))
	binary.LittleEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if len(fds) == 0 {
		// Plain write(2): after a seccomp filter is loaded in init, this is
		// the syscall the protocol relies on.
		if _, err := p.f.Write(buf); err != nil {
			return fmt.Errorf("send sync message: %w", err)
		}
		return nil
	}
	fd := int(p.f.Fd())
	oob := unix.UnixRights(fds...)
	for len(buf) > 0 {
		n, err := unix.SendmsgN(fd, buf, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send sync message: %w", err)
		}
		buf, oob = buf[n:], nil
	}
	return nil
}

// Recv reads one message into v and returns the fds that came with it.
// At a clean end of stream it returns io.EOF.
func (p *Pipe) Recv(v any) ([]int, error) {
	fd := int(p.f.Fd())
	hdr := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*8))
	var fds []int
	got := 0
	for got < 4 {
		n, oobn, _, _, err := unix.Recvmsg(fd, hdr[got:], oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive sync message: %w", err)
		}
		if n == 0 {
			if got == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		if oobn > 0 {
			more, err := parseRights(oob[:oobn])
			if err != nil {
				return nil, err
			}
			fds = append(fds, more...)
		}
		got += n
	}
	size := binary.LittleEndian.Uint32(hdr)
	if size > maxMessage {
		return fds, fmt.Errorf("sync message of %d bytes is too large", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(p.f, body); err != nil {
		return fds, fmt.Errorf("receive sync message body: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fds, fmt.Errorf("decode sync message: %w", err)
	}
	return fds, nil
}

// RecvPlain reads one message that carries no descriptors, with read(2)
// only (see Send).
func (p *Pipe) RecvPlain(v any) error {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(p.f, hdr); err != nil {
		return fmt.Errorf("receive sync message: %w", err)
	}
	size := binary.LittleEndian.Uint32(hdr)
	if size > maxMessage {
		return fmt.Errorf("sync message of %d bytes is too large", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(p.f, body); err != nil {
		return fmt.Errorf("receive sync message body: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode sync message: %w", err)
	}
	return nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		rights, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return nil, errors.Join(fmt.Errorf("parse rights: %w", err), closeAll(fds))
		}
		fds = append(fds, rights...)
	}
	return fds, nil
}

func closeAll(fds []int) error {
	for _, fd := range fds {
		unix.Close(fd)
	}
	return nil
}
