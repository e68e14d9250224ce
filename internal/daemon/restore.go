package daemon

import (
	"context"
	"os"
	"path/filepath"
	"time"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/shim"
)

// restoreContainers brings the loaded records in line with what runs:
// containers whose shim still serves are monitored again (live restore),
// those that ended while the daemon was away get their exit recorded
// (from the shim, or the exit status it left), half-removed ones are
// removed, and the restart policies are applied.
func (d *Daemon) restoreContainers(ctx context.Context) {
	running := map[string]bool{}
	var toStart, toRemove []string
	for _, e := range d.ctrs.all() {
		e.mu.Lock()
		c := e.c
		status := c.State.Status
		e.mu.Unlock()
		switch status {
		case api.StateRunning, api.StatePaused:
			if d.reconnect(ctx, e) {
				running[c.ID] = true
			}
		case api.StateRestarting:
			e.mu.Lock()
			c.State.Status = api.StateExited
			d.save(e)
			e.mu.Unlock()
			toStart = append(toStart, c.ID)
		case api.StateRemoving, api.StateDead:
			toRemove = append(toRemove, c.ID)
		default:
			p := c.HostConfig.RestartPolicy
			if c.HasBeenStarted && !c.ManuallyStopped && (p.IsAlways() || p.IsUnlessStopped()) {
				toStart = append(toStart, c.ID)
			}
		}
	}
	if err := d.net.Restore(ctx, running); err != nil {
		log.G(ctx).Warn("restore networks", "error", err)
	}
	for _, id := range toRemove {
		if err := d.RemoveContainer(ctx, id, RemoveContainerOptions{Force: true}); err != nil {
			log.G(ctx).Warn("finish removing container", "container", id, "error", err)
		}
	}
	for _, id := range toStart {
		if err := d.StartContainer(ctx, id); err != nil {
			log.G(ctx).Warn("restart container", "container", id, "error", err)
		}
	}
}

// reconnect attaches the daemon to the shim of a container that was
// running when the daemon stopped; if it ended meanwhile its exit is
// recorded. It reports whether the container still runs.
func (d *Daemon) reconnect(ctx context.Context, e *ctrEntry) bool {
	e.mu.Lock()
	id := e.c.ID
	e.mu.Unlock()
	cl, err := shim.Connect(ctx, d.shimDir(id))
	if err == nil {
		st, err := cl.State(ctx)
		if err == nil && st.Status == shim.StatusCreated {
			// The daemon stopped between the shim's launch and the
			// container's start: there is no container, only the shim.
			if _, err := cl.Delete(ctx); err != nil {
				log.G(ctx).Warn("remove the shim of a start cut short", "container", id, "error", err)
			}
			cl.Close()
			d.handleExit(e, nil, shim.ExitStatus{Code: 128, ExitedAt: time.Now().UTC()})
			return false
		}
		if err == nil && st.Status != shim.StatusStopped {
			e.mu.Lock()
			e.shim = cl
			e.runDone = make(chan struct{})
			e.c.State.Pid = st.Pid
			if st.Status == shim.StatusPaused {
				e.c.State.Status = api.StatePaused
			} else {
				e.c.State.Status = api.StateRunning
			}
			d.wg.Add(1)
			go d.monitor(e, cl)
			d.startHealthCheck(e)
			e.mu.Unlock()
			log.G(ctx).Info("container restored", "container", id, "pid", st.Pid)
			return true
		}
		if err == nil {
			e.mu.Lock()
			e.shim = cl
			e.runDone = make(chan struct{})
			e.mu.Unlock()
			d.handleExit(e, cl, shim.ExitStatus{Code: st.ExitCode, ExitedAt: st.ExitedAt, OOMKilled: st.OOMKilled})
			return false
		}
		cl.Close()
	}
	st, err := shim.ReadExitStatus(d.shimDir(id))
	if err != nil {
		log.G(ctx).Warn("container's shim is gone and left no exit status", "container", id, "error", err)
		st = shim.ExitStatus{Code: 255, ExitedAt: e.c.State.StartedAt}
	}
	d.handleExit(e, nil, st)
	return false
}

// runtimeKnows reports whether the runtime still has state for id.
func (d *Daemon) runtimeKnows(id string) bool {
	_, err := os.Stat(filepath.Join(d.runtimeRoot(), id))
	return err == nil
}
