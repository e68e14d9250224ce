package shim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long an exit waits for the process's output to
// reach EOF: a process left behind (host pid namespace) may hold the pipes.
const drainTimeout = 5 * time.Second

// process is the container's init or one exec'd process, with its stdio.
type process struct {
	id       string // exec id; "" for init
	terminal bool
	// spec and seq (which names its files) of an exec'd process; spec is
	// nil once it was started.
	spec *specs.Process
	seq  int64

	// The child's ends of its stdio, passed to the runtime, then closed.
	childIn, childOut, childErr *os.File
	// console receives the pty master from the runtime (terminal only).
	console     *os.File
	consolePath string

	// outR and errR are the shim's ends of the output (outR is the pty
	// master with a terminal, errR then nil).
	outR, errR     *os.File
	stdout, stderr *fanout
	copiers        sync.WaitGroup

	withStdin bool
	inMu      sync.Mutex // guards stdin, inClosed and pidfd
	stdin     *os.File   // pipe to the process, or the pty master
	inClosed  bool
	master    *os.File
	// stdinReady is closed once stdin can be written: at once for a pipe,
	// when the pty master arrives for a terminal (input an attacher sends
	// before that waits for it), or when the process's stdio is closed.
	stdinReady chan struct{}
	readyOnce  sync.Once

	pid    int
	pidfd  int // -1 when unknown
	exited chan struct{}
	exit   ExitStatus // set before exited is closed
}

// newProcess makes the process id ("" for init); its attachers are
// counted in flushing.
func newProcess(id string, terminal bool, flushing *sync.WaitGroup) *process {
	// Only an exec'd process's output waits for its attachers: it has no
	// log, they are its only readers.
	block := id != ""
	return &process{id: id, terminal: terminal, stdout: newFanout(block, flushing), stderr: newFanout(block, flushing), pidfd: -1,
		exited: make(chan struct{}), stdinReady: make(chan struct{})}
}

// markStdinReady closes stdinReady, once.
func (p *process) markStdinReady() { p.readyOnce.Do(func() { close(p.stdinReady) }) }

// setupStdio makes the process's pipes, or listens on consolePath for its
// pty master.
func (p *process) setupStdio(withStdin bool, consolePath string) error {
	p.withStdin = withStdin
	if p.terminal {
		l, err := listen(consolePath)
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		p.console, p.consolePath = l, consolePath
		return nil
	}
	if withStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("stdin pipe: %w", err)
		}
		p.childIn, p.stdin = r, w
	}
	p.markStdinReady()
	r, w, err := os.Pipe()
	if err != nil {
		p.closeAll()
		return fmt.Errorf("stdout pipe: %w", err)
	}
	p.childOut, p.outR = w, r
	r, w, err = os.Pipe()
	if err != nil {
		p.closeAll()
		return fmt.Errorf("stderr pipe: %w", err)
	}
	p.childErr, p.errR = w, r
	return nil
}

// childStdio is what the runtime (and so the process) gets as fds 0-2.
func (p *process) childStdio() [3]*os.File { return [3]*os.File{p.childIn, p.childOut, p.childErr} }

// closeChild closes the child's ends once the runtime has passed them on,
// so that the shim reads EOF when the process and its children are gone.
func (p *process) closeChild() {
	for _, f := range []*os.File{p.childIn, p.childOut, p.childErr} {
		if f != nil {
			f.Close()
		}
	}
	p.childIn, p.childOut, p.childErr = nil, nil, nil
}

// closeConsole stops listening for the pty master.
func (p *process) closeConsole() {
	if p.console != nil {
		p.console.Close()
		os.Remove(p.consolePath)
		p.console = nil
	}
}

// closeAll releases every descriptor of a process that never ran.
func (p *process) closeAll() {
	p.inMu.Lock()
	p.inClosed = true
	p.inMu.Unlock()
	p.markStdinReady() // input waiting for a pty master that never comes fails
	p.closeChild()
	p.closeConsole()
	for _, f := range []*os.File{p.stdin, p.outR, p.errR, p.master} {
		if f != nil {
			f.Close()
		}
	}
	p.stdout.close()
	p.stderr.close()
}

// receiveMaster accepts the runtime's connection on the console socket and
// takes the pty master from it. It runs while the runtime creates the
// process; closing the console socket ends it.
func (p *process) receiveMaster() <-chan error {
	done := make(chan error, 1)
	l := p.console
	go func() {
		conn, err := accept(l)
		if err != nil {
			done <- fmt.Errorf("no pty master from the runtime: %w", err)
			return
		}
		defer conn.Close()
		m, err := recvFd(conn)
		if err == nil {
			p.inMu.Lock()
			p.master, p.outR = m, m
			if p.withStdin {
				p.stdin = m
			}
			p.inMu.Unlock()
			p.markStdinReady()
		}
		done <- err
	}()
	return done
}

