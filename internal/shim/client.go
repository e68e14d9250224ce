package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cleanupTimeout bounds a call that undoes a failed one.
const cleanupTimeout = 10 * time.Second

// Client talks to one shim. It holds no connection between calls: each
// call dials the shim's socket, so a Client survives nothing and costs
// nothing; Close ends the streams and calls in flight, Release lets them
// end on their own.
type Client struct {
	stateDir string
	sock     string
	shimPid  int
	// shimExited is closed once the shim this client started was reaped
	// (nil after Connect).
	shimExited <-chan struct{}

	mu     sync.Mutex
	closed bool
	conns  map[*os.File]struct{}
	execIO map[string]*sync.WaitGroup // output copies of this client's execs
}

func newClient(stateDir string, shimPid int, shimExited <-chan struct{}) *Client {
	return &Client{
		stateDir: stateDir, sock: filepath.Join(stateDir, socketName), shimPid: shimPid, shimExited: shimExited,
		conns: map[*os.File]struct{}{}, execIO: map[string]*sync.WaitGroup{},
	}
}

// Connect returns a client for the shim serving stateDir, for a daemon that
// restarted. A shim that is gone is errdefs.ErrUnavailable; its container's
// exit status may still be in the state dir (ReadExitStatus).
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	c := newClient(stateDir, 0, nil)
	st, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	c.shimPid = st.ShimPid
	return c, nil
}

// ReadExitStatus reads the exit status the shim of stateDir recorded when
// the container exited (errdefs.ErrNotFound if it has not).
func ReadExitStatus(stateDir string) (ExitStatus, error) {
	var exit ExitStatus
	data, err := os.ReadFile(filepath.Join(stateDir, exitName))
	if errors.Is(err, os.ErrNotExist) {
		return exit, fmt.Errorf("exit status in %s: %w", stateDir, errdefs.ErrNotFound)
	}
	if err != nil {
		return exit, fmt.Errorf("read exit status: %w", err)
	}
	if err := json.Unmarshal(data, &exit); err != nil {
		return exit, fmt.Errorf("read exit status %s: %w: %w", stateDir, err, errdefs.ErrDataLoss)
	}
	return exit, nil
}

// ShimPid returns the shim's pid.
func (c *Client) ShimPid() int { return c.shimPid }

// Close ends the client's calls and streams in flight; the shim and its
// container go on.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for f := range c.conns {
		f.Close()
		delete(c.conns, f)
	}
	return nil
}

// Release refuses new calls but leaves those in flight and the attached
// streams to end as the shim ends them: with their answers, or with the
// rest of the output and then EOF. It is how the client of a deleted shim
// is let go: its attachers may not have read all of the output yet, and
// a call made just before (a kill racing the exit) still gets its answer.
func (c *Client) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}

// open dials the shim and tracks the connection until forget.
func (c *Client) open() (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("shim client is closed: %w", errdefs.ErrUnavailable)
	}
	f, err := dial(c.sock)
	if err != nil {
		return nil, err
	}
	c.conns[f] = struct{}{}
	return f, nil
}

func (c *Client) forget(f *os.File) {
	c.mu.Lock()
	delete(c.conns, f)
	c.mu.Unlock()
	f.Close()
}

