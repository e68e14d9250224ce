package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/cli/opts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// forEach runs fn on every argument, printing each argument that
// succeeded (as docker does for stop, rm, pause...) and each error; any
// failure makes the command exit 1.
func (c *CLI) forEach(ctx context.Context, args []string, print bool, fn func(ctx context.Context, cl *client.Client, arg string) error) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	var failed bool
	for _, arg := range args {
		if err := fn(ctx, cl, arg); err != nil {
			err = c.daemonError(err)
			var ce *connError
			if errors.As(err, &ce) {
				return err
			}
			fmt.Fprintln(c.Err, err)
			failed = true
			continue
		}
		if print {
			fmt.Fprintln(c.Out, arg)
		}
	}
	if failed {
		return &StatusError{StatusCode: 1}
	}
	return nil
}

// StopOptions are the options of stop and restart.
type StopOptions struct {
	Signal     string
	Timeout    int
	TimeoutSet bool
	Containers []string
}

func (o StopOptions) timeout() *int {
	if !o.TimeoutSet {
		return nil
	}
	t := o.Timeout
	return &t
}

// Stop stops containers.
func (c *CLI) Stop(ctx context.Context, o StopOptions) error {
	return c.forEach(ctx, o.Containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		_, err := cl.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: o.Signal, Timeout: o.timeout()})
		return err
	})
}

// Restart restarts containers.
func (c *CLI) Restart(ctx context.Context, o StopOptions) error {
	return c.forEach(ctx, o.Containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		_, err := cl.ContainerRestart(ctx, id, client.ContainerRestartOptions{Signal: o.Signal, Timeout: o.timeout()})
		return err
	})
}

// KillOptions are the options of kill.
type KillOptions struct {
	Signal     string
	Containers []string
}

// Kill sends a signal to containers.
func (c *CLI) Kill(ctx context.Context, o KillOptions) error {
	return c.forEach(ctx, o.Containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		_, err := cl.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: o.Signal})
		return err
	})
}

// Pause pauses containers.
func (c *CLI) Pause(ctx context.Context, containers []string) error {
	return c.forEach(ctx, containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		_, err := cl.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
}

// Unpause unpauses containers.
func (c *CLI) Unpause(ctx context.Context, containers []string) error {
	return c.forEach(ctx, containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		_, err := cl.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

// RmOptions are the options of rm.
type RmOptions struct {
	Force, Volumes, Link bool
	Containers           []string
}

// Rm removes containers.
func (c *CLI) Rm(ctx context.Context, o RmOptions) error {
	return c.forEach(ctx, o.Containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		id = strings.Trim(id, "/")
		if id == "" {
			return errors.New("container name cannot be empty")
		}
		_, err := cl.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: o.Force, RemoveVolumes: o.Volumes, RemoveLinks: o.Link})
		return err
	})
}