// startCopiers copies the process's output to its attachers and, through
// emit, to a log.
func (p *process) startCopiers(emit func(stream string, line []byte)) {
	copyOut := func(src *os.File, fan *fanout, stream string) {
		defer p.copiers.Done()
		var split *lineSplitter
		if emit != nil {
			split = newLineSplitter(stream, emit)
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if split != nil {
					split.write(buf[:n])
				}
				fan.write(buf[:n])
			}
			if err != nil { // EOF, or EIO from a pty whose slave is gone
				break
			}
		}
		if split != nil {
			split.flush()
		}
		fan.close()
	}
	p.copiers.Add(1)
	go copyOut(p.outR, p.stdout, streamStdout)
	if p.errR != nil {
		p.copiers.Add(1)
		go copyOut(p.errR, p.stderr, streamStderr)
	} else {
		p.stderr.close()
	}
}

// drain waits for the copiers to reach EOF, at most drainTimeout; it
// returns a channel closed once they did.
func (p *process) drain() <-chan struct{} {
	done, _ := waitWithin(&p.copiers, drainTimeout)
	return done
}

// waitWithin waits for wg at most d and reports whether it was done in
// time; done is closed once it is, in time or later.
func waitWithin(wg *sync.WaitGroup, d time.Duration) (done <-chan struct{}, inTime bool) {
	c := make(chan struct{})
	go func() {
		wg.Wait()
		close(c)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
		return c, true
	case <-t.C:
		return c, false
	}
}

// writeStdin writes b to the process's stdin.
func (p *process) writeStdin(b []byte) error {
	<-p.stdinReady
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if p.stdin == nil || p.inClosed {
		return fmt.Errorf("stdin is closed: %w", errdefs.ErrConflict)
	}
	_, err := p.stdin.Write(b)
	return err
}

// closeStdin closes the stdin pipe; with a terminal, whose master is also
// the output, it writes the terminal's end-of-file character instead.
func (p *process) closeStdin() error {
	<-p.stdinReady
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if p.stdin == nil {
		return fmt.Errorf("process has no stdin: %w", errdefs.ErrConflict)
	}
	if p.inClosed {
		return nil
	}
	p.inClosed = true
	if p.terminal {
		_, err := p.stdin.Write([]byte{4}) // VEOF, ^D
		return err
	}
	return p.stdin.Close()
}

// resize sets the size of the process's terminal.
func (p *process) resize(width, height uint16) error {
	if p.master == nil {
		return fmt.Errorf("process has no terminal: %w", errdefs.ErrConflict)
	}
	ws := &unix.Winsize{Col: width, Row: height}
	rc, err := p.master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	if ierr != nil {
		return fmt.Errorf("resize terminal: %w", ierr)
	}
	return nil
}

// done reports whether the process has exited.
func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// finish records the exit once the output drained (or drainTimeout
// passed) and releases the stdio.
func (p *process) finish(exit ExitStatus) {
	drained := p.drain()
	p.inMu.Lock()
	if p.stdin != nil && !p.inClosed && !p.terminal {
		p.stdin.Close()
	}
	p.inClosed = true
	p.markStdinReady()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	p.inMu.Unlock()
	closeOut := func() {
		for _, f := range []*os.File{p.outR, p.errR} {
			if f != nil {
				f.Close()
			}
		}
	}
	select {
	case <-drained:
		closeOut()
	default:
		if p.id == "" {
			// The container stopped: output still held open by a leftover
			// process is cut, the copiers end and close their attachers.
			closeOut()
		} else {
			// An exec'd process's output may still be on its way to a slow
			// attacher: let it finish.
			go func() {
				<-drained
				closeOut()
			}()
		}
	}
	p.exit = exit
	close(p.exited)
}

// signal sends sig to the process through its pidfd, which cannot reach a
// later process that reuses the pid.
func (p *process) signal(sig unix.Signal) error {
	p.inMu.Lock() // finish closes the pidfd under it
	defer p.inMu.Unlock()
	if p.done() || p.pidfd < 0 {
		return fmt.Errorf("process %s is not running: %w", p.name(), errdefs.ErrConflict)
	}
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("process %s is not running: %w", p.name(), errdefs.ErrConflict)
		}
		return fmt.Errorf("signal process %s: %w", p.name(), err)
	}
	return nil
}

func (p *process) name() string {
	if p.id == "" {
		return "init"
	}
	return p.id
}

// readPidFile reads the pid the runtime wrote.
func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q, not a pid", path, data)
	}
	return pid, nil
}

// runtimeError returns the message of the last error in the runtime's JSON
// log (what berth-runtime also prints on stderr), or "".
func runtimeError(logPath string) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	var msg string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == "ERROR" {
			msg = rec.Msg
		}
	}
	return msg
}

// writeFileAtomic writes data to path through a temp file and a rename,
// so that a reader sees the old file or the whole new one. It does not
// fsync: the file lives in the exec root (tmpfs /run normally) and must
// outlive the shim and the daemon, not the host, whose reboot ends the
// container anyway; a sync would put a journal commit on every exit's
// critical path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func nowUTC() time.Time { return time.Now().UTC() }
