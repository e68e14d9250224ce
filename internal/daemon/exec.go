package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/shim"
)

// execRetention is how long an exec that ended stays inspectable (its
// container's removal forgets it earlier).
const execRetention = 5 * time.Minute

// execReadyTimeout bounds how long a resize waits for an exec that is
// being started (clients resize right after they start one).
const execReadyTimeout = 10 * time.Second

// lostExecCode is the exit code of an exec whose end the shim could not
// report: its container's run ended, and the kernel killed it with the
// container's PID namespace (128+SIGKILL).
const lostExecCode = 137

// execStartFailedCode is the exit code of an exec that could not be
// started, as Docker records it.
const execStartFailedCode = 126

// execPhase is where an exec is in its life.
type execPhase int

const (
	execCreated  execPhase = iota // created, not started
	execStarting                  // start in progress
	execRunning                   // its process runs
	execExited                    // ended (or failed to start)
)

// execEntry is one exec'd process of a container. Its fields after mu are
// guarded by mu. Lock order: the container's e.mu, then mu.
type execEntry struct {
	id  string
	ctr *ctrEntry
	// ctrID is the container's ID (it never changes).
	ctrID string
	cfg   ExecCreateOptions

	mu       sync.Mutex
	phase    execPhase
	pid      int
	exitCode *int
	exitedAt time.Time
	// cl is the shim that runs it, once started.
	cl *shim.Client
	// ready is closed when a start ended (running or failed); done when
	// the exec ended.
	ready, done chan struct{}
	// cancel ends the streams between the daemon and the shim; stdin is
	// the pipe feeding the process's stdin, closed at the end.
	cancel context.CancelFunc
	stdin  *io.PipeWriter
}

// end records the exec's end with code unless it has ended already; it
// reports whether it did. It closes the streams to the shim.
func (x *execEntry) end(code int, at time.Time) bool {
	x.mu.Lock()
	if x.phase == execExited {
		x.mu.Unlock()
		return false
	}
	if x.phase != execRunning {
		close(x.ready)
	}
	x.phase = execExited
	x.exitCode = &code
	x.exitedAt = at
	close(x.done)
	cancel, stdin := x.cancel, x.stdin
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if stdin != nil {
		stdin.Close()
	}
	return true
}

// execTable holds the daemon's execs by ID (exec IDs are global in the
// Engine API). The zero value is ready to use.
type execTable struct {
	mu   sync.Mutex
	byID map[string]*execEntry
}

// add registers x, first forgetting the execs that ended long ago.
func (t *execTable) add(x *execEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID = map[string]*execEntry{}
	}
	cutoff := time.Now().Add(-execRetention)
	for id, o := range t.byID {
		o.mu.Lock()
		old := o.phase == execExited && o.exitedAt.Before(cutoff)
		o.mu.Unlock()
		if old {
			delete(t.byID, id)
		}
	}
	t.byID[x.id] = x
}

