package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/cli/opts"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// StartOptions are the options of start.
type StartOptions struct {
	Attach, Interactive bool
	DetachKeys          string
	Checkpoint          string
	CheckpointDir       string
	Containers          []string
}

// Start starts containers; with -a or -i it attaches to the one container
// and ends with its exit status.
func (c *CLI) Start(ctx context.Context, o StartOptions) error {
	if !o.Attach && !o.Interactive {
		var failed []string
		err := c.forEach(ctx, o.Containers, true, func(ctx context.Context, cl *client.Client, id string) error {
			_, err := cl.ContainerStart(ctx, id, client.ContainerStartOptions{CheckpointID: o.Checkpoint, CheckpointDir: o.CheckpointDir})
			if err != nil {
				failed = append(failed, id)
			}
			return err
		})
		if len(failed) > 0 {
			return &StatusError{StatusCode: 1, Status: "Error: failed to start containers: " + strings.Join(failed, ", ")}
		}
		return err
	}
	if len(o.Containers) > 1 {
		return errors.New("you cannot start and attach multiple containers at once")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	insp, err := cl.ContainerInspect(ctx, o.Containers[0], client.ContainerInspectOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	ctr := insp.Container
	cfg := ctr.Config
	stdin := o.Interactive && cfg.OpenStdin
	keys := c.detachKeys(o.DetachKeys)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := cl.ContainerAttach(runCtx, ctr.ID, client.ContainerAttachOptions{Stream: true, Stdin: stdin,
		Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: keys})
	if err != nil {
		return c.daemonError(err)
	}
	defer res.Close()
	wait := cl.ContainerWait(runCtx, ctr.ID, client.ContainerWaitOptions{Condition: "next-exit"})
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- c.stream(runCtx, res.HijackedResponse, streamOptions{tty: cfg.Tty, stdin: stdin, detachKeys: keys})
	}()
	if !cfg.Tty {
		c.proxySignals(runCtx, ctr.ID)
	}
	if _, err := cl.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{CheckpointID: o.Checkpoint, CheckpointDir: o.CheckpointDir}); err != nil {
		cancel()
		res.Close()
		<-streamDone
		return startError(c.daemonError(err))
	}
	if cfg.Tty && c.Out.IsTerminal() {
		c.monitorTTYSize(runCtx, func(ctx context.Context, h, w uint) error {
			_, err := cl.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := <-streamDone; err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	return c.waitStatus(wait)
}

// AttachOptions are the options of attach.
type AttachOptions struct {
	Container  string
	NoStdin    bool
	SigProxy   bool
	DetachKeys string
}

// Attach connects our stdio to a running container's and ends with its
// exit status.
func (c *CLI) Attach(ctx context.Context, o AttachOptions) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	insp, err := cl.ContainerInspect(ctx, o.Container, client.ContainerInspectOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	ctr := insp.Container
	if ctr.State == nil || !ctr.State.Running {
		//lint:ignore ST1005 Docker's wording
		return errors.New("You cannot attach to a stopped container, start it first")
	}
	if ctr.State.Paused {
		//lint:ignore ST1005 Docker's wording
		return errors.New("You cannot attach to a paused container, unpause it first")
	}
	if ctr.State.Restarting {
		//lint:ignore ST1005 Docker's wording
		return errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	stdin := !o.NoStdin && ctr.Config.OpenStdin
	if stdin && ctr.Config.Tty && !c.In.IsTerminal() {
		return errors.New("the input device is not a TTY")
	}
	keys := c.detachKeys(o.DetachKeys)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait := cl.ContainerWait(runCtx, ctr.ID, client.ContainerWaitOptions{})
	res, err := cl.ContainerAttach(runCtx, ctr.ID, client.ContainerAttachOptions{Stream: true, Stdin: stdin,
		Stdout: true, Stderr: true, DetachKeys: keys})
	if err != nil {
		return c.daemonError(err)
	}
	defer res.Close()
	if ctr.Config.Tty && c.Out.IsTerminal() {
		c.monitorTTYSize(runCtx, func(ctx context.Context, h, w uint) error {
			_, err := cl.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if o.SigProxy && !ctr.Config.Tty {
		c.proxySignals(runCtx, ctr.ID)
	}
	if err := c.stream(runCtx, res.HijackedResponse, streamOptions{tty: ctr.Config.Tty, stdin: stdin, detachKeys: keys}); err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	return c.waitStatus(wait)
}

// ExecOptions are the options of exec.
type ExecOptions struct {
	Detach, Interactive, TTY, Privileged bool
	DetachKeys, User, Workdir            string
	Env, EnvFile                         opts.ListOpts
	Container                            string
	Command                              []string
}

// NewExecOptions returns exec options with docker's defaults.
func NewExecOptions() *ExecOptions {
	return &ExecOptions{Env: opts.NewListOpts(opts.ValidateEnv), EnvFile: opts.NewListOpts(nil)}
}

// Exec runs a command in a running container and ends with its exit
// status.
func (c *CLI) Exec(ctx context.Context, o *ExecOptions) error {
	env, err := opts.ReadKVEnvStrings(o.EnvFile.GetSlice(), o.Env.GetSlice())
	if err != nil {
		return err
	}
	if o.Interactive && o.TTY && !o.Detach && !c.In.IsTerminal() {
		return errors.New("the input device is not a TTY")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	keys := c.detachKeys(o.DetachKeys)
	create := client.ExecCreateOptions{User: o.User, Privileged: o.Privileged, TTY: o.TTY, Env: env,
		WorkingDir: o.Workdir, Cmd: o.Command, DetachKeys: keys}
	if !o.Detach {
		create.AttachStdin, create.AttachStdout, create.AttachStderr = o.Interactive, true, true
	}
	if o.TTY {
		h, w := c.Out.Size()
		create.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	ex, err := cl.ExecCreate(ctx, o.Container, create)
	if err != nil {
		return c.daemonError(err)
	}
	if o.Detach {
		_, err := cl.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true, TTY: o.TTY, ConsoleSize: create.ConsoleSize})
		return c.daemonError(err)
	}
	res, err := cl.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: o.TTY, ConsoleSize: create.ConsoleSize})
	if err != nil {
		return c.daemonError(err)
	}
	defer res.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.TTY && c.Out.IsTerminal() {
		c.monitorTTYSize(runCtx, func(ctx context.Context, h, w uint) error {
			_, err := cl.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := c.stream(runCtx, res.HijackedResponse, streamOptions{tty: o.TTY, stdin: o.Interactive, detachKeys: keys}); err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	insp, err := cl.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	if insp.ExitCode != 0 {
		return &StatusError{StatusCode: insp.ExitCode}
	}
	return nil
}

// LogsOptions are the options of logs.
type LogsOptions struct {
	Container                   string
	Follow, Timestamps, Details bool
	Since, Until, Tail          string
}

// Logs prints a container's logs, following them with -f.
func (c *CLI) Logs(ctx context.Context, o LogsOptions) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	insp, err := cl.ContainerInspect(ctx, o.Container, client.ContainerInspectOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	rc, err := cl.ContainerLogs(ctx, insp.Container.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true,
		Since: o.Since, Until: o.Until, Timestamps: o.Timestamps, Follow: o.Follow, Tail: o.Tail, Details: o.Details})
	if err != nil {
		return c.daemonError(err)
	}
	defer rc.Close()
	if insp.Container.Config != nil && insp.Container.Config.Tty {
		_, err = io.Copy(c.Out, rc)
	} else {
		_, err = stdcopy.StdCopy(c.Out, c.Err, rc)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs of %s: %w", o.Container, c.daemonError(err))
	}
	return nil
}
