package shim

import (
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxOrphans bounds the exits kept for pids nobody watches (yet): init
// can exit before the shim has read its pid, and with the host's pid
// namespace any orphan of the container lands here.
const maxOrphans = 1024

// reaper is the shim's only caller of wait4: as a subreaper it inherits
// every orphan below it, so it reaps all children and hands each exit to
// whoever watches that pid. Children are started through it so that their
// exit cannot be reaped before they are watched.
type reaper struct {
	mu       sync.Mutex
	watchers map[int]chan unix.WaitStatus
	orphans  map[int]unix.WaitStatus
}

// newReaper makes this process a child subreaper and starts reaping.
func newReaper() (*reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	r := &reaper{watchers: map[int]chan unix.WaitStatus{}, orphans: map[int]unix.WaitStatus{}}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	go func() {
		for range sig {
			r.reap()
		}
	}()
	return r, nil
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if ch, ok := r.watchers[pid]; ok {
			delete(r.watchers, pid)
			ch <- ws
			continue
		}
		if len(r.orphans) >= maxOrphans {
			for p := range r.orphans {
				delete(r.orphans, p)
				break
			}
		}
		r.orphans[pid] = ws
	}
}

// start starts argv[0] at path with the given stdio (nil: /dev/null) and
// extra descriptors as 3, 4..., and returns a channel that receives its
// exit.
func (r *reaper) start(path string, argv []string, stdio [3]*os.File, extra ...*os.File) (<-chan unix.WaitStatus, error) {
	files := make([]uintptr, 3, 3+len(extra))
	var devnull *os.File
	for i, f := range stdio {
		if f == nil {
			if devnull == nil {
				var err error
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return nil, err
				}
				defer devnull.Close()
			}
			f = devnull
		}
		files[i] = f.Fd()
	}
	for _, f := range extra {
		files = append(files, f.Fd())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: files})
	runtime.KeepAlive(stdio)
	runtime.KeepAlive(extra)
	if err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.watchers[pid] = ch
	return ch, nil
}

// watch returns a channel that receives pid's exit, which may already have
// happened.
func (r *reaper) watch(pid int) <-chan unix.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan unix.WaitStatus, 1)
	if ws, ok := r.orphans[pid]; ok {
		delete(r.orphans, pid)
		ch <- ws
		return ch
	}
	r.watchers[pid] = ch
	return ch
}

// exitCode is the shell's view of ws: the status, or 128+signal.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
