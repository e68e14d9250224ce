package runtime

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Run creates and starts a container and, unless detach, stays as its
// parent: it forwards signals, relays the terminal, waits for the process
// and removes the container. It returns the process's exit code (128+n
// for a signal).
func (r *Runtime) Run(id, bundle string, opts CreateOptions, detach, keep bool) (int, error) {
	if err := ValidateID(id); err != nil {
		return -1, err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return -1, fmt.Errorf("bundle path: %w", err)
	}
	// Catch signals before the container's process runs so none is lost:
	// the catcher starts once init is started, while the parent waits for
	// init to set the container up (its round trips would hold back the
	// goroutines that make the container before), and start waits for it.
	var sc *signalCatcher
	if !detach {
		sc = newSignalCatcher()
		defer sc.stop()
		opts.initStarted = sc.start
	}
	data, err := readConfig(bundle)
	if err != nil {
		return -1, err
	}
	rv := r.reserveFor(id, data)
	spec, err := parseConfig(bundle, data)
	if err != nil {
		rv.release()
		return -1, err
	}
	var consoleRecv *os.File
	if spec.Process.Terminal && opts.ConsoleSocket == "" && !detach {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			rv.release()
			return -1, fmt.Errorf("console socketpair: %w", err)
		}
		consoleRecv = os.NewFile(uintptr(fds[0]), "console-recv")
		defer consoleRecv.Close()
		opts.consoleConn = os.NewFile(uintptr(fds[1]), "console-send")
	}
	// Run starts the container itself: init waits on the sync pipe, no
	// exec fifo is needed.
	opts.startByPipe = true
	t0 := time.Now()
	c, err := r.create(id, bundle, spec, opts, rv)
	slog.Debug("container created", "took", time.Since(t0))
	if opts.consoleConn != nil {
		opts.consoleConn.Close()
	}
	if err != nil {
		return -1, err
	}
	if c.startPipe != nil {
		defer c.startPipe.Close()
	}
	var master *os.File
	if consoleRecv != nil {
		if master, err = recvFd(consoleRecv); err != nil {
			c.Delete(true)
			return -1, err
		}
		defer master.Close()
	}
	if sc != nil {
		sc.start()
		<-sc.ready
	}
	t0 = time.Now()
	if err := c.Start(); err != nil {
		c.Delete(true)
		return -1, err
	}
	slog.Debug("container started", "took", time.Since(t0))
	if detach {
		if c.cmd != nil && c.cmd.Process != nil {
			c.cmd.Process.Release()
		}
		return 0, nil
	}
	var drained <-chan struct{}
	if master != nil {
		var restore func()
		restore, drained = relayTerminal(master)
		defer restore()
	}
	status := c.wait(sc.ch, master)
	waitDrained(drained)
	// Nothing is left to forward signals to: give them back in the
	// background, without waiting (see signalCatcher).
	sc.stopInBackground()
	t0 = time.Now()
	defer func() { slog.Debug("container removed", "took", time.Since(t0)) }()
	if !keep {
		if err := c.Delete(true); err != nil {
			return status, err
		}
	}
	return status, nil
}

// signalCatcher routes every signal to ch. Enabling or disabling each of
// the ~60 signals is a round trip to the Go runtime's signal thread, about
// 1 ms in all each way, so both are done in the background, overlapping
// the work around them. Once the container's process is gone, run and
// exec give the signals back without waiting for it to finish: their
// caller, the command line, exits right after (a signal that comes
// meanwhile goes to the channel, unread, instead of its default action).
type signalCatcher struct {
	ch chan os.Signal
	// ready is closed once every signal goes to ch, after start.
	ready     chan struct{}
	started   atomic.Bool
	startOnce sync.Once
	stopOnce  sync.Once
}

func newSignalCatcher() *signalCatcher {
	return &signalCatcher{ch: make(chan os.Signal, 64), ready: make(chan struct{})}
}

// catchSignals returns a started signalCatcher.
func catchSignals() *signalCatcher {
	sc := newSignalCatcher()
	sc.start()
	return sc
}

// start starts catching the signals in the background; it may be called
// again.
func (sc *signalCatcher) start() {
	sc.startOnce.Do(func() {
		sc.started.Store(true)
		go func() {
			signal.Notify(sc.ch)
			close(sc.ready)
		}()
	})
}

// stop gives the signals back to their default handling and returns once
// that is done, unless stopInBackground was called first.
func (sc *signalCatcher) stop() {
	sc.stopOnce.Do(sc.release)
}

// stopInBackground gives the signals back without waiting.
func (sc *signalCatcher) stopInBackground() {
	sc.stopOnce.Do(func() { go sc.release() })
}

func (sc *signalCatcher) release() {
	if !sc.started.Load() {
		return
	}
	<-sc.ready
	signal.Stop(sc.ch)
}

// wait forwards signals to init until it exits and returns its status.
func (c *Container) wait(sigs chan os.Signal, master *os.File) int {
	done := make(chan int, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(c.state.Pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				done <- 255
				return
			}
			break
		}
		if ws.Signaled() {
			done <- 128 + int(ws.Signal())
			return
		}
		done <- ws.ExitStatus()
	}()
	for {
		select {
		case code := <-done:
			return code
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				continue
			case unix.SIGWINCH:
				if master != nil {
					resizeFrom(master, os.Stdin)
				}
				continue
			}
			unix.Kill(c.state.Pid, sig)
		}
	}
}

// recvFd receives the pty master that init sent with SCM_RIGHTS.
func recvFd(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receive pty master: no descriptor in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("receive pty master: no descriptor in message")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// relayTerminal copies between our stdio and the pty master, with our
// terminal in raw mode; the returned func restores it, and the channel is
// closed once the container's output has all been copied.
func relayTerminal(master *os.File) (func(), <-chan struct{}) {
	var old *term.State
	if term.IsTerminal(int(os.Stdin.Fd())) {
		old, _ = term.MakeRaw(int(os.Stdin.Fd()))
		resizeFrom(master, os.Stdin)
	}
	go io.Copy(master, os.Stdin)
	outDone := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, master)
		close(outDone)
	}()
	return func() {
		if old != nil {
			term.Restore(int(os.Stdin.Fd()), old)
		}
	}, outDone
}

// waitDrained waits for the terminal output to be copied after the process
// exited: the copy ends when the last holder of the pty closes it, which a
// leftover process outside the container's pid namespace could delay, so
// the wait is bounded.
func waitDrained(drained <-chan struct{}) {
	if drained == nil {
		return
	}
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
}

func resizeFrom(master, from *os.File) {
	ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
}
