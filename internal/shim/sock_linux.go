package shim

import (
	"errors"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// The shim talks over AF_UNIX stream sockets wrapped in non-blocking
// *os.File values: they use the runtime's poller (deadlines, Close
// interrupting a Read) without the weight of package net.

// maxSocketPath is the room in sockaddr_un for a path and its NUL.
const maxSocketPath = 107

// listen makes a listening socket at path, mode 0600.
func listen(path string) (*os.File, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %s is longer than %d bytes: %w", path, maxSocketPath, errdefs.ErrInvalidArgument)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// Nobody can connect before listen: the mode is set in time.
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	err = os.Chmod(path, 0o600)
	if err == nil {
		err = unix.Listen(fd, 128)
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// accept waits for a connection on l; it fails once l is closed.
func accept(l *os.File) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		var nfd int
		var aerr error
		err = rc.Read(func(fd uintptr) bool {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return aerr != unix.EAGAIN
		})
		if err != nil {
			return nil, err
		}
		switch aerr {
		case nil:
			return os.NewFile(uintptr(nfd), "shim-conn"), nil
		case unix.EINTR, unix.ECONNABORTED:
			continue
		}
		return nil, fmt.Errorf("accept: %w", aerr)
	}
}

// dial connects to the socket at path. A missing or dead socket is
// errdefs.ErrUnavailable.
func dial(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("connect to shim %s: %w: %w", path, err, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("connect to shim %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// recvFd receives one descriptor sent with SCM_RIGHTS on conn.
func recvFd(conn *os.File) (*os.File, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receive pty master: no descriptor in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("receive pty master: no descriptor in message")
	}
	// Non-blocking, so that the poller serves it and Close interrupts a Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}
