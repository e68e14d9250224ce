package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// StartIn calls start so that the process it starts is born inside m's
// cgroup, with attr (the process's SysProcAttr) prepared for it. m must
// have been created (Apply(-1)).
//
// Moving a running process into a v1 cgroup takes the kernel's global
// threadgroup lock for writing, which waits for an RCU grace period: about
// 10-15 ms per container, the largest single cost of a container start.
// A thread that moves only itself skips that lock, and a child inherits
// its parent thread's cgroups. So start runs on a locked OS thread that
// first writes "0" to the tasks file of each v1 directory; the v2
// directory is entered with clone3's CLONE_INTO_CGROUP. The thread then
// ends with its goroutine rather than serve the caller's other goroutines
// from the container's cgroups (where it would be frozen, listed and
// killed with the container's processes): ending a thread costs less than
// moving it back, one write per hierarchy.
func StartIn(m Manager, attr *syscall.SysProcAttr, start func() error) error {
	paths := m.Paths()
	var v1Dirs []string
	for key, dir := range paths {
		if key == "" {
			fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open cgroup %s: %w", dir, err)
			}
			defer unix.Close(fd)
			attr.UseCgroupFD = true
			attr.CgroupFD = fd
			continue
		}
		v1Dirs = append(v1Dirs, dir)
	}
	if len(v1Dirs) == 0 {
		return start()
	}
	errc := make(chan error, 1)
	var enterAndStart func()
	enterAndStart = func() {
		// Never unlocked: the thread ends when its goroutine returns.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Go parks the main thread instead of ending it: keep it
			// locked here while another thread does the work.
			done := make(chan struct{})
			go func() {
				defer close(done)
				enterAndStart()
			}()
			<-done
			runtime.UnlockOSThread()
			return
		}
		for _, d := range v1Dirs {
			if err := os.WriteFile(filepath.Join(d, "tasks"), []byte("0"), 0); err != nil {
				errc <- fmt.Errorf("enter cgroup %s: %w", d, err)
				return
			}
		}
		errc <- start()
	}
	go enterAndStart()
	return <-errc
}
