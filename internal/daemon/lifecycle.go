package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	api "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/shim"
	"github.com/berth-project/berth/internal/snapshot"
)

// startTimeout bounds a container's start when the client went away: the
// start goes on without the client, but not forever.
const startTimeout = 2 * time.Minute

// defaultStopTimeout is Docker's grace period before SIGKILL.
const defaultStopTimeout = 10

// StartContainer starts a created or stopped container. Starting a running
// one is ErrNotModified. A container made with auto-remove that fails to
// start is removed, as Docker does (its waiters see it go).
func (d *Daemon) StartContainer(ctx context.Context, ref string) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	autoRemove, err := d.start(ctx, e, ref)
	if err != nil && autoRemove {
		e.mu.Lock()
		id := e.c.ID
		e.mu.Unlock()
		if rerr := d.RemoveContainer(context.WithoutCancel(ctx), id, RemoveContainerOptions{Force: true, Volumes: true}); rerr != nil && !errdefs.IsNotFound(rerr) {
			log.G(ctx).Warn("remove container after its failed start", "container", id, "error", rerr)
		}
	}
	return err
}

// start is StartContainer under e's locks; it reports whether the
// container auto-removes.
func (d *Daemon) start(ctx context.Context, e *ctrEntry, ref string) (bool, error) {
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return false, noSuchContainer(ref)
	}
	autoRemove := e.c.HostConfig.AutoRemove
	switch e.c.State.Status {
	case api.StateRunning:
		return false, fmt.Errorf("container %s is already running: %w", e.c.ID, errdefs.ErrNotModified)
	case api.StatePaused:
		return false, fmt.Errorf("cannot start a paused container, try unpause instead: %w", errdefs.ErrConflict)
	case api.StateRemoving, api.StateDead:
		return false, fmt.Errorf("container is marked for removal and cannot be started: %w", errdefs.ErrConflict)
	case api.StateRestarting:
		e.cancelRestart()
	}
	e.c.ManuallyStopped = false
	e.c.RestartCount = 0
	return autoRemove, d.startLocked(ctx, e)
}

