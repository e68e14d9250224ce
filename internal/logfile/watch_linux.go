package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchInotify calls wake for every change inotify reports to path's
// directory about path or its rotated files, until stop is called.
func watchInotify(path string, wake func()) (stop func(), err error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	dir, base := filepath.Split(path)
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE
	if _, err := unix.InotifyAddWatch(fd, filepath.Clean(dir), mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// Non-blocking, so the runtime's poller waits for it and Close ends a
	// pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if concerns(buf[:n], base) {
				wake()
			}
		}
	}()
	return func() {
		f.Close()
		<-exited
	}, nil
}

// concerns reports whether the inotify events in b name the log base or a
// rotated file of it (base.N), or say that events were lost.
func concerns(b []byte, base string) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return true // cannot happen; wake rather than miss
		}
		if ev.Mask&(unix.IN_Q_OVERFLOW|unix.IN_IGNORED) != 0 {
			return true
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		if name == base || strings.HasPrefix(name, base+".") {
			return true
		}
		b = b[end:]
	}
	return false
}
