package cgroups

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// NotifyOOM watches the cgroup of m for out-of-memory events and delivers
// one value on the returned channel per event: on v1 each OOM condition
// reported through cgroup.event_control on memory.oom_control, on v2 each
// increase of oom_kill in memory.events. The channel is closed, and the
// watch's file descriptors released, when the cgroup is removed or cancel
// is called. cancel returns once the watching goroutine has exited; it may
// be called more than once, and should be called even after the channel
// closed.
func NotifyOOM(m Manager) (<-chan struct{}, func(), error) {
	switch m := m.(type) {
	case *v1Manager:
		dir, ok := m.paths["memory"]
		if !ok {
			return nil, nil, fmt.Errorf("notify oom: cgroup controller \"memory\" is not mounted: %w", errdefs.ErrUnavailable)
		}
		return notifyOOMV1(dir)
	case *v2Manager:
		return notifyOOMV2(m.dir)
	}
	return nil, nil, fmt.Errorf("notify oom: %T is not a manager of this package: %w", m, errdefs.ErrInvalidArgument)
}

// watcher runs the goroutine behind NotifyOOM.
type watcher struct {
	ch         chan struct{}
	done       chan struct{} // closed by cancel
	exit       chan struct{} // closed when the goroutine returns
	cancelOnce sync.Once
	closeOnce  sync.Once
	file       *os.File // closing it unblocks the goroutine's read
	also       []int    // more descriptors to close with it
}

func newWatcher(f *os.File, also ...int) *watcher {
	return &watcher{ch: make(chan struct{}), done: make(chan struct{}), exit: make(chan struct{}), file: f, also: also}
}

// send delivers n events; it reports false once cancel has been called.
func (w *watcher) send(n uint64) bool {
	for ; n > 0; n-- {
		select {
		case w.ch <- struct{}{}:
		case <-w.done:
			return false
		}
	}
	return true
}

// closeFiles releases the descriptors exactly once, so that a raw
// descriptor number is never closed twice (it may have been reused).
func (w *watcher) closeFiles() {
	w.closeOnce.Do(func() {
		w.file.Close()
		for _, fd := range w.also {
			unix.Close(fd)
		}
	})
}

func (w *watcher) cancel() {
	w.cancelOnce.Do(func() { close(w.done) })
	w.closeFiles()
	<-w.exit
}

func (w *watcher) start(loop func()) (<-chan struct{}, func(), error) {
	go func() {
		defer close(w.exit)
		defer close(w.ch)
		defer w.closeFiles()
		loop()
	}()
	return w.ch, w.cancel, nil
}

func notifyOOMV1(dir string) (<-chan struct{}, func(), error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, nil, fmt.Errorf("notify oom: eventfd: %w", err)
	}
	oc := filepath.Join(dir, "memory.oom_control")
	ocfd, err := unix.Open(oc, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(efd)
		return nil, nil, fmt.Errorf("notify oom: open %s: %w", oc, err)
	}
	if err := writeFile(dir, "cgroup.event_control", fmt.Sprintf("%d %d", efd, ocfd)); err != nil {
		unix.Close(efd)
		unix.Close(ocfd)
		return nil, nil, fmt.Errorf("notify oom: %w", err)
	}
	// A non-blocking descriptor goes through the runtime poller, so Close
	// from cancel wakes a blocked Read.
	w := newWatcher(os.NewFile(uintptr(efd), "oom-eventfd"), ocfd)
	return w.start(func() {
		buf := make([]byte, 8)
		for {
			if _, err := w.file.Read(buf); err != nil {
				return
			}
			// The kernel also signals the eventfd when the cgroup goes away.
			if !exists(dir, "cgroup.event_control") {
				return
			}
			if !w.send(binary.NativeEndian.Uint64(buf)) {
				return
			}
		}
	})
}

func notifyOOMV2(dir string) (<-chan struct{}, func(), error) {
	ch, cancel, err := watchCounter(dir, "memory.events", "oom_kill")
	if err != nil {
		return nil, nil, fmt.Errorf("notify oom: %w", err)
	}
	return ch, cancel, nil
}

// watchCounter delivers one value per increase of key in the flat keyed v2
// file dir/file. cgroupfs reports changes of such files to inotify as
// IN_MODIFY; the removal of dir shows up as IN_DELETE on its parent (the
// files themselves get no event), and closes the channel.
func watchCounter(dir, file, key string) (<-chan struct{}, func(), error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, fmt.Errorf("inotify: %w", err)
	}
	p := filepath.Join(dir, file)
	if _, err := unix.InotifyAddWatch(ifd, p, unix.IN_MODIFY); err != nil {
		unix.Close(ifd)
		return nil, nil, fmt.Errorf("watch %s: %w", p, err)
	}
	parent, name := filepath.Dir(dir), filepath.Base(dir)
	if _, err := unix.InotifyAddWatch(ifd, parent, unix.IN_DELETE|unix.IN_ONLYDIR); err != nil {
		unix.Close(ifd)
		return nil, nil, fmt.Errorf("watch %s: %w", parent, err)
	}
	// Read the starting value after the watches exist, so that no change
	// falls in between.
	start, err := readKeyValues(dir, file)
	if err != nil {
		unix.Close(ifd)
		return nil, nil, err
	}
	w := newWatcher(os.NewFile(uintptr(ifd), "cgroup-inotify"))
	count := start[key]
	return w.start(func() {
		buf := make([]byte, 4096)
		for {
			n, err := w.file.Read(buf)
			if err != nil {
				return
			}
			ev, err := readKeyValues(dir, file)
			if err != nil {
				return // the cgroup is gone
			}
			if now := ev[key]; now > count {
				if !w.send(now - count) {
					return
				}
				count = now
			}
			if deleted(buf[:n], name) {
				return
			}
		}
	})
}

// deleted reports whether an inotify read holds the deletion of name from
// a watched directory.
func deleted(b []byte, name string) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		end := min(len(b), unix.SizeofInotifyEvent+nameLen)
		evName := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		if mask&unix.IN_DELETE != 0 && evName == name {
			return true
		}
		b = b[end:]
	}
	return false
}