// startLocked mounts the container's root, sets up its network and mounts,
// writes its spec and starts its shim. e.op and e.mu are held. On failure
// everything made is undone and the error is recorded in the state.
func (d *Daemon) startLocked(ctx context.Context, e *ctrEntry) (err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	c := e.c
	bundle := d.bundleDir(c.ID)
	rootfs := filepath.Join(bundle, "rootfs")
	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		c.State.Error = errdefs.Message(err)
		c.State.ExitCode = startFailureCode(err)
		if c.HasBeenStarted {
			c.State.Status = api.StateExited
		}
		if serr := d.save(e); serr != nil {
			log.G(ctx).Warn("record start failure", "container", c.ID, "error", serr)
		}
		e.broadcast()
	}()
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return fmt.Errorf("make bundle: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(bundle) })
	maxSize, maxFile, err := logRotation(c.HostConfig.LogConfig)
	if err != nil {
		return err
	}
	// The shim starts while the root, volumes and network are set up: it
	// reads the bundle only when told to start the container. Until it
	// is taken below, a failure ends it here.
	os.RemoveAll(d.shimDir(c.ID)) // a previous run's exit.json
	waitShim := d.spawnShim(ctx, shim.StartOptions{
		Shim: d.cfg.ShimPath, Runtime: d.cfg.RuntimePath, RuntimeRoot: d.runtimeRoot(),
		ID: c.ID, Bundle: bundle, StateDir: d.shimDir(c.ID),
		LogPath: c.LogPath, LogMaxSize: maxSize, LogMaxFile: maxFile,
		Terminal: c.Config.Tty, Stdin: c.Config.OpenStdin, PrestartRuntime: true,
	})
	shimTaken := false
	undo = append(undo, func() {
		if cl, err := waitShim(); err == nil && !shimTaken {
			cl.Delete(context.WithoutCancel(ctx))
			cl.Close()
			os.RemoveAll(d.shimDir(c.ID))
		}
	})
	mounts, err := d.snap.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return fmt.Errorf("container layer: %w", err)
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount container root: %w", err)
	}
	undo = append(undo, func() { snapshot.UnmountAll(rootfs) })
	if err := d.mountVolumes(ctx, c, rootfs); err != nil {
		return err
	}
	undo = append(undo, func() { d.unmountVolumes(context.WithoutCancel(ctx), c) })
	join, err := d.joinedNamespaces(c)
	if err != nil {
		return err
	}
	links, err := d.resolveLinks(c)
	if err != nil {
		return err
	}
	shm, err := d.shmSource(c)
	if err != nil {
		return err
	}
	if c.HostConfig.IpcMode.IsShareable() {
		if err := mountShm(shm, c.HostConfig.ShmSize); err != nil {
			return err
		}
		undo = append(undo, func() { unmountShm(context.WithoutCancel(ctx), shm) })
	}
	netns, err := d.setupNetwork(ctx, c, links.hosts)
	if err != nil {
		return err
	}
	undo = append(undo, func() { d.teardownNetwork(context.WithoutCancel(ctx), c) })
	if netns != "" {
		join[specs.NetworkNamespace] = netns
	}
	spec, err := d.buildSpec(c, rootfs, join, links.env, shm)
	if err != nil {
		return err
	}
	if err := writeSpec(filepath.Join(bundle, "config.json"), spec); err != nil {
		return err
	}
	cl, err := waitShim()
	if err != nil {
		return err
	}
	shimTaken = true
	undo = append(undo, func() {
		dctx := context.WithoutCancel(ctx)
		cl.Delete(dctx)
		cl.Close()
		os.RemoveAll(d.shimDir(c.ID))
	})
	for _, attach := range e.attachers {
		attach(cl)
	}
	e.attachers = nil
	startedAt := time.Now().UTC()
	pid, err := cl.Start(ctx)
	if err != nil {
		return err
	}
	e.shim = cl
	e.runDone = make(chan struct{})
	c.State = container.State{
		Status:    api.StateRunning,
		Pid:       pid,
		StartedAt: startedAt,
		Health:    initialHealth(c),
	}
	c.HasBeenStarted = true
	if err := d.save(e); err != nil {
		log.G(ctx).Warn("record start", "container", c.ID, "error", err)
	}
	e.broadcast()
	d.publishContainer("start", c, nil)
	d.wg.Add(1)
	go d.monitor(e, cl)
	d.startHealthCheck(e)
	return nil
}

// spawnShim starts a shim with opts in the background and returns the
// function that waits for it (the same answer every call).
func (d *Daemon) spawnShim(ctx context.Context, opts shim.StartOptions) func() (*shim.Client, error) {
	type result struct {
		cl  *shim.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		cl, err := shim.Start(ctx, opts)
		done <- result{cl, err}
	}()
	return sync.OnceValues(func() (*shim.Client, error) {
		r := <-done
		return r.cl, r.err
	})
}

// startFailureCode is the exit code Docker records for a start that
// failed: 127 for a missing command, 126 for one that cannot run, else 128.
func startFailureCode(err error) int {
	msg := err.Error()
	switch {
	case containsAny(msg, "executable file not found", "no such file or directory"):
		return 127
	case containsAny(msg, "permission denied", "is a directory"):
		return 126
	}
	return 128
}