// get finds an exec by its full ID.
func (t *execTable) get(id string) (*execEntry, error) {
	t.mu.Lock()
	x, ok := t.byID[id]
	t.mu.Unlock()
	if !ok {
		//lint:ignore ST1005 Docker's wording, which clients match
		return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return x, nil
}

// drop forgets x.
func (t *execTable) drop(x *execEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[x.id] == x {
		delete(t.byID, x.id)
	}
}

// dropContainer forgets every exec of the container id.
func (t *execTable) dropContainer(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for xid, x := range t.byID {
		if x.ctrID == id {
			delete(t.byID, xid)
		}
	}
}

// forgetExecs forgets every exec of e, for the removal of its container.
// It takes only the exec table's lock: call it with or without e.mu.
func (d *Daemon) forgetExecs(e *ctrEntry) {
	d.execs.dropContainer(e.c.ID)
}

// endExecs settles the execs of a run that ended, as Docker does: those
// still running died with the container's PID namespace and stay
// inspectable for a while; those never started are forgotten. The
// container's list of execs is emptied. e.mu is held.
func (d *Daemon) endExecs(e *ctrEntry) {
	now := time.Now().UTC()
	for id, x := range e.execs {
		x.mu.Lock()
		created := x.phase == execCreated
		x.mu.Unlock()
		code, at := lostExecCode, now
		if !created && e.shim != nil {
			// An exec that ended just before the container did has its
			// real status in the shim; its watcher waits for e.mu.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.runCtx), 5*time.Second)
			if st, err := e.shim.ExecState(ctx, id); err == nil && st.Status == shim.StatusStopped {
				code, at = st.ExitCode, st.ExitedAt.UTC()
			}
			cancel()
		}
		switch {
		case created:
			d.execs.drop(x)
			x.end(code, at)
		case x.end(code, at):
			d.publishContainer("exec_die", e.c, map[string]string{"execID": id, "exitCode": fmt.Sprint(code)})
		}
		delete(e.execs, id)
	}
}

// execAction is Docker's event action for an exec: "exec_create: ls -l".
// Docker joins the command and its arguments with a space even when there
// are none ("exec_create: ls ").
func execAction(verb string, cmd []string) string {
	return verb + ": " + cmd[0] + " " + strings.Join(cmd[1:], " ")
}

// checkExecable returns Docker's error for an exec into e's container
// when it is not running; a paused one is named as ref (Docker names it
// as the create request did, by its ID at the start). e.mu is held.
func checkExecable(e *ctrEntry, ref string) error {
	c := e.c
	switch {
	case e.removed:
		return noSuchContainer(c.ID)
	case c.State.Status == api.StatePaused:
		return fmt.Errorf("container %s is paused, unpause the container before exec: %w", ref, errdefs.ErrConflict)
	case c.State.Status == api.StateRestarting:
		return fmt.Errorf("container %s is restarting, wait until the container is running: %w", c.ID, errdefs.ErrConflict)
	case !c.State.Running() || e.shim == nil:
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return nil
}

// validateExec checks an exec create request on its own.
func validateExec(opts ExecCreateOptions) error {
	if len(opts.Cmd) == 0 || opts.Cmd[0] == "" {
		//lint:ignore ST1005 Docker's wording
		return fmt.Errorf("No exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	for _, kv := range opts.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("invalid environment variable: %s: %w", kv, errdefs.ErrInvalidArgument)
		}
	}
	if opts.WorkingDir != "" && !path.IsAbs(opts.WorkingDir) {
		return fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path: %w", opts.WorkingDir, errdefs.ErrInvalidArgument)
	}
	if _, err := parseDetachKeys(opts.DetachKeys); err != nil {
		return err
	}
	return nil
}

// CreateExec registers a command to run in the running container ref and
// returns its ID; StartExec runs it.
func (d *Daemon) CreateExec(ctx context.Context, ref string, opts ExecCreateOptions) (string, error) {
	if err := validateExec(opts); err != nil {
		return "", err
	}
	e, err := d.ctrs.get(ref)
	if err != nil {
		return "", err
	}
	opts.Cmd = slices.Clone(opts.Cmd)
	opts.Env = slices.Clone(opts.Env)
	if opts.ConsoleSize != nil {
		size := *opts.ConsoleSize
		opts.ConsoleSize = &size
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := checkExecable(e, ref); err != nil {
		return "", err
	}
	x := &execEntry{
		id: container.NewID(), ctr: e, ctrID: e.c.ID, cfg: opts,
		ready: make(chan struct{}), done: make(chan struct{}),
	}
	e.execs[x.id] = x
	d.execs.add(x)
	d.publishContainer(execAction("exec_create", opts.Cmd), e.c, map[string]string{"execID": x.id})
	return x.id, nil
}

// StartExec runs a created exec. With opts.Detach it returns once the
// process runs; otherwise it copies the streams and returns when the
// process exited and its output was copied (nil), when the client typed
// the detach keys on stdin (ErrDetached: the process goes on) or when ctx
// ends (the process goes on with its stdin closed).
func (d *Daemon) StartExec(ctx context.Context, id string, opts ExecStartOptions) error {
	x, err := d.execs.get(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	switch x.phase {
	case execExited:
		x.mu.Unlock()
		return fmt.Errorf("Error: Exec command %s has already run: %w", id, errdefs.ErrConflict)
	case execStarting, execRunning:
		x.mu.Unlock()
		return fmt.Errorf("Error: Exec command %s is already running: %w", id, errdefs.ErrConflict)
	}
	x.phase = execStarting
	x.mu.Unlock()
	e := x.ctr
	running := false
	defer func() {
		if running {
			return
		}
		e.mu.Lock()
		if x.end(execStartFailedCode, time.Now().UTC()) && e.execs[id] == x {
			delete(e.execs, id)
		}
		e.mu.Unlock()
	}()
	cfg := x.cfg
	keys, err := parseDetachKeys(cmpOr(opts.DetachKeys, cfg.DetachKeys))
	if err != nil {
		return err
	}
	console := cfg.ConsoleSize
	if opts.ConsoleSize != nil {
		console = opts.ConsoleSize
	}

	e.mu.Lock()
	if err := checkExecable(e, e.c.ID); err != nil {
		e.mu.Unlock()
		return err
	}
	cl := e.shim
	src := execSource{
		bundle:   d.bundleDir(e.c.ID),
		ctrEnv:   slices.Clone(e.c.Config.Env),
		groupAdd: slices.Clone(e.c.HostConfig.GroupAdd),
	}
	e.mu.Unlock()

	proc, err := buildExecProcess(src, cfg, console)
	if err != nil {
		return err
	}

	// The streams to the shim live as long as the process, not as long as
	// this call: a client that detaches leaves them open.
	xctx, cancel := context.WithCancel(d.runCtx)
	var sio shim.ExecIO
	var gates []*gatedWriter
	var stdinW *io.PipeWriter
	detached := make(chan struct{})
	if !opts.Detach {
		if cfg.AttachStdout && opts.Stdout != nil {
			g := &gatedWriter{w: opts.Stdout}
			gates, sio.Stdout = append(gates, g), g
		}
		if cfg.AttachStderr && opts.Stderr != nil && !cfg.Tty {
			g := &gatedWriter{w: opts.Stderr}
			gates, sio.Stderr = append(gates, g), g
		}
		if cfg.AttachStdin && opts.Stdin != nil {
			pr, pw := io.Pipe()
			sio.Stdin, stdinW = pr, pw
			go func() {
				if err := copyDetachable(pw, opts.Stdin, keys); errors.Is(err, ErrDetached) {
					close(detached) // the process keeps its stdin open
					return
				}
				pw.Close()
			}()
		}
	}
	closeGates := func() {
		for _, g := range gates {
			g.close()
		}
	}
	x.mu.Lock()
	if x.phase == execExited {
		// The container's run ended meanwhile (endExecs).
		x.mu.Unlock()
		cancel()
		if stdinW != nil {
			stdinW.Close()
		}
		return fmt.Errorf("container %s is not running: %w", x.ctrID, errdefs.ErrConflict)
	}
	x.cancel, x.stdin, x.cl = cancel, stdinW, cl
	x.mu.Unlock()

	e.mu.Lock()
	d.publishContainer(execAction("exec_start", cfg.Cmd), e.c, map[string]string{"execID": id})
	e.mu.Unlock()
	if err := cl.Exec(xctx, id, proc, sio); err != nil {
		closeGates()
		return fmt.Errorf("exec %s in container %s: %w", id, x.ctrID, err)
	}
	running = true
	st, serr := cl.ExecState(ctx, id)
	x.mu.Lock()
	if x.phase == execStarting {
		x.phase = execRunning
		if serr == nil {
			x.pid = st.Pid
		}
		close(x.ready)
	}
	x.mu.Unlock()
	d.wg.Add(1)
	go d.watchExec(x, cl)

	if opts.Detach {
		return nil
	}
	select {
	case <-x.done:
		closeGates()
		return nil
	case <-detached:
		closeGates()
		return ErrDetached
	case <-ctx.Done():
		closeGates()
		if stdinW != nil {
			stdinW.Close()
		}
		return ctx.Err()
	case <-d.runCtx.Done():
		closeGates()
		return fmt.Errorf("exec %s: the daemon is shutting down: %w", id, errdefs.ErrUnavailable)
	}
}

// watchExec waits for the exit of the exec x that cl runs and records it.
// It ends without recording anything when the daemon shuts down.
func (d *Daemon) watchExec(x *execEntry, cl *shim.Client) {
	defer d.wg.Done()
	st, err := cl.ExecWait(d.runCtx, x.id)
	if err != nil {
		if d.runCtx.Err() != nil {
			return
		}
		// The shim went away: the container's run ended.
		st = shim.ExitStatus{Code: lostExecCode, ExitedAt: time.Now()}
	}
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now()
	}
	// Under e.mu, so that the container no longer lists the exec once
	// its start returns.
	e := x.ctr
	e.mu.Lock()
	if x.end(st.Code, st.ExitedAt.UTC()) {
		if e.execs[x.id] == x {
			delete(e.execs, x.id)
		}
		d.publishContainer("exec_die", e.c, map[string]string{"execID": x.id, "exitCode": fmt.Sprint(st.Code)})
	}
	e.mu.Unlock()
	// Free the shim's record of it; a shim that is gone has none.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(d.runCtx), 10*time.Second)
	cl.ExecDelete(dctx, x.id)
	cancel()
}

// ResizeExec sets the size of a started exec's terminal, waiting a little
// for an exec that is not started yet (clients resize right after start).
func (d *Daemon) ResizeExec(ctx context.Context, id string, height, width uint) error {
	x, err := d.execs.get(id)
	if err != nil {
		return err
	}
	t := time.NewTimer(execReadyTimeout)
	defer t.Stop()
	select {
	case <-x.ready:
	case <-t.C:
		return fmt.Errorf("timeout waiting for exec session ready: %w", errdefs.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	x.mu.Lock()
	phase, cl := x.phase, x.cl
	x.mu.Unlock()
	if phase != execRunning || cl == nil {
		return fmt.Errorf("exec %s is not running: %w", id, errdefs.ErrConflict)
	}
	if err := cl.ExecResize(ctx, id, uint16(min(width, 0xffff)), uint16(min(height, 0xffff))); err != nil {
		return fmt.Errorf("resize exec %s: %w", id, err)
	}
	return nil
}

// InspectExec describes an exec.
func (d *Daemon) InspectExec(ctx context.Context, id string) (ExecInfo, error) {
	x, err := d.execs.get(id)
	if err != nil {
		return ExecInfo{}, err
	}
	cfg := x.cfg
	info := ExecInfo{
		ID: x.id, ContainerID: x.ctrID,
		OpenStdin: cfg.AttachStdin, OpenStdout: cfg.AttachStdout, OpenStderr: cfg.AttachStderr,
		Tty: cfg.Tty, Privileged: cfg.Privileged, User: cfg.User, WorkingDir: cfg.WorkingDir,
		Entrypoint: cfg.Cmd[0], Arguments: slices.Clone(cfg.Cmd[1:]), DetachKeys: cfg.DetachKeys,
	}
	if info.Arguments == nil {
		info.Arguments = []string{}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	info.Running = x.phase == execRunning
	info.Pid = x.pid
	if x.exitCode != nil {
		code := *x.exitCode
		info.ExitCode = &code
		info.CanRemove = true
	}
	return info, nil
}

// execSource is what an exec's process is made from: the container's
// bundle (its config.json and rootfs) and configuration.
type execSource struct {
	bundle   string
	ctrEnv   []string
	groupAdd []string
}

// buildExecProcess returns the process of an exec: the container's own
// process (from the spec it runs with) with cfg applied, the user
// resolved inside the container's root.
func buildExecProcess(src execSource, cfg ExecCreateOptions, console *[2]uint) (*specs.Process, error) {
	base, err := readRunProcess(src.bundle)
	if err != nil {
		return nil, err
	}
	var user *specs.User
	if cfg.User != "" {
		u, err := oci.ResolveUser(filepath.Join(src.bundle, "rootfs"), cfg.User, src.groupAdd)
		if err != nil {
			return nil, err
		}
		user = &u
	}
	var all []string
	if cfg.Privileged {
		// What the kernel supports and the daemon's bounding set holds.
		all = oci.AllCapabilities()
	}
	return execProcess(base, src.ctrEnv, cfg, console, user, all), nil
}

// readRunProcess reads the process of the spec a container runs with.
func readRunProcess(bundle string) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the container's spec: %w", err)
	}
	var spec struct {
		Process *specs.Process `json:"process"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("decode the container's spec: %w: %w", err, errdefs.ErrDataLoss)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("the container's spec has no process: %w", errdefs.ErrDataLoss)
	}
	return spec.Process, nil
}

// execProcess applies an exec's settings to base, the container's
// process, as Docker does: its command, its environment over the
// container's (TERM=xterm with a terminal), its working directory,
// terminal and console size, its user (nil keeps the container's) and,
// when privileged, every capability (allCaps) and no AppArmor or SELinux
// label. Limits, no_new_privileges and the OOM score stay the container's.
func execProcess(base *specs.Process, ctrEnv []string, cfg ExecCreateOptions, console *[2]uint, user *specs.User, allCaps []string) *specs.Process {
	p := *base
	p.Args = slices.Clone(cfg.Cmd)
	p.Env = execEnv(base.Env, ctrEnv, cfg.Tty, cfg.Env)
	if cfg.WorkingDir != "" {
		p.Cwd = path.Clean(cfg.WorkingDir)
	}
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	if cfg.Tty && console != nil && (console[0] > 0 || console[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: console[0], Width: console[1]}
	}
	if user != nil {
		u := *user
		u.Umask = base.User.Umask
		p.User = u
	}
	if user != nil || cfg.Privileged {
		p.Capabilities = execCaps(base.Capabilities, p.User.UID, allCaps)
	}
	if cfg.Privileged {
		p.ApparmorProfile = ""
		p.SelinuxLabel = ""
	}
	return &p
}

// execCaps returns the capabilities of an exec run as uid: the
// container's bounding set (or all, when all is given), and for root the
// same effective and permitted sets, as the container's own process gets.
func execCaps(base *specs.LinuxCapabilities, uid uint32, all []string) *specs.LinuxCapabilities {
	var bounding []string
	switch {
	case len(all) > 0:
		bounding = slices.Clone(all)
	case base != nil:
		bounding = slices.Clone(base.Bounding)
	default:
		return nil
	}
	c := &specs.LinuxCapabilities{Bounding: bounding}
	if uid == 0 {
		c.Effective, c.Permitted = slices.Clone(bounding), slices.Clone(bounding)
	}
	return c
}

// execEnv is an exec's environment: the container's process environment
// (without the TERM the daemon added for the container's own terminal,
// with TERM=xterm for the exec's), then the exec's variables: KEY=value
// replaces or adds KEY, a bare KEY removes it.
func execEnv(base, ctrEnv []string, tty bool, extra []string) []string {
	env := slices.Clone(base)
	if _, userTerm := envValue(ctrEnv, "TERM"); !userTerm {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") })
	}
	if _, ok := envValue(env, "TERM"); tty && !ok {
		env = append(env, "TERM=xterm")
	}
	for _, kv := range extra {
		k, _, hasValue := strings.Cut(kv, "=")
		i := slices.IndexFunc(env, func(o string) bool { ko, _, _ := strings.Cut(o, "="); return ko == k })
		switch {
		case !hasValue && i >= 0:
			env = slices.Delete(env, i, i+1)
		case !hasValue:
		case i >= 0:
			env[i] = kv
		default:
			env = append(env, kv)
		}
	}
	return env
}

// gatedWriter passes writes on until it is closed; later writes fail, so
// that nothing reaches a client's stream after the call that owned it
// returned.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, io.ErrClosedPipe
	}
	return g.w.Write(p)
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// cmpOr returns the first non-empty string.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
