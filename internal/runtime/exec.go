package runtime

import (
	"fmt"
	"os"
	"strconv"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions are the options of exec beyond the process itself.
type ExecOptions struct {
	CreateOptions
	// Detach returns once the process runs instead of waiting for it.
	Detach bool
	// IgnorePaused allows exec into a paused container.
	IgnorePaused bool
}

// Exec runs p inside the running container c, in all its namespaces and
// its cgroup, with the container's seccomp filter. Unless detached it
// waits and returns the process's exit code.
func (c *Container) Exec(p *specs.Process, opts ExecOptions) (int, error) {
	status := c.Status()
	switch status {
	case specs.StateRunning, specs.StateCreated:
	case statePaused:
		if !opts.IgnorePaused {
			return -1, fmt.Errorf("cannot exec in a paused container %s (use --ignore-paused): %w", c.state.ID, errdefs.ErrConflict)
		}
	default:
		return -1, fmt.Errorf("cannot exec in a stopped container %s: %w", c.state.ID, errdefs.ErrConflict)
	}
	if err := validateProcess(p); err != nil {
		return -1, err
	}
	if p.Terminal && opts.ConsoleSocket == "" && opts.Detach {
		return -1, fmt.Errorf("cannot allocate tty if berth-runtime will detach without setting console socket: %w", errdefs.ErrInvalidArgument)
	}
	if !p.Terminal && opts.ConsoleSocket != "" {
		return -1, fmt.Errorf("cannot use console socket if berth-runtime will not detach or allocate tty: %w", errdefs.ErrInvalidArgument)
	}
	base, err := c.state.spec()
	if err != nil {
		return -1, err
	}
	if base == nil || base.Linux == nil {
		return -1, fmt.Errorf("container %s: no linux section in its spec: %w", c.state.ID, errdefs.ErrDataLoss)
	}
	spec := *base
	linux := *spec.Linux
	spec.Linux = &linux
	spec.Process = p
	var prog *seccomp.Program
	if spec.Linux.Seccomp != nil {
		var err error
		if prog, err = seccomp.CompileCached(spec.Linux.Seccomp, c.rt.seccompCacheDir()); err != nil {
			return -1, err
		}
	}
	var consoleRecv *os.File
	if p.Terminal && opts.ConsoleSocket == "" {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("console socketpair: %w", err)
		}
		consoleRecv = os.NewFile(uintptr(fds[0]), "console-recv")
		defer consoleRecv.Close()
		opts.consoleConn = os.NewFile(uintptr(fds[1]), "console-send")
	}
	var sigs chan os.Signal
	var sc *signalCatcher
	if !opts.Detach {
		sc = catchSignals()
		defer sc.stop()
		opts.signalsCaught = sc.ready
		sigs = sc.ch
	}
	var cleanups []func()
	ip, err := c.rt.startInit(c, &spec, prog, opts.CreateOptions, &cleanups, nil)
	if opts.consoleConn != nil {
		opts.consoleConn.Close()
	}
	if err != nil {
		for _, f := range cleanups {
			f()
		}
		return -1, err
	}
	if opts.PidFile != "" {
		if err := writeFileAtomic(opts.PidFile, []byte(strconv.Itoa(ip.pid)), 0o644); err != nil {
			unix.Kill(ip.pid, unix.SIGKILL)
			return -1, fmt.Errorf("write pid file: %w", err)
		}
	}
	if opts.Detach {
		return 0, nil
	}
	var master *os.File
	if consoleRecv != nil {
		if master, err = recvFd(consoleRecv); err != nil {
			unix.Kill(ip.pid, unix.SIGKILL)
			return -1, err
		}
		defer master.Close()
		restore, drained := relayTerminal(master)
		defer restore()
		proc := &Container{rt: c.rt, state: &State{ID: c.state.ID, Pid: ip.pid}}
		code := proc.wait(sigs, master)
		sc.stopInBackground()
		waitDrained(drained)
		return code, nil
	}
	proc := &Container{rt: c.rt, state: &State{ID: c.state.ID, Pid: ip.pid}}
	code := proc.wait(sigs, master)
	sc.stopInBackground()
	return code, nil
}