// roundTrip sends req on f and reads the response, giving up when ctx ends.
func roundTrip(ctx context.Context, f *os.File, req *request) (response, error) {
	var resp response
	stop := context.AfterFunc(ctx, func() { f.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := writeFrame(f, req)
	if err == nil {
		err = readFrame(f, &resp)
	}
	if err != nil {
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrClosed) {
			return resp, fmt.Errorf("shim %s: connection closed: %w", req.Method, errdefs.ErrUnavailable)
		}
		return resp, fmt.Errorf("shim %s: %w", req.Method, err)
	}
	if resp.Error != "" {
		return resp, decodeError(resp.Error, resp.Class)
	}
	return resp, nil
}

// call makes one call on its own connection.
func (c *Client) call(ctx context.Context, req request) (response, error) {
	f, err := c.open()
	if err != nil {
		return response{}, err
	}
	defer c.forget(f)
	return roundTrip(ctx, f, &req)
}

// stream makes an attach call and returns its connection, which lives until
// closed, ctx ends or the client is closed. It is nil when the stream does
// not exist (stderr with a terminal).
func (c *Client) stream(ctx context.Context, req request) (*stream, error) {
	f, err := c.open()
	if err != nil {
		return nil, err
	}
	resp, err := roundTrip(ctx, f, &req)
	if err != nil || resp.NoStream {
		c.forget(f)
		return nil, err
	}
	s := &stream{c: c, f: f}
	s.stop = context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

// stream is an attached stream: read the output, write the input.
type stream struct {
	c    *Client
	f    *os.File
	stop func() bool
	once sync.Once
}

func (s *stream) Read(p []byte) (int, error)  { return s.f.Read(p) }
func (s *stream) Write(p []byte) (int, error) { return s.f.Write(p) }

// Close ends the stream; for stdin the process sees EOF only with
// StdinOnce (or for an exec'd process).
func (s *stream) Close() error {
	s.once.Do(func() {
		s.stop()
		s.c.forget(s.f)
	})
	return nil
}

// Start starts the created container's process and returns its pid on
// the host (what State would say, without another round trip).
func (c *Client) Start(ctx context.Context) (int, error) {
	resp, err := c.call(ctx, request{Method: methodStart})
	if err != nil {
		return 0, err
	}
	if resp.Pid <= 0 {
		return 0, fmt.Errorf("shim start: no pid in the answer: %w", errdefs.ErrDataLoss)
	}
	return resp.Pid, nil
}

// State returns the container's state.
func (c *Client) State(ctx context.Context) (State, error) {
	resp, err := c.call(ctx, request{Method: methodState})
	if err != nil {
		return State{}, err
	}
	if resp.State == nil {
		return State{}, fmt.Errorf("shim state: empty answer: %w", errdefs.ErrDataLoss)
	}
	return *resp.State, nil
}

// Wait blocks until the container exited and its output was drained
// (returning at once if it has) and returns its exit status.
func (c *Client) Wait(ctx context.Context) (ExitStatus, error) {
	return c.wait(ctx, "")
}

func (c *Client) wait(ctx context.Context, exec string) (ExitStatus, error) {
	resp, err := c.call(ctx, request{Method: methodWait, Exec: exec})
	if err != nil {
		return ExitStatus{}, err
	}
	if resp.Exit == nil {
		return ExitStatus{}, fmt.Errorf("shim wait: empty answer: %w", errdefs.ErrDataLoss)
	}
	return *resp.Exit, nil
}

// Kill sends sig to the container's init, or with all to every process of
// the container.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := c.call(ctx, request{Method: methodKill, Signal: int(sig), All: all})
	return err
}

// Pause freezes the container.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, request{Method: methodPause})
	return err
}

// Resume thaws a paused container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, request{Method: methodResume})
	return err
}

// Resize sets the size of the container's terminal.
func (c *Client) Resize(ctx context.Context, width, height uint16) error {
	_, err := c.call(ctx, request{Method: methodResize, Width: width, Height: height})
	return err
}

// CloseStdin closes the container's stdin (with a terminal: sends ^D).
func (c *Client) CloseStdin(ctx context.Context) error {
	_, err := c.call(ctx, request{Method: methodCloseStdin})
	return err
}

// Attach connects to the container's live streams; output written before
// is only in the log. Several attachers may be attached at once; one that
// does not keep up is disconnected. The streams end when the container
// exited and its output drained (EOF), when ctx ends, when they are closed
// or the client is. With a terminal, stderr is nil: all output is on
// stdout.
func (c *Client) Attach(ctx context.Context, opts AttachOptions) (stdin io.WriteCloser, stdout, stderr io.ReadCloser, err error) {
	return c.attach(ctx, "", opts)
}

func (c *Client) attach(ctx context.Context, exec string, opts AttachOptions) (io.WriteCloser, io.ReadCloser, io.ReadCloser, error) {
	var streams [3]*stream
	for i, name := range []string{streamStdin, streamStdout, streamStderr} {
		if !(i == 0 && opts.Stdin || i == 1 && opts.Stdout || i == 2 && opts.Stderr) {
			continue
		}
		s, err := c.stream(ctx, request{Method: methodAttach, Exec: exec, Stream: name, StdinOnce: opts.StdinOnce})
		if err != nil {
			for _, o := range streams {
				if o != nil {
					o.Close()
				}
			}
			return nil, nil, nil, fmt.Errorf("attach %s: %w", name, err)
		}
		streams[i] = s
	}
	var in io.WriteCloser
	var out, errs io.ReadCloser
	if streams[0] != nil {
		in = streams[0]
	}
	if streams[1] != nil {
		out = streams[1]
	}
	if streams[2] != nil {
		errs = streams[2]
	}
	return in, out, errs, nil
}