// writeSpec writes a spec as config.json.
func writeSpec(path string, spec any) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// monitor waits for the container of cl to exit and records it. It ends
// without recording anything when the daemon shuts down: the shim keeps
// the container, and the next daemon reconnects.
func (d *Daemon) monitor(e *ctrEntry, cl *shim.Client) {
	defer d.wg.Done()
	st, err := cl.Wait(d.runCtx)
	if err != nil {
		if d.runCtx.Err() != nil {
			return
		}
		// The shim is gone: it records the exit before it goes, if it saw one.
		e.mu.Lock()
		id := e.c.ID
		e.mu.Unlock()
		if st, err = shim.ReadExitStatus(d.shimDir(id)); err != nil {
			log.G(d.runCtx).Warn("container's shim died without an exit status", "container", id, "error", err)
			st = shim.ExitStatus{Code: 255, ExitedAt: time.Now().UTC()}
		}
	}
	d.handleExit(e, cl, st)
}

// handleExit records the exit of the run that cl supervised, releases
// what the run held and applies the restart policy or auto-remove.
func (d *Daemon) handleExit(e *ctrEntry, cl *shim.Client, st shim.ExitStatus) {
	ctx := context.WithoutCancel(d.runCtx)
	e.mu.Lock()
	if e.shim != cl {
		e.mu.Unlock()
		return
	}
	c := e.c
	d.stopHealthCheck(e)
	restart := !d.shuttingDown() && container.ShouldRestart(c.HostConfig.RestartPolicy, st.Code, c.RestartCount, c.ManuallyStopped)
	autoRemove := c.HostConfig.AutoRemove && !restart
	d.releaseRun(ctx, e, autoRemove)
	ranFor := time.Duration(0)
	if !c.State.StartedAt.IsZero() {
		ranFor = st.ExitedAt.Sub(c.State.StartedAt)
	}
	c.State.Status = api.StateExited
	c.State.Pid = 0
	c.State.ExitCode = st.Code
	c.State.OOMKilled = st.OOMKilled
	c.State.FinishedAt = st.ExitedAt.UTC()
	if c.State.FinishedAt.IsZero() {
		c.State.FinishedAt = time.Now().UTC()
	}
	if c.State.Health != nil {
		c.State.Health.Status = api.Unhealthy
	}
	e.exits++
	var delay time.Duration
	if restart {
		delay = e.backoff.Next(ranFor)
		c.State.Status = api.StateRestarting
	}
	// A container about to be removed is not written down as exited: the
	// removal follows at once, and a daemon killed in between finds it
	// running without a shim, records its exit then and removes it.
	if !autoRemove {
		if err := d.save(e); err != nil {
			log.G(ctx).Warn("record exit", "container", c.ID, "error", err)
		}
	}
	attrs := map[string]string{"exitCode": fmt.Sprint(st.Code)}
	if st.OOMKilled {
		d.publishContainer("oom", c, nil)
	}
	d.publishContainer("die", c, attrs)
	e.broadcast()
	id := c.ID
	if restart {
		rctx, cancel := context.WithCancel(d.runCtx)
		e.restartCancel = cancel
		d.wg.Add(1)
		go d.restartLater(rctx, e, delay)
	}
	e.mu.Unlock()
	if autoRemove {
		if err := d.RemoveContainer(ctx, id, RemoveContainerOptions{Volumes: true}); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).Warn("auto-remove container", "container", id, "error", err)
			e.mu.Lock()
			if serr := d.save(e); serr != nil {
				log.G(ctx).Warn("record exit", "container", id, "error", serr)
			}
			e.mu.Unlock()
		}
	}
}

