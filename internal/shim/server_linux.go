package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"golang.org/x/sys/unix"
)

// server is one running shim.
type server struct {
	opts     Options
	ctx      context.Context
	reaper   *reaper
	listener *os.File
	jlog     *jsonLog
	cgroups  map[string]string // the container's cgroup dirs by controller
	seq      atomic.Int64
	cancel   chan os.Signal // SIGTERM, SIGINT

	mu       sync.Mutex
	init     *process
	started  bool // a start call came (it may still run, or have failed)
	running  bool // the start succeeded: the runtime has the container
	failed   bool // the start failed: its stdio is gone, it cannot be retried
	deleting bool
	execs    map[string]*process
	done     chan struct{} // closed when the shim should exit

	// pre is the runtime's run started ahead, at setup, waiting to go
	// (Options.PrestartRuntime); nil once used or given up.
	pre *prestarted

	rmMu    sync.Mutex // serialises removeContainer
	removed bool       // the runtime deleted the container

	idle *time.Timer // trims the shim's resident pages once calls stop

	// flushing counts attachers still writing out the end of a stream.
	flushing sync.WaitGroup
	// calls counts the calls being answered.
	calls sync.WaitGroup
}

// Serve runs the shim of one container: it sets itself up, reports the
// outcome on opts.Ready, then serves the RPC (the start call makes the
// container) until the container is deleted. It returns the error reported
// to the starter, if any.
//
// SIGTERM or SIGINT before the handshake cancels the start: the shim
// removes what it made and reports the cancellation. Afterwards they are
// ignored: the shim lives as long as its container (Kill, then Delete).
func Serve(ctx context.Context, opts Options) error {
	s := &server{opts: opts, ctx: ctx, execs: map[string]*process{}, done: make(chan struct{})}
	if err := closeOnExec(); err != nil {
		err = fmt.Errorf("mark inherited descriptors close-on-exec: %w", err)
		s.handshake(handshake{Error: err.Error()})
		return err
	}
	s.cancel = make(chan os.Signal, 1)
	signal.Notify(s.cancel, unix.SIGTERM, unix.SIGINT)
	if err := s.setup(); err != nil {
		s.handshake(handshake{Error: err.Error(), Class: className(err)})
		return err
	}
	s.handshake(handshake{Ready: true})
	go func() {
		for sig := range s.cancel {
			log.G(ctx).Warn("ignoring signal: the shim exits when its container is deleted", "signal", sig)
		}
	}()
	s.idle = time.AfterFunc(trimAfter, trimResident)
	s.serve()
	s.finishInFlight()
	return nil
}

// finishInFlight lets the calls being answered finish and the attachers
// take the rest of the output before the shim exits, each within
// exitFlushTimeout: a kill racing the container's exit still gets its
// answer, and the container's last lines, reported at its exit often
// before they are written out to an attacher, still reach it, though the
// daemon deletes the container at once. (Docker waits the same way, 2 s,
// for its stream copies when a container exits.)
func (s *server) finishInFlight() {
	if _, inTime := waitWithin(&s.calls, exitFlushTimeout); !inTime {
		log.G(s.ctx).Warn("calls did not finish before the shim's exit", "timeout", exitFlushTimeout)
	}
	if _, inTime := waitWithin(&s.flushing, exitFlushTimeout); !inTime {
		log.G(s.ctx).Warn("attachers did not take the rest of the output", "timeout", exitFlushTimeout)
	}
}

func (s *server) handshake(h handshake) {
	if s.opts.Ready == nil {
		return
	}
	// The starter may be gone: the shim goes on regardless.
	if err := writeJSONLine(s.opts.Ready, h); err != nil {
		log.G(s.ctx).Warn("report to starter", "error", err)
	}
	s.opts.Ready.Close()
}

func (s *server) path(name string) string { return filepath.Join(s.opts.StateDir, name) }

