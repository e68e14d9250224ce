package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/logfile"
	"github.com/berth-project/berth/internal/shim"
)

// ContainerLogs calls fn for each log entry of ref per opts and reports
// whether the container has a TTY (its output is then one stream). With
// Follow it returns when the container's run ends and its log is drained,
// or when ctx ends.
func (d *Daemon) ContainerLogs(ctx context.Context, ref string, opts LogsOptions, fn func(LogEntry) error) (bool, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	c := e.c
	tty := c.Config.Tty
	path := c.LogPath
	lc := c.HostConfig.LogConfig
	done := e.runDone
	e.mu.Unlock()
	if path == "" {
		return tty, fmt.Errorf("configured logging driver does not support reading: %w", errdefs.ErrNotImplemented)
	}
	if done == nil {
		closed := make(chan struct{})
		close(closed)
		done = closed
	}
	_, maxFile, _ := logRotation(lc)
	err = logfile.Read(ctx, path, maxFile, logfile.ReadOptions{
		Since: opts.Since, Until: opts.Until, Tail: opts.Tail, Follow: opts.Follow, Done: done,
	}, func(m logfile.Message) error {
		if m.Stream == "stdout" && !opts.Stdout || m.Stream == "stderr" && !opts.Stderr {
			return nil
		}
		return fn(LogEntry{Stream: m.Stream, Line: m.Line, Time: m.Time})
	})
	return tty, err
}

// AttachContainer connects the client's streams to ref's (see
// AttachOptions). Attaching to a container that is not running waits for
// its next start.
func (d *Daemon) AttachContainer(ctx context.Context, ref string, opts AttachOptions) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.mu.Lock()
	tty, openStdin, stdinOnce := e.c.Config.Tty, e.c.Config.OpenStdin, e.c.Config.StdinOnce
	e.mu.Unlock()
	attached := func() {
		if opts.Attached != nil {
			opts.Attached()
		}
	}
	replay := func() error {
		if opts.Logs {
			_, err := d.ContainerLogs(ctx, ref, LogsOptions{Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil, Tail: -1}, func(l LogEntry) error {
				w := opts.Stdout
				if l.Stream == "stderr" && !tty {
					w = opts.Stderr
				}
				if w == nil {
					return nil
				}
				_, err := w.Write(l.Line)
				return err
			})
			if err != nil && !errdefs.IsNotImplemented(err) {
				return err
			}
		}
		return nil
	}
	if !opts.Stream {
		attached()
		if err := replay(); err != nil {
			return err
		}
		d.publishAttach(e)
		return nil
	}
	keys, err := parseDetachKeys(opts.DetachKeys)
	if err != nil {
		return err
	}
	if !tty {
		keys = nil // Docker honours detach keys only with a TTY
	}
	aopts := shim.AttachOptions{
		Stdin:  opts.Stdin != nil && openStdin,
		Stdout: opts.Stdout != nil,
		Stderr: opts.Stderr != nil && !tty,
		// With a TTY, the client's EOF must not close the container's
		// stdin (a detach would end `run -it`), as in Docker.
		StdinOnce: stdinOnce && !tty,
	}
	type streams struct {
		in       io.WriteCloser
		out, err io.ReadCloser
		e        error
	}
	got := make(chan streams, 1)
	attach := func(cl *shim.Client) {
		in, out, errOut, err := cl.Attach(ctx, aopts)
		got <- streams{in, out, errOut, err}
	}
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return noSuchContainer(ref)
	}
	// Told before the stream opens, so before docker run's start.
	d.publishContainer("attach", e.c, nil)
	if e.shim != nil && e.c.State.Running() {
		cl := e.shim
		e.mu.Unlock()
		attach(cl)
	} else {
		e.attachers = append(e.attachers, attach)
		e.mu.Unlock()
	}
	attached()
	if err := replay(); err != nil {
		return err
	}
	var s streams
	select {
	case s = <-got:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.e != nil {
		return fmt.Errorf("attach %s: %w", ref, s.e)
	}
	return pipeStreams(ctx, s.in, s.out, s.err, opts.Stdin, opts.Stdout, opts.Stderr, keys)
}

// publishAttach tells an attach as Docker does: every attach request
// that gets its streams (or its log replay) is an "attach" event.
func (d *Daemon) publishAttach(e *ctrEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d.publishContainer("attach", e.c, nil)
}

// pipeStreams copies the container's output to the client until it ends,
// and the client's input to the container until it ends or holds the
// detach keys (ErrDetached).
func pipeStreams(ctx context.Context, in io.WriteCloser, out, errOut io.ReadCloser, stdin io.Reader, stdout, stderr io.Writer, keys []byte) error {
	var wg sync.WaitGroup
	copyOut := func(dst io.Writer, src io.ReadCloser) {
		defer wg.Done()
		if src == nil {
			return
		}
		io.Copy(dst, src)
	}
	wg.Add(2)
	go copyOut(stdout, out)
	go copyOut(stderr, errOut)
	outDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(outDone)
	}()
	detached := make(chan struct{})
	if in != nil && stdin != nil {
		go func() {
			err := copyDetachable(in, stdin, keys)
			if errors.Is(err, ErrDetached) {
				close(detached)
				return
			}
			in.Close()
		}()
	}
	closeAll := func() {
		for _, c := range []io.Closer{in, out, errOut} {
			if c != nil {
				c.Close()
			}
		}
	}
	select {
	case <-outDone:
		if in != nil {
			in.Close()
		}
		return nil
	case <-detached:
		closeAll()
		<-outDone
		return ErrDetached
	case <-ctx.Done():
		closeAll()
		<-outDone
		return ctx.Err()
	}
}

// defaultDetachKeys is ctrl-p, ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// parseDetachKeys parses Docker's detach key list: "ctrl-p,ctrl-q", "a",
// "ctrl-@" ... ("" is the default).
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return defaultDetachKeys, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, badDetachKeys(s)
			}
		default:
			return nil, badDetachKeys(s)
		}
	}
	return out, nil
}

// copyDetachable copies src to dst until EOF (nil) or until src holds the
// detach key sequence (ErrDetached). Bytes that start a sequence but do not
// complete it are passed on.
func copyDetachable(dst io.Writer, src io.Reader, keys []byte) error {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			var pass bytes.Buffer
			for _, b := range buf[:n] {
				if len(keys) > 0 && b == keys[matched] {
					matched++
					if matched == len(keys) {
						if pass.Len() > 0 {
							dst.Write(pass.Bytes())
						}
						return ErrDetached
					}
					continue
				}
				if matched > 0 {
					pass.Write(keys[:matched])
					matched = 0
					if b == keys[0] {
						matched = 1
						continue
					}
				}
				pass.WriteByte(b)
			}
			if pass.Len() > 0 {
				if _, werr := dst.Write(pass.Bytes()); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// ResizeContainer sets the size of a running container's TTY.
func (d *Daemon) ResizeContainer(ctx context.Context, ref string, height, width uint) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.mu.Lock()
	cl := e.shim
	running := e.c.State.Running()
	id := e.c.ID
	e.mu.Unlock()
	if cl == nil || !running {
		return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrConflict)
	}
	return cl.Resize(ctx, uint16(width), uint16(height))
}

func badDetachKeys(s string) error {
	//lint:ignore ST1005 Docker's wording
	return fmt.Errorf("Invalid escape keys (%s) provided: %w", s, errdefs.ErrInvalidArgument)
}