// releaseRun undoes what startLocked made for the run that just ended:
// the shim and the runtime's container, the network, the volumes' mounts
// and the root mount; with removing (an auto-remove follows), the
// container's layer too. e.mu is held.
func (d *Daemon) releaseRun(ctx context.Context, e *ctrEntry, removing bool) {
	c := e.c
	d.endExecs(e) // while the shim still knows how they ended
	// The container's processes are gone: its network and volumes are
	// released while the shim finishes removing it from the runtime. With
	// a pid namespace of its own, nothing of the container can still run
	// once its init was reaped (the kernel kills and waits for the rest of
	// the namespace first), so its root is unmounted meanwhile too, and
	// the layer of a container about to be auto-removed is removed (the
	// removal then finds it gone). Otherwise processes may outlive init
	// until the runtime's delete kills them: the root waits for that.
	ownPids := !c.HostConfig.PidMode.IsHost() && !c.HostConfig.PidMode.IsContainer()
	rootReleased := false
	released := make(chan struct{})
	go func() {
		defer close(released)
		d.teardownNetwork(ctx, c)
		d.unmountVolumes(ctx, c)
		if ownPids {
			rootReleased = d.releaseRoot(ctx, c)
			if rootReleased && removing {
				if err := d.snap.Remove(ctx, c.SnapshotKey); err != nil && !errdefs.IsNotFound(err) {
					log.G(ctx).Warn("remove container layer", "container", c.ID, "error", err)
				}
			}
		}
	}()
	if e.shim != nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := e.shim.Delete(dctx); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsUnavailable(err) {
			log.G(ctx).Warn("delete container's shim", "container", c.ID, "error", err)
			d.forceDeleteRuntime(ctx, c.ID)
		}
		cancel()
		// Attachers may still be reading the last output: the shim ends
		// their streams once they have it.
		e.shim.Release()
		e.shim = nil
	} else if d.runtimeKnows(c.ID) {
		d.forceDeleteRuntime(ctx, c.ID)
	}
	os.RemoveAll(d.shimDir(c.ID))
	<-released
	if !rootReleased {
		d.releaseRoot(ctx, c)
	}
	if e.runDone != nil {
		close(e.runDone)
		e.runDone = nil
	}
}

// releaseRoot unmounts c's root and removes its bundle; false if the root
// could not be unmounted (the bundle is then kept).
func (d *Daemon) releaseRoot(ctx context.Context, c *container.Container) bool {
	bundle := d.bundleDir(c.ID)
	unmountShm(ctx, d.shmDir(c.ID))
	if err := snapshot.UnmountAll(filepath.Join(bundle, "rootfs")); err != nil {
		log.G(ctx).Warn("unmount container root", "container", c.ID, "error", err)
		return false
	}
	os.RemoveAll(bundle)
	return true
}

// restartLater restarts e after delay, as its restart policy asks, unless
// cancelled (by a stop, a start or a remove) meanwhile.
func (d *Daemon) restartLater(ctx context.Context, e *ctrEntry, delay time.Duration) {
	defer d.wg.Done()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if ctx.Err() != nil || e.removed || e.c.State.Status != api.StateRestarting {
		return
	}
	e.restartCancel = nil
	e.c.RestartCount++
	if err := d.startLocked(ctx, e); err != nil {
		log.G(ctx).Warn("restart container", "container", e.c.ID, "error", err)
		e.c.State.Status = api.StateExited
		d.save(e)
		e.broadcast()
		return
	}
	d.publishContainer("restart", e.c, nil)
}

// cancelRestart stops a pending restart; e.mu is held.
func (e *ctrEntry) cancelRestart() {
	if e.restartCancel != nil {
		e.restartCancel()
		e.restartCancel = nil
	}
	if e.c.State.Status == api.StateRestarting {
		e.c.State.Status = api.StateExited
	}
}

// StopContainer stops a running container: its stop signal, then SIGKILL
// after the timeout. Stopping a stopped container is ErrNotModified.
func (d *Daemon) StopContainer(ctx context.Context, ref string, opts StopOptions) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	return d.stopLocked(ctx, e, opts, true)
}

