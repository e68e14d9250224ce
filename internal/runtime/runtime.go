// Package runtime is berth's OCI runtime: it creates containers from OCI
// bundles and drives them through the lifecycle of the runtime spec
// (create, start, kill, delete), plus exec, pause/resume, update, stats and
// events. State lives under Runtime.Root, one directory per container.
//
// The code that runs inside the container's namespaces lives in package
// nsinit; the conversation between the two is documented there.
package runtime

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/berth-project/berth/internal/runtime/nsinit"
	"github.com/berth-project/berth/internal/runtime/syncpipe"
	"github.com/berth-project/berth/internal/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Runtime holds the options shared by every command.
type Runtime struct {
	// Root is the state directory (runc's --root).
	Root string
}

// CreateOptions are the per-container options of create and run.
type CreateOptions struct {
	// ConsoleSocket is the AF_UNIX socket that receives the pty master.
	ConsoleSocket string
	// PidFile, when set, receives init's pid.
	PidFile string
	// NoPivot uses MS_MOVE+chroot instead of pivot_root.
	NoPivot bool
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool
	// PreserveFDs passes fds 3..3+N-1 of the caller to the container.
	PreserveFDs int
	// Stdin, Stdout and Stderr become the container's stdio (default: the
	// runtime's own).
	Stdin, Stdout, Stderr *os.File
	// consoleConn, set by run, is an already connected console socket.
	consoleConn *os.File
	// signalsCaught, set by exec, is closed once exec catches the signals
	// it forwards to the process: init is not started before.
	signalsCaught <-chan struct{}
	// startByPipe, set by run, has init wait for start on the sync pipe
	// instead of an exec fifo (see nsinit's protocol).
	startByPipe bool
	// netns, set by create, is the container's network namespace being
	// made (see earlyNetNS).
	netns *netNS
	// initStarted, set by run, is called once init is started.
	initStarted func()
}

// Container is one container known to the runtime.
type Container struct {
	rt    *Runtime
	state *State
	// cmd is set when this process started init (create/run), so run can
	// wait for it directly.
	cmd *exec.Cmd
	// cg, once known, is the container's cgroup (see cgroup).
	cg cgroups.Manager
	// startPipe, in the run that created the container with startByPipe,
	// is the sync pipe on which init waits for start.
	startPipe *syncpipe.Pipe
}

// ID returns the container id.
func (c *Container) ID() string { return c.state.ID }

// Pid returns init's host pid.
func (c *Container) Pid() int { return c.state.Pid }

// Create creates the container id from bundle and leaves it in the
// "created" state: init waits for Start before it executes the process.
// On failure nothing is left behind.
func (r *Runtime) Create(id, bundle string, opts CreateOptions) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
	}
	data, err := readConfig(bundle)
	if err != nil {
		return nil, err
	}
	rv := r.reserveFor(id, data)
	spec, err := parseConfig(bundle, data)
	if err != nil {
		rv.release()
		return nil, err
	}
	return r.create(id, bundle, spec, opts, rv)
}

// create is Create with the bundle's spec already loaded and validated,
// and the state directory being made by rv.
func (r *Runtime) create(id, bundle string, spec *specs.Spec, opts CreateOptions, rv *reservation) (_ *Container, err error) {
	claimed := false
	defer func() {
		if err != nil && !claimed {
			rv.release()
		}
	}()
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil {
		return nil, fmt.Errorf("rootfs (%s) does not exist: %w", rootfs, errdefs.ErrInvalidArgument)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("rootfs (%s) is not a directory: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, fmt.Errorf("resolve rootfs: %w", err)
	}
	// A relative bind mount source is relative to the bundle (runtime
	// spec, "mounts"), not to wherever the runtime was started.
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		if m.Source != "" && !filepath.IsAbs(m.Source) && isBind(m) {
			m.Source = filepath.Join(bundle, m.Source)
		}
	}
	if spec.Process.Terminal && opts.ConsoleSocket == "" && opts.consoleConn == nil {
		return nil, fmt.Errorf("cannot allocate tty if berth-runtime will detach without setting console socket: %w", errdefs.ErrInvalidArgument)
	}
	if !spec.Process.Terminal && opts.ConsoleSocket != "" {
		return nil, fmt.Errorf("cannot use console socket if berth-runtime will not detach or allocate tty: %w", errdefs.ErrInvalidArgument)
	}
	var prog *seccomp.Program
	if spec.Linux.Seccomp != nil {
		if prog, err = seccomp.CompileCached(spec.Linux.Seccomp, r.seccompCacheDir()); err != nil {
			return nil, err
		}
	}

	if earlyNetNS(spec) {
		opts.netns = startNetNS()
		defer opts.netns.discard()
	}
	if err := rv.wait(); err != nil {
		return nil, err
	}
	claimed = true
	dir := rv.dir
	var cleanups []func()
	defer func() {
		if err != nil {
			// In order: the process dies before its cgroup is removed.
			for _, f := range cleanups {
				f()
			}
			os.RemoveAll(dir)
		}
	}()

	st := &State{ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), Config: spec}
	c := &Container{rt: r, state: st}
	if c.cg = rv.takeCgroup(spec.Linux.CgroupsPath); c.cg != nil {
		cg := c.cg
		cleanups = append(cleanups, func() { cg.Destroy() })
	}

	// The state is written while init sets the container up, and put in
	// place once it is done.
	var staged *stagedState
	started := func(pid int) {
		st.Pid = pid
		staged = stageState(dir, st)
	}
	p, err := r.startInit(c, spec, prog, opts, &cleanups, started)
	if err != nil {
		if staged != nil {
			staged.discard()
		}
		return nil, err
	}
	if p.startPipe != nil {
		cleanups = append(cleanups, func() { p.startPipe.Close() })
	}
	if err := staged.commit(); err != nil {
		return nil, err
	}
	if opts.PidFile != "" {
		if err := writeFileAtomic(opts.PidFile, []byte(strconv.Itoa(st.Pid)), 0o644); err != nil {
			return nil, fmt.Errorf("write pid file: %w", err)
		}
	}
	c.cmd = p.cmd
	c.startPipe = p.startPipe
	return c, nil
}

