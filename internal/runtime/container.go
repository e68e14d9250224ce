package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/berth-project/berth/internal/runtime/nsinit"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Status derives the container's status: stopped when init is gone,
// paused when its cgroup is frozen (even before start, as in runc),
// created while init waits on the exec fifo, running otherwise (also
// while the init of a run, which has no fifo, waits for run to start it).
func (c *Container) Status() specs.ContainerState {
	if !c.state.alive() {
		return specs.StateStopped
	}
	if cg, err := c.cgroup(); err == nil {
		if frozen, err := cg.Frozen(); err == nil && frozen {
			return statePaused
		}
	}
	if _, err := os.Stat(filepath.Join(c.rt.dir(c.state.ID), fifoName)); err == nil {
		return specs.StateCreated
	}
	return specs.StateRunning
}

// StateJSON is what "state" prints: the OCI state plus runc's extra fields.
type StateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// State returns the container's state as "state" prints it.
func (c *Container) State() StateJSON {
	status := c.Status()
	pid := c.state.Pid
	if status == specs.StateStopped {
		pid = 0
	}
	ann := c.state.annotations()
	return StateJSON{
		OCIVersion: specs.Version, ID: c.state.ID, Pid: pid, Status: string(status),
		Bundle: c.state.Bundle, Rootfs: c.state.Rootfs, Created: c.state.Created, Owner: c.state.Owner, Annotations: ann,
	}
}

func (c *Container) ociState(status specs.ContainerState) *specs.State {
	ann := c.state.annotations()
	return &specs.State{Version: specs.Version, ID: c.state.ID, Status: status, Pid: c.state.Pid, Bundle: c.state.Bundle, Annotations: ann}
}

// cgroup returns the container's cgroup: the one create made, in the
// process that made it (run), or else loaded from the state.
func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.cg != nil {
		return c.cg, nil
	}
	if len(c.state.CgroupPaths) == 0 {
		return nil, errors.New("container has no cgroup")
	}
	cg, err := cgroups.Load(c.state.CgroupPaths)
	if err != nil {
		return nil, err
	}
	c.cg = cg
	return cg, nil
}

func notInState(id string, status specs.ContainerState, verb string) error {
	return fmt.Errorf("cannot %s container %s in state %s: %w", verb, id, status, errdefs.ErrConflict)
}

// Start lets a created container execute its process, then runs the
// poststart hooks (their failures are only warnings, as the spec says).
func (c *Container) Start() error {
	if c.startPipe != nil {
		return c.startByPipe()
	}
	status := c.Status()
	if status != specs.StateCreated {
		return notInState(c.state.ID, status, "start")
	}
	fifo := filepath.Join(c.rt.dir(c.state.ID), fifoName)
	if err := openExecFifo(fifo, c.state.Pid); err != nil {
		return err
	}
	if err := os.Remove(fifo); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove exec fifo: %w", err)
	}
	c.runPoststart()
	return nil
}

// startByPipe is Start for the container that this process (run) created
// with startByPipe: init waits on the sync pipe, not on an exec fifo.
func (c *Container) startByPipe() error {
	p := c.startPipe
	c.startPipe = nil
	defer p.Close()
	if err := p.Send(nsinit.Message{Type: nsinit.MsgStart}); err != nil {
		return errors.New("container process is already dead")
	}
	// Init acknowledges, then holds the pipe open until its execve (or
	// death) closes it: poststart hooks must only run once the user
	// process is executed.
	var msg nsinit.Message
	if _, err := p.Recv(&msg); err != nil || msg.Type != nsinit.MsgStarted {
		return errors.New("container process is already dead")
	}
	for {
		if _, err := p.Recv(&msg); err != nil {
			break
		}
	}
	c.runPoststart()
	return nil
}

// runPoststart runs the poststart hooks; their failures are only warnings.
func (c *Container) runPoststart() {
	if h := c.state.hooks(); h != nil {
		if err := hooks.Run(h.Poststart, "poststart", c.ociState(specs.StateRunning)); err != nil {
			warn("%v", err)
		}
	}
}

// openExecFifo opens the fifo for reading, which releases init, and reads
// the byte it writes. If init dies instead, it returns an error rather
// than block forever.
func openExecFifo(path string, pid int) error {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		done <- result{f, err}
	}()
	exited := make(chan error, 1)
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(pidfd)
		go func() {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for {
				_, err := unix.Poll(fds, -1)
				if err == unix.EINTR {
					continue
				}
				exited <- err
				return
			}
		}()
	}
	var r result
	select {
	case r = <-done:
	case <-exited:
		// Unblock the opener, then see whether init got to write first.
		if w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			w.Close()
		}
		r = <-done
		if r.err == nil {
			buf := make([]byte, 1)
			n, _ := r.f.Read(buf)
			r.f.Close()
			if n == 1 {
				return nil
			}
		}
		return errors.New("container process is already dead")
	}
	if r.err != nil {
		return fmt.Errorf("open exec fifo: %w", r.err)
	}
	defer r.f.Close()
	buf := make([]byte, 1)
	n, err := r.f.Read(buf)
	if err != nil || n != 1 {
		return errors.New("container process is already dead")
	}
	// Init holds the fifo open until its execve (or death) closes it:
	// poststart hooks must only run once the user process is executed.
	io.Copy(io.Discard, r.f)
	return nil
}

