package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/term"
)

// RunOptions are the options of berth run: those of create plus how to
// attach.
type RunOptions struct {
	*ContainerOptions
	Detach     bool
	DetachKeys string
	SigProxy   bool
}

// Create creates a container and prints its ID.
func (c *CLI) Create(ctx context.Context, o *ContainerOptions) error {
	cc, err := o.Parse()
	if err != nil {
		return err
	}
	id, err := c.createContainer(ctx, o, cc)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.Out, id)
	return nil
}

// createContainer creates the container, pulling its image first when the
// pull policy says so, and writes --cidfile.
func (c *CLI) createContainer(ctx context.Context, o *ContainerOptions, cc *ContainerConfig) (string, error) {
	cl, err := c.Client()
	if err != nil {
		return "", err
	}
	var cidFile *os.File
	if o.CIDFile != "" {
		if _, err := os.Stat(o.CIDFile); err == nil {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.CIDFile)
		}
		cidFile, err = os.Create(o.CIDFile)
		if err != nil {
			return "", fmt.Errorf("failed to create the container ID file: %w", err)
		}
		defer cidFile.Close()
	}
	fail := func(err error) (string, error) {
		if cidFile != nil {
			cidFile.Close()
			os.Remove(o.CIDFile)
		}
		return "", err
	}
	named, err := parseRef(o.Image)
	if err != nil {
		return fail(err)
	}
	ref := o.Image
	if _, isDigest := named.(reference.Digested); !isDigest && !strings.HasPrefix(o.Image, "sha256:") {
		ref = reference.FamiliarString(reference.TagNameOnly(named))
	}
	pull := func() error {
		var out io.Writer = c.Err
		if o.Quiet {
			out = io.Discard
		}
		return c.pullImage(ctx, reference.TagNameOnly(named).String(), false, cc.Platform, out, c.Err.IsTerminal() && !o.Quiet)
	}
	if o.Pull == PullAlways {
		if err := pull(); err != nil {
			return fail(err)
		}
	}
	create := func() (client.ContainerCreateResult, error) {
		return cl.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cc.Config, HostConfig: cc.HostConfig,
			NetworkingConfig: cc.Network, Platform: cc.Platform, Name: o.Name})
	}
	res, err := create()
	if err != nil && cerrdefs.IsNotFound(err) && isImageNotFound(err) && o.Pull == PullMissing {
		fmt.Fprintf(c.Err, "Unable to find image '%s' locally\n", ref)
		if err := pull(); err != nil {
			return fail(err)
		}
		res, err = create()
	}
	if err != nil {
		return fail(c.daemonError(err))
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.Err, "WARNING: %s\n", w)
	}
	if cidFile != nil {
		if _, err := cidFile.WriteString(res.ID); err != nil {
			return "", fmt.Errorf("failed to write the container ID to the file: %w", err)
		}
	}
	return res.ID, nil
}

// isImageNotFound tells a missing image from another missing thing (a
// network, a volume-from container) in a create error.
func isImageNotFound(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "no such image") || strings.Contains(s, "image") && strings.Contains(s, "not found")
}

// Run creates and starts a container; unless detached it attaches to it,
// waits for it, and returns its exit status as a StatusError.
func (c *CLI) Run(ctx context.Context, o *RunOptions) error {
	if o.Detach && o.Attach.Len() > 0 {
		return &StatusError{StatusCode: 125, Status: "Conflicting options: -a and -d"}
	}
	cc, err := o.Parse()
	if err != nil {
		return &StatusError{StatusCode: 125, Cause: err}
	}
	cfg := cc.Config
	if o.Detach {
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = false, false, false
		cfg.StdinOnce = false
	} else if cfg.AttachStdin && cfg.OpenStdin {
		cfg.StdinOnce = true
	}
	if cfg.AttachStdin && cfg.Tty && !c.In.IsTerminal() {
		return &StatusError{StatusCode: 125, Status: "the input device is not a TTY"}
	}
	if cfg.Tty && c.Out.IsTerminal() {
		h, w := c.Out.Size()
		cc.HostConfig.ConsoleSize = [2]uint{h, w}
	}
	detachKeys := c.detachKeys(o.DetachKeys)
	if _, err := term.ToBytes(detachKeys); err != nil {
		return &StatusError{StatusCode: 125, Status: fmt.Sprintf("invalid detach keys (%s) provided", detachKeys)}
	}

	id, err := c.createContainer(ctx, o.ContainerOptions, cc)
	if err != nil {
		return &StatusError{StatusCode: 125, Cause: err}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if o.Detach {
		if _, err := cl.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return startError(c.daemonError(err))
		}
		fmt.Fprintln(c.Out, id)
		return nil
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var attach *client.ContainerAttachResult
	if cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr {
		res, err := cl.ContainerAttach(runCtx, id, client.ContainerAttachOptions{Stream: true,
			Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: detachKeys})
		if err != nil {
			return &StatusError{StatusCode: 125, Cause: c.daemonError(err)}
		}
		defer res.Close()
		attach = &res
	}
	cond := container.WaitConditionNextExit
	if o.AutoRemove {
		cond = container.WaitConditionRemoved
	}
	wait := cl.ContainerWait(runCtx, id, client.ContainerWaitOptions{Condition: cond})

	streamDone := make(chan error, 1)
	if attach != nil {
		go func() {
			streamDone <- c.stream(runCtx, attach.HijackedResponse, streamOptions{tty: cfg.Tty, stdin: cfg.AttachStdin, detachKeys: detachKeys})
		}()
	}
	// Catch signals before the start, so that none sent once the
	// container runs can end berth instead of reaching the container.
	if o.SigProxy && !cfg.Tty {
		c.proxySignals(runCtx, id)
	}
	if _, err := cl.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		cancel()
		if attach != nil {
			attach.Close()
			<-streamDone
		}
		return startError(c.daemonError(err))
	}
	if cfg.Tty && c.Out.IsTerminal() {
		c.monitorTTYSize(runCtx, func(ctx context.Context, h, w uint) error {
			_, err := cl.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if attach != nil {
		if err := <-streamDone; err != nil {
			if errors.Is(err, errDetached) {
				return nil
			}
			return fmt.Errorf("attach %s: %w", shortID(id), c.daemonError(err))
		}
	}
	return c.waitStatus(wait)
}

// waitStatus turns a wait result into the command's exit status.
func (c *CLI) waitStatus(wait client.ContainerWaitResult) error {
	select {
	case r := <-wait.Result:
		if r.Error != nil {
			return &StatusError{StatusCode: 125, Status: "Error waiting for container: " + r.Error.Message}
		}
		if r.StatusCode != 0 {
			return &StatusError{StatusCode: int(r.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return &StatusError{StatusCode: 125, Status: "Error waiting for container: " + c.daemonError(err).Error()}
	}
}

// startError classifies a failed start as docker does: 127 when the
// command was not found, 126 when it could not be invoked, else 125.
func startError(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory"):
		code = 126
	}
	return &StatusError{StatusCode: code, Cause: err}
}