// stopLocked stops e; e.op is held. A manual stop (by a user, not by the
// daemon's shutdown) keeps the restart policy from starting it again.
func (d *Daemon) stopLocked(ctx context.Context, e *ctrEntry, opts StopOptions, manual bool) error {
	e.mu.Lock()
	c := e.c
	if e.removed {
		e.mu.Unlock()
		return noSuchContainer(c.ID)
	}
	if manual {
		c.ManuallyStopped = true
	}
	if c.State.Status == api.StateRestarting {
		e.cancelRestart()
		d.save(e)
		e.broadcast()
		e.mu.Unlock()
		return nil
	}
	if !c.State.Running() || e.shim == nil {
		d.save(e)
		e.mu.Unlock()
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrNotModified)
	}
	sigName := opts.Signal
	if sigName == "" {
		sigName = c.Config.StopSignal
	}
	sig := syscall.SIGTERM
	if sigName != "" {
		s, err := parseSignal(sigName)
		if err != nil {
			e.mu.Unlock()
			return err
		}
		sig = s
	}
	timeout := defaultStopTimeout
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	} else if c.Config.StopTimeout != nil {
		timeout = *c.Config.StopTimeout
	}
	cl := e.shim
	paused := c.State.Status == api.StatePaused
	exits := e.exits
	d.save(e)
	e.mu.Unlock()
	d.publishContainer("kill", c, map[string]string{"signal": fmt.Sprint(int(sig))})
	if err := killOrGone(ctx, cl, sig, false); err != nil {
		return fmt.Errorf("cannot stop container: %s: %w", c.ID, err)
	}
	if paused {
		cl.Resume(ctx)
	}
	if timeout >= 0 {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		err := d.waitExit(wctx, e, exits)
		cancel()
		if err == nil {
			d.publishContainer("stop", c, nil)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Docker tells the escalation too.
		d.publishContainer("kill", c, map[string]string{"signal": fmt.Sprint(int(syscall.SIGKILL))})
		if err := killOrGone(ctx, cl, syscall.SIGKILL, true); err != nil {
			return fmt.Errorf("cannot stop container: %s: %w", c.ID, err)
		}
	}
	if err := d.waitExit(ctx, e, exits); err != nil {
		return err
	}
	d.publishContainer("stop", c, nil)
	return nil
}

// waitExit waits until e recorded an exit after the exits-th or is no
// longer running.
func (d *Daemon) waitExit(ctx context.Context, e *ctrEntry, exits int) error {
	for {
		e.mu.Lock()
		done := e.exits > exits || (!e.c.State.Running() && e.shim == nil)
		ch := e.changed
		e.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// RestartContainer stops (if running) and starts a container.
func (d *Daemon) RestartContainer(ctx context.Context, ref string, opts StopOptions) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	if err := d.stopLocked(ctx, e, opts, true); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return noSuchContainer(ref)
	}
	e.c.ManuallyStopped = false
	e.c.RestartCount = 0
	if err := d.startLocked(ctx, e); err != nil {
		return err
	}
	d.publishContainer("restart", e.c, nil)
	return nil
}

// KillContainer sends a signal (default SIGKILL) to a running container.
// SIGKILL or the container's stop signal count as a manual stop: the
// restart policy then leaves it stopped.
func (d *Daemon) KillContainer(ctx context.Context, ref, signal string) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	e.mu.Lock()
	c := e.c
	if !c.State.Running() || e.shim == nil {
		e.mu.Unlock()
		if c.State.Status == api.StateRestarting {
			return fmt.Errorf("cannot kill container: %s: container %s is restarting, wait until the container is running: %w", ref, c.ID, errdefs.ErrConflict)
		}
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", ref, c.ID, errdefs.ErrConflict)
	}
	stopSig := syscall.SIGTERM
	if c.Config.StopSignal != "" {
		if s, err := parseSignal(c.Config.StopSignal); err == nil {
			stopSig = s
		}
	}
	if sig == syscall.SIGKILL || sig == stopSig {
		c.ManuallyStopped = true
		d.save(e)
	}
	cl := e.shim
	paused := c.State.Status == api.StatePaused
	e.mu.Unlock()
	// A container that exits meanwhile (SIGKILL makes it) may take its
	// shim with it before the answer: that kill is done.
	if err := killOrGone(ctx, cl, sig, sig == syscall.SIGKILL); err != nil {
		return fmt.Errorf("cannot kill container: %s: %w", ref, err)
	}
	if paused && sig == syscall.SIGKILL {
		cl.Resume(ctx)
	}
	d.publishContainer("kill", c, map[string]string{"signal": fmt.Sprint(int(sig))})
	return nil
}