// Exec runs spec in the container as the exec'd process id, with stdio
// copied until it exits (or ctx ends). It returns once the process runs.
func (c *Client) Exec(ctx context.Context, id string, spec *specs.Process, stdio ExecIO) (err error) {
	if spec == nil {
		return fmt.Errorf("exec %s: no process: %w", id, errdefs.ErrInvalidArgument)
	}
	if _, err := c.call(ctx, request{Method: methodExec, Exec: id, Process: spec, Stdin: stdio.Stdin != nil}); err != nil {
		return err
	}
	in, out, errs, err := c.attach(ctx, id, AttachOptions{Stdin: stdio.Stdin != nil, Stdout: stdio.Stdout != nil, Stderr: stdio.Stderr != nil})
	defer func() {
		if err != nil {
			for _, s := range []io.Closer{in, out, errs} {
				if s != nil {
					s.Close()
				}
			}
			// Forget the exec in the shim, so that the id is free again.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			c.call(dctx, request{Method: methodExecDelete, Exec: id})
			cancel()
		}
	}()
	if err != nil {
		return err
	}
	if _, err = c.call(ctx, request{Method: methodExecStart, Exec: id}); err != nil {
		return err
	}
	wg := &sync.WaitGroup{}
	copyOut := func(w io.Writer, r io.ReadCloser) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(w, r)
			r.Close()
		}()
	}
	if out != nil {
		copyOut(stdio.Stdout, out)
	}
	if errs != nil {
		copyOut(stdio.Stderr, errs)
	}
	if in != nil {
		go func() {
			io.Copy(in, stdio.Stdin)
			in.Close()
		}()
	}
	c.mu.Lock()
	c.execIO[id] = wg
	c.mu.Unlock()
	return nil
}

// ExecState returns the state of the exec'd process id.
func (c *Client) ExecState(ctx context.Context, id string) (ExecState, error) {
	resp, err := c.call(ctx, request{Method: methodExecState, Exec: id})
	if err != nil {
		return ExecState{}, err
	}
	if resp.ExecState == nil {
		return ExecState{}, fmt.Errorf("shim exec state: empty answer: %w", errdefs.ErrDataLoss)
	}
	return *resp.ExecState, nil
}

// ExecWait blocks until the exec'd process id exited and, if this client
// started it, its output was copied out; it returns its exit status.
func (c *Client) ExecWait(ctx context.Context, id string) (ExitStatus, error) {
	if id == "" {
		return ExitStatus{}, fmt.Errorf("no exec id given: %w", errdefs.ErrInvalidArgument)
	}
	exit, err := c.wait(ctx, id)
	if err != nil {
		return exit, err
	}
	c.mu.Lock()
	wg := c.execIO[id]
	delete(c.execIO, id)
	c.mu.Unlock()
	if wg != nil {
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			return exit, ctx.Err()
		}
	}
	return exit, nil
}

// ExecResize sets the size of the exec'd process's terminal.
func (c *Client) ExecResize(ctx context.Context, id string, width, height uint16) error {
	if id == "" {
		return fmt.Errorf("no exec id given: %w", errdefs.ErrInvalidArgument)
	}
	_, err := c.call(ctx, request{Method: methodResize, Exec: id, Width: width, Height: height})
	return err
}

// ExecKill sends sig to the exec'd process id.
func (c *Client) ExecKill(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := c.call(ctx, request{Method: methodExecKill, Exec: id, Signal: int(sig)})
	return err
}

// ExecDelete forgets the exec'd process id, which has exited or was never
// started; its id can then be used again.
func (c *Client) ExecDelete(ctx context.Context, id string) error {
	_, err := c.call(ctx, request{Method: methodExecDelete, Exec: id})
	return err
}

// Delete removes the container with the runtime (a created one is killed
// first; a running one is a conflict: kill it and Wait) and returns its
// exit status. The shim then exits and removes its socket; Delete returns
// once it is gone. exit.json stays in the state dir.
func (c *Client) Delete(ctx context.Context) (ExitStatus, error) {
	wait, release := c.watchShim()
	resp, err := c.call(ctx, request{Method: methodDelete})
	if err == nil && resp.Exit == nil {
		err = fmt.Errorf("shim delete: empty answer: %w", errdefs.ErrDataLoss)
	}
	if err != nil {
		release()
		return ExitStatus{}, err
	}
	return *resp.Exit, wait(ctx)
}
