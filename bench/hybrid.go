//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupMode describes how cgroups are mounted: "v2" (unified), "hybrid" (v1
// hierarchies plus a v2 one at /sys/fs/cgroup/unified) or "v1".
func cgroupMode() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	return "v1"
}

// unifiedControllers returns the controllers enabled in the hybrid host's
// v2 hierarchy; crun 1.x refuses to run when there are any.
func unifiedControllers() string {
	data, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return string(data)
}

// hiddenUnifiedExecutor runs commands from one OS thread that has its own
// mount namespace, a slave of the host's, in which /sys/fs/cgroup/unified
// is unmounted. A child forked from that thread starts in that namespace.
type hiddenUnifiedExecutor struct {
	reqs chan hiddenReq
}

type hiddenReq struct {
	cmd   *exec.Cmd
	reply chan hiddenResult
}

type hiddenResult struct {
	d   time.Duration
	err error
}

// useHiddenUnified makes the runner run in a mount namespace without the
// hybrid host's v2 hierarchy.
func (r *runner) useHiddenUnified() error {
	if r.unavailable != "" {
		return nil
	}
	e, err := startHiddenUnified()
	if err != nil {
		return fmt.Errorf("%s: hide /sys/fs/cgroup/unified: %w", r.name, err)
	}
	r.exec.close()
	r.exec = e
	r.note = "in a mount namespace without /sys/fs/cgroup/unified (sees a cgroup v1 host)"
	return nil
}

func startHiddenUnified() (*hiddenUnifiedExecutor, error) {
	e := &hiddenUnifiedExecutor{reqs: make(chan hiddenReq)}
	ready := make(chan error)
	go func() {
		// Never unlocked: the thread's mount namespace differs from the
		// process', so the thread must end with this goroutine.
		goruntime.LockOSThread()
		if err := hideUnified(); err != nil {
			ready <- err
			return
		}
		close(ready)
		for req := range e.reqs {
			start := time.Now()
			err := req.cmd.Run()
			req.reply <- hiddenResult{time.Since(start), err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return e, nil
}

// hideUnified moves the calling thread into a new mount namespace that
// receives the host's mount events but sends none back, and unmounts the v2
// hierarchy there.
func hideUnified() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts slaves: %w", err)
	}
	if err := unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount /sys/fs/cgroup/unified: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return errors.New("/sys/fs/cgroup/unified is still cgroup2 after unmounting it")
	}
	return nil
}

func (e *hiddenUnifiedExecutor) run(cmd *exec.Cmd) (time.Duration, error) {
	reply := make(chan hiddenResult)
	e.reqs <- hiddenReq{cmd, reply}
	res := <-reply
	return res.d, res.err
}

func (e *hiddenUnifiedExecutor) close() { close(e.reqs) }