// PauseContainer freezes a running container.
func (d *Daemon) PauseContainer(ctx context.Context, ref string) error {
	return d.setPaused(ctx, ref, true)
}

// UnpauseContainer thaws a paused container.
func (d *Daemon) UnpauseContainer(ctx context.Context, ref string) error {
	return d.setPaused(ctx, ref, false)
}

func (d *Daemon) setPaused(ctx context.Context, ref string, pause bool) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	switch {
	case !pause && c.State.Status != api.StatePaused:
		// Docker checks only the paused state for unpause.
		return fmt.Errorf("container %s is not paused: %w", c.ID, errdefs.ErrConflict)
	case !c.State.Running() || e.shim == nil:
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	case pause && c.State.Status == api.StatePaused:
		return fmt.Errorf("container %s is already paused: %w", c.ID, errdefs.ErrConflict)
	}
	if pause {
		if err := e.shim.Pause(ctx); err != nil {
			return fmt.Errorf("pause container %s: %w", c.ID, err)
		}
		c.State.Status = api.StatePaused
		d.publishContainer("pause", c, nil)
	} else {
		if err := e.shim.Resume(ctx); err != nil {
			return fmt.Errorf("unpause container %s: %w", c.ID, err)
		}
		c.State.Status = api.StateRunning
		d.publishContainer("unpause", c, nil)
	}
	e.broadcast()
	return d.save(e)
}