// setup prepares the shim: subreaper, state dir, socket, the container's
// stdio and log. The container itself is made by the start call. On
// failure nothing is left: no socket, no process.
func (s *server) setup() (err error) {
	o := &s.opts
	if err := o.validate(); err != nil {
		return err
	}
	if s.reaper, err = newReaper(); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("make state dir: %w", err)
	}
	sock := s.path(socketName)
	if f, err := dial(sock); err == nil {
		f.Close()
		return fmt.Errorf("a shim already serves %s: %w", sock, errdefs.ErrAlreadyExists)
	}
	os.Remove(sock)
	os.Remove(s.path(exitName)) // from an earlier container
	os.Remove(s.path(pidName))
	if s.listener, err = listen(sock); err != nil {
		return err
	}
	p := newProcess("", o.Terminal, &s.flushing)
	defer func() {
		if err != nil {
			p.closeAll()
			s.listener.Close()
			os.Remove(sock)
			if s.jlog != nil {
				s.jlog.close()
			}
		}
	}()
	if err := p.setupStdio(o.Stdin, s.path(consoleName)); err != nil {
		return err
	}
	if o.LogPath != "" {
		if s.jlog, err = openJSONLog(o.LogPath, o.LogMaxSize, o.LogMaxFile); err != nil {
			return err
		}
	}
	if err := s.cancelled(); err != nil {
		return err
	}
	s.init = p
	if o.PrestartRuntime {
		if err := s.prestart(); err != nil {
			s.init = nil
			return err
		}
	}
	return nil
}

// prestarted is a `berth-runtime run --wait-fd` started at setup: its Go
// start-up (a few milliseconds) overlaps the daemon's making of the
// bundle instead of following it. A byte on goW lets it read the bundle;
// closing goW makes it exit having created nothing.
type prestarted struct {
	wait    <-chan unix.WaitStatus
	logPath string
	goW     *os.File
}

// runArgs are the runtime's arguments to create and start the container.
func (s *server) runArgs() []string {
	args := []string{"run", "--detach", "--bundle", s.opts.Bundle, "--pid-file", s.path(pidName)}
	if s.init.terminal {
		args = append(args, "--console-socket", s.init.consolePath)
	}
	return args
}

// prestart starts the runtime's run, waiting for the start call.
func (s *server) prestart() error {
	goR, goW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("prestart runtime: %w", err)
	}
	defer goR.Close()
	args := append(s.runArgs(), "--wait-fd", "3", s.opts.ID)
	wait, logPath, err := s.startRuntime(s.init.childStdio(), []*os.File{goR}, args...)
	if err != nil {
		goW.Close()
		return err
	}
	s.pre = &prestarted{wait: wait, logPath: logPath, goW: goW}
	return nil
}

// takePrestarted returns the prestarted runtime, once.
func (s *server) takePrestarted() *prestarted {
	s.mu.Lock()
	defer s.mu.Unlock()
	pre := s.pre
	s.pre = nil
	return pre
}

// cancelPrestart ends a prestarted runtime that will not be used and
// waits for it.
func (s *server) cancelPrestart() {
	if pre := s.takePrestarted(); pre != nil {
		pre.goW.Close()
		<-pre.wait
		os.Remove(pre.logPath)
	}
}

// run creates and starts the container in one runtime call (`berth-runtime
// run --detach`: one program start instead of create and then start),
// then follows init: its pid, its cgroups, its output. If the runtime
// fails, it has removed what it made; the container's stdio is closed.
func (s *server) run() (err error) {
	o, p := &s.opts, s.init
	var master <-chan error
	if p.terminal {
		master = p.receiveMaster()
	}
	if pre := s.takePrestarted(); pre != nil {
		_, werr := pre.goW.Write([]byte{1})
		pre.goW.Close()
		err = s.finishRuntime(pre.wait, pre.logPath, "run")
		if werr != nil && err == nil {
			err = fmt.Errorf("tell the prestarted runtime to go: %w", werr)
		}
	} else {
		err = s.runtime(p.childStdio(), append(s.runArgs(), o.ID)...)
	}
	p.closeChild()
	if err == nil && master != nil {
		err = <-master
	}
	p.closeConsole()
	if err != nil {
		if master != nil {
			<-master
		}
		p.closeAll()
		return err
	}
	if p.pid, err = readPidFile(s.path(pidName)); err != nil {
		// The runtime reported success: the container exists.
		if derr := s.runtime([3]*os.File{}, "delete", "--force", o.ID); derr != nil {
			log.G(s.ctx).Error("remove container after a failed start", "error", derr)
		}
		p.closeAll()
		return err
	}
	if fd, perr := unix.PidfdOpen(p.pid, 0); perr == nil {
		p.pidfd = fd
	}
	s.cgroups = readCgroupPaths(filepath.Join(o.RuntimeRoot, o.ID, "state.json"))
	var emit func(string, []byte)
	if s.jlog != nil {
		emit = func(stream string, line []byte) {
			if err := s.jlog.write(stream, line, time.Now()); err != nil {
				log.G(s.ctx).Error("container log", "error", err)
			}
		}
	}
	p.startCopiers(emit)
	go s.waitInit()
	return nil
}