// initProcess is a started init process.
type initProcess struct {
	cmd *exec.Cmd
	pid int
	// startPipe is the sync pipe, kept open with startByPipe.
	startPipe *syncpipe.Pipe
}

// startInit starts "berth-runtime init" in new namespaces, places it in the
// cgroup and leads it through the sync protocol until it waits for start;
// started, once init exists, is called with its pid before init is told
// to go on. With a nil started (exec) it instead joins the namespaces and
// cgroup of the running container c and goes straight on to execute
// spec.Process.
func (r *Runtime) startInit(c *Container, spec *specs.Spec, prog *seccomp.Program, opts CreateOptions, cleanups *[]func(), started func(pid int)) (*initProcess, error) {
	execMode := started == nil
	st := c.state
	var fifo *os.File
	if !execMode && !opts.startByPipe {
		fifoPath := filepath.Join(r.dir(st.ID), fifoName)
		if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
			return nil, fmt.Errorf("create exec fifo: %w", err)
		}
		// Mkfifo applies the umask; init opens the fifo for writing after
		// it became the container's user, who is not its owner.
		if err := os.Chmod(fifoPath, 0o622); err != nil {
			return nil, fmt.Errorf("create exec fifo: %w", err)
		}
		f, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open exec fifo: %w", err)
		}
		defer f.Close()
		fifo = f
	}

	// The sealed binary (an overlay mount) is made while the cgroup is.
	type sealed struct {
		f   *os.File
		err error
	}
	sealc := make(chan sealed, 1)
	go func() {
		f, err := sealedSelf(filepath.Join(r.Root, ".empty"))
		sealc <- sealed{f, err}
	}()
	sealedExe := sync.OnceValues(func() (*os.File, error) {
		s := <-sealc
		return s.f, s.err
	})
	defer func() {
		if f, _ := sealedExe(); f != nil {
			f.Close()
		}
	}()

	// The cgroup exists before init does: init is born inside it (see
	// cgroups.StartIn).
	var cg cgroups.Manager
	var err error
	switch {
	case execMode:
		if cg, err = c.cgroup(); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
	case c.cg != nil:
		// Made and applied while the config was decoded (see reserve);
		// create removes it on failure.
		cg = c.cg
	default:
		if cg, err = cgroups.New(spec.Linux.CgroupsPath, st.ID); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		c.cg = cg
		*cleanups = append(*cleanups, func() { cg.Destroy() })
		if err := cg.Apply(-1); err != nil {
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	st.CgroupPaths = cg.Paths()
	exe, err := sealedExe()
	if err != nil {
		return nil, err
	}

	parent, child, err := syncpipe.New()
	if err != nil {
		return nil, err
	}
	keepParent := false
	defer func() {
		if !keepParent {
			parent.Close()
		}
	}()
	defer child.Close()

	cmd := &exec.Cmd{
		Args:   []string{"berth-runtime", "init"},
		Stdin:  orStd(opts.Stdin, os.Stdin),
		Stdout: orStd(opts.Stdout, os.Stdout),
		Stderr: orStd(opts.Stderr, os.Stderr),
	}
	for i := 0; i < opts.PreserveFDs; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd"))
	}
	addFD := func(f *os.File, env string) {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		cmd.Env = append(cmd.Env, env+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	}
	addFD(child.File(), nsinit.EnvSyncFD)
	if fifo != nil {
		addFD(fifo, nsinit.EnvFifoFD)
	}
	if spec.Process.Terminal {
		conn := opts.consoleConn
		if conn == nil {
			if conn, err = dialConsole(opts.ConsoleSocket); err != nil {
				return nil, err
			}
			defer conn.Close()
		}
		addFD(conn, nsinit.EnvConsoleFD)
	}
	var attr *nsAttrs
	if execMode {
		attr = joinAttrs(spec, st.Pid)
	} else if attr, err = namespaceAttrs(spec); err != nil {
		return nil, err
	}
	if attr.netnsPath != "" {
		ns, err := os.OpenFile(attr.netnsPath, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", attr.netnsPath, err)
		}
		defer ns.Close()
		addFD(ns, nsinit.EnvNetNSFD)
	}
	if opts.netns != nil && !attr.useNsenter && attr.sys.Cloneflags&unix.CLONE_NEWNET != 0 {
		// Made meanwhile (see earlyNetNS); if that failed, clone makes it.
		if ns, err := opts.netns.wait(); err == nil {
			attr.sys.Cloneflags &^= unix.CLONE_NEWNET
			addFD(ns, nsinit.EnvNetNSFD)
		}
	}
	// The sealed binary is passed as the last descriptor and executed
	// through it; a descriptor outside ExtraFiles could be overwritten by
	// the child's descriptor shuffling before execve.
	cmd.ExtraFiles = append(cmd.ExtraFiles, exe)
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(2+len(cmd.ExtraFiles))
	cmd.SysProcAttr = attr.sys
	cmd.Env = append(cmd.Env, attr.env...)
	// Init runs on one thread (see cmd/berth-runtime): starting its Go
	// runtime with one P spares it resizing to one.
	cmd.Env = append(cmd.Env, "GOMAXPROCS=1")

	hasRuntimeHooks := spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0)
	// Init has no use for the other platforms' sections (Windows' has an
	// interface field, which the config's encoding cannot carry).
	initSpec := *spec
	initSpec.Solaris, initSpec.Windows, initSpec.VM, initSpec.ZOS, initSpec.FreeBSD = nil, nil, nil, nil, nil
	cfg := nsinit.Config{
		ID: st.ID, Spec: &initSpec, Rootfs: st.Rootfs, Bundle: st.Bundle,
		Seccomp: prog, RuntimeHooks: hasRuntimeHooks, NoPivot: opts.NoPivot,
		NoNewKeyring: opts.NoNewKeyring, PreserveFDs: opts.PreserveFDs, CgroupPaths: st.CgroupPaths,
		Exec: execMode, StartByPipe: !execMode && opts.startByPipe,
	}
	if !execMode {
		for _, h := range cgroups.Hierarchies(cg) {
			cfg.CgroupMounts = append(cfg.CgroupMounts, nsinit.CgroupMount{Mountpoint: h.Mountpoint, FSType: h.FSType, Root: h.Root, Options: h.Options})
		}
	}
	t0 := time.Now()
	if opts.signalsCaught != nil {
		<-opts.signalsCaught
	}
	if err := cgroups.StartIn(cg, cmd.SysProcAttr, cmd.Start); err != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		return nil, fmt.Errorf("start init process: %w", err)
	}
	pid := cmd.Process.Pid
	// Cleanups run in order: the process dies before its cgroup goes.
	*cleanups = append([]func(){func() {
		cmd.Process.Kill()
		cmd.Wait()
	}}, *cleanups...)
	child.Close()
	if attr.useNsenter {
		// The nsenter constructor may fork into the target pid namespace;
		// the pid of the process that goes on comes over the pipe.
		if pid, err = readForkedPid(parent, cmd, spec); err != nil {
			return nil, err
		}
		if pid != cmd.Process.Pid {
			// Forked with CLONE_PARENT, it is our child: reap it, or its
			// zombie stays in the container's pid namespace (and holds up
			// the namespace's init when it exits) until whoever inherits
			// it gets round to it.
			*cleanups = append([]func(){func() {
				unix.Kill(pid, unix.SIGKILL)
				var ws unix.WaitStatus
				for {
					if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
						break
					}
				}
			}}, *cleanups...)
		}
	}
	if opts.initStarted != nil {
		opts.initStarted()
	}
	slog.Debug("init started", "pid", pid, "took", time.Since(t0))
	t0 = time.Now()
	if !execMode {
		// The limits are set while init's runtime starts up, and are in
		// place before it reads its config: before it does anything.
		if err := cg.Set(withDefaultDevices(spec)); err != nil {
			return nil, fmt.Errorf("set cgroup resources: %w", err)
		}
	}
	cfg.HostPid = pid
	if err := parent.SendBinary(&cfg); err != nil {
		return nil, fmt.Errorf("send config to init: %w", err)
	}
	if !execMode {
		started(pid)
	}
	ready := false
	for !ready {
		var msg nsinit.Message
		_, err := parent.Recv(&msg)
		if errors.Is(err, os.ErrClosed) || isEOF(err) {
			if cfg.StartByPipe {
				return nil, initFailed(cmd, fmt.Errorf("init exited before it was ready: %w", io.ErrUnexpectedEOF))
			}
			break
		}
		if err != nil {
			return nil, initFailed(cmd, err)
		}
		switch msg.Type {
		case nsinit.MsgReady:
			if !cfg.StartByPipe {
				return nil, fmt.Errorf("unexpected sync message %q from init", msg.Type)
			}
			ready = true
		case nsinit.MsgError:
			cmd.Wait()
			return nil, errors.New(msg.Error)
		case nsinit.MsgHooks:
			hs := &specs.State{Version: specs.Version, ID: st.ID, Status: specs.StateCreating, Pid: pid, Bundle: st.Bundle, Annotations: spec.Annotations}
			if err := hooks.Run(spec.Hooks.Prestart, "prestart", hs); err != nil {
				return nil, err
			}
			if err := hooks.Run(spec.Hooks.CreateRuntime, "createRuntime", hs); err != nil {
				return nil, err
			}
			if err := parent.Send(nsinit.Message{Type: nsinit.MsgHooksDone}); err != nil {
				return nil, fmt.Errorf("resume init after hooks: %w", err)
			}
		case nsinit.MsgSeccompFd:
			// Init only wrote the descriptor's number (write(2) is the one
			// syscall a notify filter may not catch); take the descriptor
			// from its table with pidfd_getfd, then let it go on.
			fd, err := takeFd(pid, msg.Fd)
			if err != nil {
				return nil, err
			}
			err = sendSeccompListener(spec, st, pid, fd)
			unix.Close(fd)
			if err != nil {
				return nil, err
			}
			if err := parent.Send(nsinit.Message{Type: nsinit.MsgSeccompFdDone}); err != nil {
				return nil, fmt.Errorf("resume init after seccomp listener: %w", err)
			}
		default:
			return nil, fmt.Errorf("unexpected sync message %q from init", msg.Type)
		}
	}
	slog.Debug("init ready", "took", time.Since(t0))
	p := &initProcess{cmd: cmd, pid: pid}
	if cfg.StartByPipe {
		keepParent = true
		p.startPipe = parent
	}
	return p, nil
}