// Kill sends sig to init, or with all to every process of the container.
func (c *Container) Kill(sig unix.Signal, all bool) error {
	status := c.Status()
	if status == specs.StateStopped {
		if all && c.hasProcesses() {
			return c.signalAll(sig)
		}
		return fmt.Errorf("container %s is not running: %w", c.state.ID, errdefs.ErrConflict)
	}
	if all {
		return c.signalAll(sig)
	}
	if err := unix.Kill(c.state.Pid, sig); err != nil {
		return fmt.Errorf("signal init process %d: %w", c.state.Pid, err)
	}
	if status == statePaused && sig == unix.SIGKILL {
		// A frozen process only dies once thawed.
		if cg, err := c.cgroup(); err == nil {
			cg.Thaw()
		}
	}
	return nil
}

func (c *Container) hasProcesses() bool {
	cg, err := c.cgroup()
	if err != nil {
		return false
	}
	pids, err := cg.Pids()
	return err == nil && len(pids) > 0
}

// signalAll signals every process in the container's cgroup, freezing it
// meanwhile so no new process escapes.
func (c *Container) signalAll(sig unix.Signal) error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	wasFrozen, _ := cg.Frozen()
	if !wasFrozen {
		if err := cg.Freeze(); err != nil {
			return fmt.Errorf("freeze before signalling: %w", err)
		}
	}
	pids, err := cg.Pids()
	if err == nil {
		for _, p := range pids {
			if kerr := unix.Kill(p, sig); kerr != nil && kerr != unix.ESRCH {
				err = fmt.Errorf("signal %d: %w", p, kerr)
			}
		}
	}
	if !wasFrozen || sig == unix.SIGKILL {
		if terr := cg.Thaw(); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

// Delete removes a stopped container, or a created one (killing init).
// With force it kills a running or paused container first.
func (c *Container) Delete(force bool) error {
	status := c.Status()
	switch status {
	case specs.StateStopped:
	case specs.StateCreated:
		unix.Kill(c.state.Pid, unix.SIGKILL)
		waitExit(c.state.Pid)
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s: %w", c.state.ID, status, errdefs.ErrConflict)
		}
		if err := c.signalAll(unix.SIGKILL); err != nil && c.state.alive() {
			return fmt.Errorf("kill container %s: %w", c.state.ID, err)
		}
		waitExit(c.state.Pid)
	}
	return c.destroy()
}

// destroy removes what create made: leftover processes (when the
// container shares the host's pid namespace), the cgroup, the state dir;
// then runs the poststop hooks.
func (c *Container) destroy() error {
	var errs []error
	if cg, err := c.cgroup(); err == nil {
		if pids, _ := cg.Pids(); len(pids) > 0 {
			c.signalAll(unix.SIGKILL)
			for _, p := range pids {
				waitExit(p)
			}
		}
		if err := cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if err := os.RemoveAll(c.rt.dir(c.state.ID)); err != nil {
		errs = append(errs, fmt.Errorf("remove state: %w", err))
	}
	if h := c.state.hooks(); h != nil {
		if err := hooks.Run(h.Poststop, "poststop", c.ociState(specs.StateStopped)); err != nil {
			warn("%v", err)
		}
	}
	return errors.Join(errs...)
}

// waitExit waits until pid is gone or a zombie (it need not be our child).
func waitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, 10000); err != unix.EINTR {
			return
		}
	}
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	status := c.Status()
	if status != specs.StateRunning && status != specs.StateCreated {
		return notInState(c.state.ID, status, "pause")
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	status := c.Status()
	if status != statePaused {
		return fmt.Errorf("container %s is not paused: %w", c.state.ID, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Pids lists the container's processes.
func (c *Container) Pids() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the container's cgroup counters.
func (c *Container) Stats() (*cgroups.Stats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// Update changes the resources of a live container and records them.
func (c *Container) Update(r *specs.LinuxResources) error {
	status := c.Status()
	if status == specs.StateStopped {
		return fmt.Errorf("container %s is not running: %w", c.state.ID, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Set(r); err != nil {
		return err
	}
	spec, err := c.state.spec()
	if err != nil {
		return err
	}
	if spec == nil || spec.Linux == nil {
		return fmt.Errorf("container %s: no linux section in its spec: %w", c.state.ID, errdefs.ErrDataLoss)
	}
	spec.Linux.Resources = mergeResources(spec.Linux.Resources, r)
	return writeState(c.rt.dir(c.state.ID), c.state)
}

// Cgroup returns the container's cgroup manager.
func (c *Container) Cgroup() (cgroups.Manager, error) { return c.cgroup() }

func warn(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "berth-runtime: warning: "+format+"\n", args...)
}