// closeOnExec marks every descriptor but stdio close-on-exec: whatever the
// starter leaked to the shim (and the ready fd, which only the shim
// writes) must not reach the runtime and the container.
func closeOnExec() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err != unix.ENOSYS && err != unix.EINVAL {
		return err
	}
	// Before Linux 5.11.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	return nil
}

// cancelled returns an error if the starter cancelled the start.
func (s *server) cancelled() error {
	select {
	case sig := <-s.cancel:
		return fmt.Errorf("start of container %s cancelled by %v: %w", s.opts.ID, sig, errdefs.ErrUnavailable)
	default:
		return nil
	}
}

// waitInit records init's exit: in memory, and in exit.json for a daemon
// that finds the shim gone.
func (s *server) waitInit() {
	p := s.init
	ws := <-s.reaper.watch(p.pid)
	exit := ExitStatus{Code: exitCode(ws), ExitedAt: time.Now().UTC(), OOMKilled: oomKilled(s.cgroups)}
	data, _ := json.Marshal(exit)
	if err := writeFileAtomic(s.path(exitName), data); err != nil {
		log.G(s.ctx).Error("record exit status", "error", err)
	}
	p.finish(exit)
	if s.jlog != nil {
		s.jlog.close()
	}
	log.G(s.ctx).Info("container exited", "code", exit.Code, "oomKilled", exit.OOMKilled)
	// A container whose init exited is never started again (a restart
	// is a new shim), so the runtime's delete runs now, while the daemon
	// handles the exit, instead of on the Delete call that always follows.
	if err := s.removeContainer(); err != nil {
		log.G(s.ctx).Warn("remove the stopped container", "error", err)
	}
}

// removeContainer deletes the container with the runtime, once: the
// removal after init's exit and a Delete call share it; after a failure
// the next caller tries again.
func (s *server) removeContainer() error {
	s.rmMu.Lock()
	defer s.rmMu.Unlock()
	if s.removed {
		return nil
	}
	if err := s.runtime([3]*os.File{}, "delete", s.opts.ID); err != nil {
		return err
	}
	s.removed = true
	return nil
}

// runtime runs berth-runtime with args and the given stdio (nil entries
// are /dev/null). A failure carries the runtime's own error message.
func (s *server) runtime(stdio [3]*os.File, args ...string) error {
	ch, logPath, err := s.startRuntime(stdio, nil, args...)
	if err != nil {
		return err
	}
	return s.finishRuntime(ch, logPath, args[0])
}

// startRuntime starts berth-runtime with args, stdio and extra descriptors
// (3, 4...); finishRuntime waits for it.
func (s *server) startRuntime(stdio [3]*os.File, extra []*os.File, args ...string) (<-chan unix.WaitStatus, string, error) {
	logPath := s.path("runtime-" + strconv.FormatInt(s.seq.Add(1), 10) + ".log")
	argv := append([]string{"berth-runtime", "--root", s.opts.RuntimeRoot, "--log", logPath, "--log-format", "json"}, args...)
	ch, err := s.reaper.start(s.opts.Runtime, argv, stdio, extra...)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOEXEC) {
			return nil, "", fmt.Errorf("run runtime %s: %w: %w", s.opts.Runtime, err, errdefs.ErrInvalidArgument)
		}
		return nil, "", fmt.Errorf("run runtime %s: %w", s.opts.Runtime, err)
	}
	return ch, logPath, nil
}

// finishRuntime waits for the runtime call started with its log at logPath;
// a failure carries the runtime's own error message.
func (s *server) finishRuntime(ch <-chan unix.WaitStatus, logPath, verb string) error {
	defer os.Remove(logPath)
	ws := <-ch
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	msg := runtimeError(logPath)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", exitCode(ws))
	}
	return fmt.Errorf("berth-runtime %s: %s", verb, msg)
}

// serve accepts connections until the shim is deleted.
func (s *server) serve() {
	go func() {
		<-s.done
		s.listener.Close()
	}()
	for {
		conn, err := accept(s.listener)
		if err != nil {
			select {
			case <-s.done:
			default:
				log.G(s.ctx).Error("accept", "error", err)
			}
			break
		}
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			s.handle(conn)
		}()
	}
	os.Remove(s.path(socketName))
}