// takeFd copies descriptor fd of process pid into this process.
func takeFd(pid, fd int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return -1, fmt.Errorf("take seccomp listener fd %d from init: %w", fd, err)
	}
	return nfd, nil
}

func sendSeccompListener(spec *specs.Spec, st *State, pid int, fd int) error {
	ps := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      pid,
		Metadata: spec.Linux.Seccomp.ListenerMetadata,
		State:    specs.State{Version: specs.Version, ID: st.ID, Status: specs.StateCreating, Pid: pid, Bundle: st.Bundle, Annotations: spec.Annotations},
	}
	if err := seccomp.SendListener(spec.Linux.Seccomp.ListenerPath, ps, fd); err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", spec.Linux.Seccomp.ListenerPath, err)
	}
	return nil
}

// initFailed explains a broken sync pipe with init's exit status.
func initFailed(cmd *exec.Cmd, err error) error {
	if werr := cmd.Wait(); werr != nil {
		return fmt.Errorf("init process failed (%v): %w", werr, err)
	}
	return fmt.Errorf("init process: %w", err)
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// ownerName is the name of the user creating the container, as runc
// reports it in state and list ("#uid" without a passwd entry).
func ownerName() string {
	uid := os.Geteuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(uid)
}

func orStd(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

// Load opens the container id from its state.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	st, err := readState(r.dir(id))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, notExist(id)
		}
		return nil, err
	}
	return &Container{rt: r, state: st}, nil
}

// List returns every container under the root, sorted by id.
func (r *Runtime) List() ([]*Container, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read state root: %w", err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].state.ID < out[j].state.ID })
	return out, nil
}

// isBind reports whether m is a bind mount.
func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}
