package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
// directory is entered with clone3's CLONE_INTO_CGROUP. The thread moves
// back before StartIn returns: a thread of the caller left in the
// container's cgroup would be frozen, listed and killed with the
// container's processes.
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
	var hs []Hierarchy
	if v1, ok := m.(*v1Manager); ok {
		hs = v1.hier
	}
	origin, err := threadOrigin(v1Dirs, hs)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var moved []string
		moveBack := func() bool {
			ok := true
			for _, d := range moved {
				if err := os.WriteFile(filepath.Join(origin[d], "tasks"), []byte("0"), 0); err != nil {
					ok = false
				}
			}
			return ok
		}
		var err error
		for _, d := range v1Dirs {
			if err = os.WriteFile(filepath.Join(d, "tasks"), []byte("0"), 0); err != nil {
				err = fmt.Errorf("enter cgroup %s: %w", d, err)
				break
			}
			moved = append(moved, d)
		}
		if err == nil {
			err = start()
		}
		if moveBack() {
			// Only a thread back in its own cgroups may serve other goroutines;
			// otherwise it exits with this goroutine.
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// threadOrigin maps each v1 container directory to the directory of the
// same hierarchy that the calling thread is in now; hs is the host's
// hierarchies, read from mountinfo when nil.
func threadOrigin(dirs []string, hs []Hierarchy) (map[string]string, error) {
	if hs == nil {
		var err error
		if hs, err = cgroupMounts(); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroups: %w", err)
	}
	own := map[string]string{} // controller list -> path
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] != "" {
			own[parts[1]] = parts[2]
		}
	}
	out := map[string]string{}
	for _, d := range dirs {
		for _, h := range hs {
			if h.FSType != "cgroup" || !strings.HasPrefix(d, h.Mountpoint+"/") {
				continue
			}
			p, ok := own[strings.Join(h.Subsystems, ",")]
			if !ok {
				return nil, fmt.Errorf("no cgroup of this process in hierarchy %s", h.Mountpoint)
			}
			rel, err := filepath.Rel(h.Root, p)
			if err != nil || strings.HasPrefix(rel, "..") {
				return nil, fmt.Errorf("own cgroup %s is outside hierarchy %s", p, h.Mountpoint)
			}
			out[d] = filepath.Join(h.Mountpoint, rel)
		}
		if out[d] == "" {
			return nil, errors.New("cgroup " + d + " is not in a mounted v1 hierarchy")
		}
	}
	return out, nil
}