// handle serves one call. Streams keep conn; everything else closes it.
func (s *server) handle(conn *os.File) {
	s.idle.Reset(trimAfter)
	var req request
	if err := readFrame(conn, &req); err != nil {
		conn.Close()
		return
	}
	var resp response
	var err error
	switch req.Method {
	case methodAttach:
		if s.attach(conn, &req) {
			return
		}
		conn.Close()
		return
	case methodWait:
		s.wait(conn, &req)
		conn.Close()
		return
	case methodDelete:
		var exit ExitStatus
		if exit, err = s.delete(); err == nil {
			resp.Exit = &exit
			reply(conn, resp, nil)
			conn.Close()
			close(s.done)
			return
		}
	case methodState:
		st := s.state()
		resp.State = &st
	case methodStart:
		if err = s.start(); err == nil {
			resp.Pid = s.init.pid
		}
	case methodKill:
		err = s.kill(req.Signal, req.All)
	case methodPause, methodResume:
		err = s.pause(req.Method)
	case methodResize:
		err = s.withProcess(req.Exec, func(p *process) error { return p.resize(req.Width, req.Height) })
	case methodCloseStdin:
		err = s.withProcess(req.Exec, (*process).closeStdin)
	case methodExec:
		err = s.execCreate(&req)
	case methodExecStart:
		resp.Pid, err = s.execStart(req.Exec)
	case methodExecState:
		var st *ExecState
		if st, err = s.execState(req.Exec); err == nil {
			resp.ExecState = st
		}
	case methodExecDelete:
		err = s.execDelete(req.Exec)
	case methodExecKill:
		err = s.withProcess(req.Exec, func(p *process) error { return p.signal(unix.Signal(req.Signal)) })
	default:
		err = fmt.Errorf("unknown method %q: %w", req.Method, errdefs.ErrNotImplemented)
	}
	reply(conn, resp, err)
	conn.Close()
}

func reply(conn *os.File, resp response, err error) {
	if err != nil {
		resp = response{Error: err.Error(), Class: className(err)}
	}
	writeFrame(conn, resp)
}