// Rename renames a container.
func (c *CLI) Rename(ctx context.Context, oldName, newName string) error {
	oldName, newName = strings.TrimSpace(oldName), strings.TrimSpace(newName)
	if oldName == "" || newName == "" {
		return errors.New("Error: Neither old nor new names may be empty")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if _, err := cl.ContainerRename(ctx, oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
		return fmt.Errorf("Error: failed to rename container named %s: %w", oldName, c.daemonError(err))
	}
	return nil
}

// WaitContainers blocks until containers stop and prints their exit codes.
func (c *CLI) WaitContainers(ctx context.Context, containers []string) error {
	return c.forEach(ctx, containers, false, func(ctx context.Context, cl *client.Client, id string) error {
		w := cl.ContainerWait(ctx, id, client.ContainerWaitOptions{})
		select {
		case r := <-w.Result:
			if r.Error != nil {
				return errors.New(r.Error.Message)
			}
			fmt.Fprintln(c.Out, r.StatusCode)
			return nil
		case err := <-w.Error:
			return err
		}
	})
}

// UpdateOptions are the options of update.
type UpdateOptions struct {
	BlkioWeight               uint16
	CPUPeriod, CPUQuota       int64
	CPURtPeriod, CPURtRuntime int64
	CPUShares                 int64
	CPUs                      opts.NanoCPUs
	CpusetCpus, CpusetMems    string
	Memory, MemoryReservation opts.MemBytes
	MemorySwap                opts.MemSwapBytes
	PidsLimit                 int64
	PidsLimitSet              bool
	Restart                   string
	Containers                []string
	anySet                    bool
}

// SetChanged records whether any flag was given: update without one is
// an error, as in docker.
func (o *UpdateOptions) SetChanged(b bool) { o.anySet = b }

// Update changes containers' resources or restart policy.
func (c *CLI) Update(ctx context.Context, o UpdateOptions) error {
	if !o.anySet {
		return errors.New("you must provide one or more flags when using this command")
	}
	res := &container.Resources{BlkioWeight: o.BlkioWeight, CPUPeriod: o.CPUPeriod, CPUQuota: o.CPUQuota,
		CPURealtimePeriod: o.CPURtPeriod, CPURealtimeRuntime: o.CPURtRuntime, CPUShares: o.CPUShares,
		NanoCPUs: o.CPUs.Value(), CpusetCpus: o.CpusetCpus, CpusetMems: o.CpusetMems, Memory: o.Memory.Value(),
		MemoryReservation: o.MemoryReservation.Value(), MemorySwap: o.MemorySwap.Value()}
	if o.PidsLimitSet {
		p := o.PidsLimit
		res.PidsLimit = &p
	}
	var restart *container.RestartPolicy
	if o.Restart != "" {
		rp, err := opts.ParseRestartPolicy(o.Restart)
		if err != nil {
			return err
		}
		restart = &rp
	}
	return c.forEach(ctx, o.Containers, true, func(ctx context.Context, cl *client.Client, id string) error {
		r, err := cl.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: res, RestartPolicy: restart})
		for _, w := range r.Warnings {
			fmt.Fprintln(c.Err, w)
		}
		return err
	})
}

// CommitOptions are the options of commit.
type CommitOptions struct {
	Container, Reference string
	Author, Message      string
	Changes              []string
	Pause                bool
}

// Commit makes an image from a container's changes and prints its ID.
func (c *CLI) Commit(ctx context.Context, o CommitOptions) error {
	if o.Reference != "" {
		if _, err := parseRef(o.Reference); err != nil {
			return err
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerCommit(ctx, o.Container, client.ContainerCommitOptions{Reference: o.Reference,
		Comment: o.Message, Author: o.Author, Changes: o.Changes, NoPause: !o.Pause})
	if err != nil {
		return c.daemonError(err)
	}
	fmt.Fprintln(c.Out, res.ID)
	return nil
}

// ExportOptions are the options of export.
type ExportOptions struct {
	Container string
	Output    string
}

// Export writes a container's filesystem as a tar archive.
func (c *CLI) Export(ctx context.Context, o ExportOptions) error {
	if o.Output == "" && c.Out.IsTerminal() {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	rc, err := cl.ContainerExport(ctx, o.Container, client.ContainerExportOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	defer rc.Close()
	return c.writeOutput(rc, o.Output, "export")
}

// writeOutput copies r to the file (written to a temporary name and
// renamed when complete) or to stdout.
func (c *CLI) writeOutput(r io.Reader, path, what string) error {
	if path == "" {
		if _, err := io.Copy(c.Out, r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	f, err := os.CreateTemp(dirOf(path), ".berth-"+what+"-")
	if err != nil {
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return path[:i]
	}
	return "."
}

// confirm asks a yes/no question on the terminal; no answer is no.
func (c *CLI) confirm(ctx context.Context, message string) bool {
	fmt.Fprintf(c.Out, "%s\nAre you sure you want to continue? [y/N] ", message)
	line, _ := bufio.NewReader(c.In).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}
