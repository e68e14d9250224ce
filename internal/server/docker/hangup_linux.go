package docker

import (
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// watchHangup returns a channel that is closed when the client at the
// other end of conn has closed the connection entirely, as opposed to
// only its write side (which is how a client says its input ended), and
// a function that ends the watch; call it before closing conn.
//
// Only a unix socket tells the two apart without writing to it: poll
// reports POLLHUP once the peer released its end. The watch blocks one
// thread in poll(2) on a duplicate of the socket and an eventfd that stop
// signals. For other connections the channel never closes; a write to a
// vanished client fails instead.
func watchHangup(conn net.Conn) (<-chan struct{}, func()) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, func() {}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, func() {}
	}
	sock := -1
	var dupErr error
	if err := raw.Control(func(fd uintptr) {
		sock, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || dupErr != nil {
		return nil, func() {}
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(sock)
		return nil, func() {}
	}
	hung := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(sock)
		// No events asked for the socket: poll reports POLLHUP and
		// POLLERR always, and EOF (POLLIN) is no hang-up.
		fds := []unix.PollFd{{Fd: int32(sock)}, {Fd: int32(wake), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err == nil && fds[1].Revents == 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				close(hung)
			}
			return
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
			unix.Write(wake, one)
			<-done
			unix.Close(wake)
		})
	}
	return hung, stop
}
