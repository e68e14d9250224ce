package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/moby/term"
	"golang.org/x/sys/unix"
)

// DefaultDetachKeys is the key sequence that detaches from a container.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// errDetached says the user typed the detach keys.
var errDetached = errors.New("detached")

// streamOptions say how an attached stream is wired to the terminal.
type streamOptions struct {
	tty        bool
	stdin      bool // copy our stdin to the container
	detachKeys string
}

// detachKeys is the configured detach sequence: the flag, config.json's
// detachKeys, or ctrl-p,ctrl-q.
func (c *CLI) detachKeys(flag string) string {
	if flag != "" {
		return flag
	}
	if cf, err := c.ConfigFile(); err == nil && cf.DetachKeys != "" {
		return cf.DetachKeys
	}
	return DefaultDetachKeys
}

// stream copies between our stdio and a hijacked connection until the
// container's output ends (nil), the user detaches (errDetached), ctx ends
// or the connection fails. A TTY puts our terminal in raw mode meanwhile.
func (c *CLI) stream(ctx context.Context, resp client.HijackedResponse, o streamOptions) error {
	if o.tty && o.stdin {
		if err := c.In.SetRawTerminal(); err != nil {
			return fmt.Errorf("set terminal raw: %w", err)
		}
		defer c.In.RestoreTerminal()
	}
	if o.tty && c.Out.IsTerminal() {
		if err := c.Out.SetRawTerminal(); err == nil {
			defer c.Out.RestoreTerminal()
		}
	}

	outDone := make(chan error, 1)
	go func() {
		var err error
		if o.tty {
			_, err = io.Copy(c.Out, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(c.Out, c.Err, resp.Reader)
		}
		outDone <- err
	}()

	inDone := make(chan error, 1)
	if o.stdin {
		go func() {
			var in io.Reader = c.In
			if o.tty {
				keys, err := term.ToBytes(o.detachKeys)
				if err != nil {
					inDone <- fmt.Errorf("invalid detach keys (%s) provided", o.detachKeys)
					return
				}
				in = term.NewEscapeProxy(c.In, keys)
			}
			_, err := io.Copy(resp.Conn, in)
			var esc term.EscapeError
			if errors.As(err, &esc) {
				inDone <- errDetached
				return
			}
			resp.CloseWrite()
			inDone <- nil
		}()
	}

	for {
		select {
		case err := <-outDone:
			if err != nil {
				return fmt.Errorf("read container output: %w", err)
			}
			return nil
		case err := <-inDone:
			inDone = nil
			if err != nil {
				return err
			}
			// Our stdin ended: the container sees EOF; keep its output.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resizer keeps a container's (or exec's) TTY the size of our terminal.
type resizer func(ctx context.Context, height, width uint) error

// monitorTTYSize resizes once now and on every SIGWINCH until ctx ends.
func (c *CLI) monitorTTYSize(ctx context.Context, resize resizer) {
	if !c.Out.IsTerminal() {
		return
	}
	do := func() {
		h, w := c.Out.Size()
		if h == 0 && w == 0 {
			return
		}
		if err := resize(ctx, h, w); err != nil {
			c.log.Debug("resize tty", "error", err)
		}
	}
	do()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				do()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// proxySignals forwards the signals we receive to the container until
// ctx ends, as docker run --sig-proxy does.
func (c *CLI) proxySignals(ctx context.Context, id string) {
	ch := make(chan os.Signal, 128)
	signal.Notify(ch)
	go func() {
		defer signal.Stop(ch)
		cl, err := c.Client()
		if err != nil {
			return
		}
		for {
			select {
			case s := <-ch:
				sig, ok := s.(unix.Signal)
				if !ok {
					continue
				}
				switch sig {
				case unix.SIGCHLD, unix.SIGPIPE, unix.SIGURG, unix.SIGWINCH:
					continue
				}
				name := unix.SignalName(sig)
				if name == "" {
					name = fmt.Sprint(int(sig))
				}
				if _, err := cl.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: name}); err != nil {
					c.log.Debug("forward signal", "signal", name, "error", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}
