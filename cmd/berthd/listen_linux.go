package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/log"
)

// checkSocketFree fails if a process answers on the unix socket of host.
// A socket file nobody answers on is stale and is left for listenUnix to
// remove.
func checkSocketFree(host string) error {
	network, path, err := daemon.ParseHost(host)
	if err != nil || network != "unix" {
		return err
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another process is serving %s: is berthd already running? refusing to start", host)
	}
	return nil
}

// listenUnix listens on the unix socket path with mode 0660, owned by root
// and group (default: "berth" if that group exists, else root). A stale
// socket file is removed; any other file at path is an error.
func listenUnix(ctx context.Context, path, group string) (net.Listener, error) {
	gid, err := socketGroup(group)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("listen on %s: the path exists and is not a socket", path)
		}
		c, derr := net.DialTimeout("unix", path, 2*time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("another process is serving unix://%s: is berthd already running? refusing to start", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen on %s: probe the existing socket: %w", path, derr)
		}
		log.G(ctx).Info("removing stale socket", "path", path)
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	// Create the socket with no access for others from the start, so
	// nobody connects before its group and mode are set.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// socketGroup returns the gid of group. An empty group means "berth" if it
// exists, else root; a named group that does not exist is an error.
func socketGroup(group string) (int, error) {
	name := group
	if name == "" {
		name = daemon.DefaultGroup
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if group == "" {
			return 0, nil
		}
		if n, nerr := strconv.Atoi(group); nerr == nil {
			return n, nil
		}
		return 0, fmt.Errorf("socket group %q: %w", group, err)
	}
	return strconv.Atoi(g.Gid)
}

// activationListeners returns the sockets systemd passed (LISTEN_PID,
// LISTEN_FDS; descriptors from 3).
func activationListeners() ([]net.Listener, error) {
	pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if pid != os.Getpid() || n <= 0 {
		return nil, fmt.Errorf("-H fd://: no sockets passed by systemd (LISTEN_PID/LISTEN_FDS unset)")
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	var ls []net.Listener
	for fd := 3; fd < 3+n; fd++ {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, x := range ls {
				x.Close()
			}
			return nil, fmt.Errorf("socket from systemd (fd %d): %w", fd, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// sdNotify sends state ("READY=1", "RELOADING=1", "STOPPING=1") to the
// service manager when NOTIFY_SOCKET names one (systemd's Type=notify;
// tests use it to know the daemon serves). It does nothing otherwise.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify service manager: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify service manager: %w", err)
	}
	return nil
}