// WaitContainer returns a channel that receives the container's exit once
// cond holds: "not-running" (default; at once for a container that is not
// running), "next-exit" or "removed". The channel is closed without a
// value if ctx ends first.
func (d *Daemon) WaitContainer(ctx context.Context, ref string, cond api.WaitCondition) (<-chan WaitResult, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return nil, err
	}
	switch cond {
	case "", api.WaitConditionNotRunning, api.WaitConditionNextExit, api.WaitConditionRemoved:
	default:
		return nil, fmt.Errorf("invalid condition: %q: %w", cond, errdefs.ErrInvalidArgument)
	}
	e.mu.Lock()
	exits := e.exits
	e.mu.Unlock()
	out := make(chan WaitResult, 1)
	go func() {
		defer close(out)
		for {
			e.mu.Lock()
			var done bool
			switch cond {
			case api.WaitConditionNextExit:
				done = e.exits > exits
			case api.WaitConditionRemoved:
				done = e.removed
			default:
				st := e.c.State.Status
				done = st != api.StateRunning && st != api.StatePaused && st != api.StateRestarting
			}
			res := WaitResult{ExitCode: e.c.State.ExitCode, Error: e.c.State.Error}
			if cond == api.WaitConditionRemoved {
				// Docker clears a failed start's error once the container
				// is removed: docker run --rm then reports the start's
				// error alone.
				res.Error = ""
			}
			ch := e.changed
			e.mu.Unlock()
			if done {
				out <- res
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// RemoveContainer removes a container: its record, writable layer,
// directories and log (and with opts.Volumes its anonymous volumes). A
// running one is a conflict unless opts.Force, which kills it first.
func (d *Daemon) RemoveContainer(ctx context.Context, ref string, opts RemoveContainerOptions) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	c := e.c
	if e.removed {
		e.mu.Unlock()
		return noSuchContainer(ref)
	}
	if c.State.Status == api.StateRestarting {
		if !opts.Force {
			e.mu.Unlock()
			return fmt.Errorf("cannot remove container %q: container is restarting: stop the container before removing or force remove: %w", "/"+c.Name, errdefs.ErrConflict)
		}
		e.cancelRestart()
	}
	if c.State.Running() && e.shim != nil {
		if !opts.Force {
			e.mu.Unlock()
			return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove: %w", "/"+c.Name, errdefs.ErrConflict)
		}
		c.ManuallyStopped = true
		cl := e.shim
		exits := e.exits
		e.mu.Unlock()
		if err := killOrGone(ctx, cl, syscall.SIGKILL, true); err != nil {
			return fmt.Errorf("cannot remove container %q: could not kill: %w", "/"+c.Name, err)
		}
		cl.Resume(ctx) // a frozen process dies only once thawed
		if err := d.waitExit(ctx, e, exits); err != nil {
			return err
		}
		e.mu.Lock()
	}
	// An auto-remove may have raced with this remove.
	if e.removed {
		e.mu.Unlock()
		return nil
	}
	c.State.Status = api.StateRemoving
	e.broadcast()
	e.mu.Unlock()

	dctx := context.WithoutCancel(ctx)
	if err := d.snap.Remove(dctx, c.SnapshotKey); err != nil && !errdefs.IsNotFound(err) {
		e.mu.Lock()
		c.State.Status = api.StateDead
		c.State.Error = err.Error()
		d.save(e)
		e.broadcast()
		e.mu.Unlock()
		return fmt.Errorf("remove container %s: remove its layer: %w", c.ID, err)
	}
	d.releaseMounts(dctx, c, opts.Volumes)
	var errs []error
	for _, dir := range []string{d.bundleDir(c.ID), d.shimDir(c.ID), d.ctrDir(c.ID)} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	e.mu.Lock()
	d.forgetExecs(e)
	err = d.forget(e)
	e.removed = true
	e.broadcast()
	e.mu.Unlock()
	d.ctrs.drop(c.ID, c.Name)
	d.publishContainer("destroy", c, nil)
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RenameContainer gives a container a new name.
func (d *Daemon) RenameContainer(ctx context.Context, ref, newName string) error {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	old, name, err := d.rename(ctx, e, newName)
	if err != nil {
		return err
	}
	d.renameLinks(ctx, old, name)
	return nil
}

// rename renames e and returns its old and new names.
func (d *Daemon) rename(ctx context.Context, e *ctrEntry, newName string) (string, string, error) {
	// Docker checks the new name with its "/" and says where it failed.
	name, err := container.ValidateName("/" + strings.TrimPrefix(newName, "/"))
	if err != nil {
		return "", "", fmt.Errorf("Error when allocating new name: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	old := c.Name
	if name == old {
		//lint:ignore ST1005 Docker's wording
		return "", "", fmt.Errorf("Renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument)
	}
	if err := d.ctrs.reserve(name, c.ID); err != nil {
		return "", "", fmt.Errorf("Error when allocating new name: %w", err)
	}
	c.Name = name
	if err := d.save(e); err != nil {
		c.Name = old
		d.ctrs.release(name, c.ID)
		return "", "", err
	}
	d.ctrs.release(old, c.ID)
	if c.State.Running() {
		if err := d.net.Rename(c.ID, name); err != nil {
			log.G(ctx).Warn("rename container in its networks", "container", c.ID, "error", err)
		}
	}
	d.publishContainer("rename", c, map[string]string{"oldName": "/" + old})
	return old, name, nil
}

// killOrGone signals the container of cl; a failure because the
// container already exited (or its shim is gone) is no error: the
// monitor records that exit.
func killOrGone(ctx context.Context, cl *shim.Client, sig syscall.Signal, all bool) error {
	err := cl.Kill(ctx, sig, all)
	if err == nil || errdefs.IsNotFound(err) || errdefs.IsUnavailable(err) {
		return nil
	}
	if st, serr := cl.State(ctx); serr != nil || st.Status == shim.StatusStopped {
		return nil
	}
	return err
}

// shuttingDown reports whether the daemon is closing.
func (d *Daemon) shuttingDown() bool { return d.runCtx.Err() != nil }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