// process returns init ("") or the exec'd process id.
func (s *server) process(id string) (*process, error) {
	if id == "" {
		return s.init, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.execs[id]
	if !ok {
		return nil, fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (s *server) withProcess(id string, f func(*process) error) error {
	p, err := s.process(id)
	if err != nil {
		return err
	}
	return f(p)
}

func (s *server) state() State {
	p := s.init
	st := State{ID: s.opts.ID, ShimPid: os.Getpid(), Terminal: p.terminal}
	if !s.created() {
		st.Status = StatusCreated // not made yet, or its start failed
		return st
	}
	st.Pid = p.pid
	switch {
	case p.done():
		st.Status, st.ExitCode, st.ExitedAt, st.OOMKilled = StatusStopped, p.exit.Code, p.exit.ExitedAt, p.exit.OOMKilled
	case frozen(s.cgroups):
		st.Status = StatusPaused
	default:
		st.Status = StatusRunning
	}
	return st
}

// start creates and starts the container, once.
func (s *server) start() error {
	s.mu.Lock()
	if s.started || s.deleting {
		s.mu.Unlock()
		return fmt.Errorf("container %s is not in the created state: %w", s.opts.ID, errdefs.ErrConflict)
	}
	s.started = true
	s.mu.Unlock()
	err := s.run()
	s.mu.Lock()
	if err != nil {
		s.failed = true
	} else {
		s.running = true
	}
	s.mu.Unlock()
	return err
}

// created reports whether the runtime has the container: the start call
// succeeded. Before that there is no init process to signal or wait for.
func (s *server) created() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

func (s *server) kill(sig int, all bool) error {
	if sig <= 0 || sig > 64 {
		return fmt.Errorf("invalid signal %d: %w", sig, errdefs.ErrInvalidArgument)
	}
	if !s.created() || s.init.done() && !all {
		return fmt.Errorf("container %s is not running: %w", s.opts.ID, errdefs.ErrConflict)
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	return s.runtime([3]*os.File{}, append(args, s.opts.ID, strconv.Itoa(sig))...)
}

func (s *server) pause(verb string) error {
	if !s.created() || s.init.done() {
		return fmt.Errorf("container %s is not running: %w", s.opts.ID, errdefs.ErrConflict)
	}
	return s.runtime([3]*os.File{}, verb, s.opts.ID)
}

// wait answers once the process exited, or gives up when the client
// closes its connection.
func (s *server) wait(conn *os.File, req *request) {
	p, err := s.process(req.Exec)
	if err != nil {
		reply(conn, response{}, err)
		return
	}
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn)
		close(gone)
	}()
	select {
	case <-p.exited:
		exit := p.exit
		reply(conn, response{Exit: &exit}, nil)
	case <-gone:
	}
}

// attach hands conn to a stream of a process; it reports whether it kept
// conn.
func (s *server) attach(conn *os.File, req *request) bool {
	p, err := s.process(req.Exec)
	if err != nil {
		reply(conn, response{}, err)
		return false
	}
	switch req.Stream {
	case streamStdout, streamStderr:
		fan := p.stdout
		if req.Stream == streamStderr {
			if p.terminal {
				reply(conn, response{NoStream: true}, nil)
				return false
			}
			fan = p.stderr
		}
		header, err := frame(response{})
		if err != nil {
			return false
		}
		fan.add(conn, header)
		return true
	case streamStdin:
		if !p.withStdin {
			reply(conn, response{}, fmt.Errorf("process %s was started without stdin: %w", p.name(), errdefs.ErrConflict))
			return false
		}
		if writeFrame(conn, response{}) != nil {
			return false
		}
		// An exec'd process's stdin always ends with its attacher's.
		once := req.StdinOnce || p.id != ""
		go func() {
			defer conn.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := conn.Read(buf)
				if n > 0 && p.writeStdin(buf[:n]) != nil {
					return
				}
				if err != nil {
					if err == io.EOF && once {
						p.closeStdin()
					}
					return
				}
			}
		}()
		return true
	}
	reply(conn, response{}, fmt.Errorf("unknown stream %q: %w", req.Stream, errdefs.ErrInvalidArgument))
	return false
}

// delete removes the container with the runtime once it is not running
// (one never started, or whose start failed, is not in the runtime at all).
// The shim exits after the reply.
func (s *server) delete() (ExitStatus, error) {
	s.mu.Lock()
	if s.deleting {
		s.mu.Unlock()
		return ExitStatus{}, fmt.Errorf("container %s is being deleted: %w", s.opts.ID, errdefs.ErrConflict)
	}
	if s.started && !s.failed && !s.init.done() {
		s.mu.Unlock()
		return ExitStatus{}, fmt.Errorf("container %s is running: kill it first: %w", s.opts.ID, errdefs.ErrConflict)
	}
	s.deleting = true
	running := s.running
	s.mu.Unlock()
	if !running {
		s.cancelPrestart()
		s.init.closeAll()
		if s.jlog != nil {
			s.jlog.close()
		}
		return ExitStatus{}, nil
	}
	if err := s.removeContainer(); err != nil {
		s.mu.Lock()
		s.deleting = false
		s.mu.Unlock()
		return ExitStatus{}, err
	}
	<-s.init.exited
	return s.init.exit, nil
}

// readCgroupPaths reads the container's cgroup dirs from the runtime's
// state; nil if it cannot.
func readCgroupPaths(stateFile string) map[string]string {
	data, err := os.ReadFile(stateFile)
	if err != nil {
		return nil
	}
	var st struct {
		CgroupPaths map[string]string `json:"cgroupPaths"`
	}
	if json.Unmarshal(data, &st) != nil {
		return nil
	}
	return st.CgroupPaths
}

// frozen reports whether the container's cgroup is frozen (paused).
func frozen(cgroups map[string]string) bool {
	if dir, ok := cgroups["freezer"]; ok {
		data, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
		return err == nil && strings.TrimSpace(string(data)) == "FROZEN"
	}
	if dir, ok := cgroups[""]; ok {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(data)) == "1"
	}
	return false
}

// oomKilled reports whether the OOM killer killed a process of the
// container's cgroup (the "oom_kill" counter of cgroup v1's
// memory.oom_control or v2's memory.events).
func oomKilled(cgroups map[string]string) bool {
	var file string
	if dir, ok := cgroups["memory"]; ok {
		file = filepath.Join(dir, "memory.oom_control")
	} else if dir, ok := cgroups[""]; ok {
		file = filepath.Join(dir, "memory.events")
	} else {
		return false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "oom_kill %d", &n); err == nil {
			return n > 0
		}
	}
	return false
}
