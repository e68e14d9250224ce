// Package unixsock connects to AF_UNIX stream sockets with plain syscalls.
// berth-runtime runs twice per container start; importing package net for
// one connect(2) would add its initialisation to every start.
package unixsock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Dial connects to the unix stream socket at path (a leading "@" names an
// abstract socket) and returns the connection as a close-on-exec file.
func Dial(path string) (*os.File, error) {
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
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
