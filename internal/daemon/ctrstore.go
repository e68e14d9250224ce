package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/shim"
)

// ctrEntry is a container as the running daemon holds it. op serialises
// the verbs that change what runs (start, stop, restart, remove, pause);
// mu guards the fields. A verb takes op first, then mu for short spells;
// the monitor of an exit takes only mu, so a stop that holds op can wait
// for the exit.
type ctrEntry struct {
	op sync.Mutex

	mu sync.Mutex
	c  *container.Container
	// shim is the running shim, nil while the container is not running.
	shim *shim.Client
	// changed is closed and replaced at every state change; waiters
	// select on it.
	changed chan struct{}
	// exits counts the exits seen by this daemon (for next-exit waits).
	exits int
	// removed is set once the record is gone.
	removed bool
	// attachers run against the shim after it created the container and
	// before it starts, so that an attach made before start sees all
	// output.
	attachers []func(*shim.Client)
	// execs are the container's exec processes, by exec ID.
	execs map[string]*execEntry
	// restartCancel stops a pending restart by the restart policy.
	restartCancel context.CancelFunc
	// healthCancel stops the health checker.
	healthCancel context.CancelFunc
	// runDone is closed when the current run ends (log followers stop).
	runDone chan struct{}
	// backoff spaces restarts by the restart policy.
	backoff container.Backoff
}

// broadcast wakes the waiters; e.mu must be held.
func (e *ctrEntry) broadcast() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// containers is the daemon's table of containers and names.
type containers struct {
	mu    sync.RWMutex
	byID  map[string]*ctrEntry
	names map[string]string // name (no slash) -> ID
}

func newContainers() *containers {
	return &containers{byID: map[string]*ctrEntry{}, names: map[string]string{}}
}

// noSuchContainer is Docker's not-found error for a container reference.
func noSuchContainer(ref string) error {
	//lint:ignore ST1005 Docker's wording, which clients match
	return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
}

// get finds a container by full ID, name (with or without "/") or unique
// ID prefix, in that order, as Docker does.
func (cs *containers) get(ref string) (*ctrEntry, error) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if ref == "" {
		return nil, noSuchContainer(ref)
	}
	if e, ok := cs.byID[ref]; ok {
		return e, nil
	}
	if id, ok := cs.names[strings.TrimPrefix(ref, "/")]; ok {
		return cs.byID[id], nil
	}
	var found *ctrEntry
	for id, e := range cs.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", ref, errdefs.ErrInvalidArgument)
			}
			found = e
		}
	}
	if found == nil {
		return nil, noSuchContainer(ref)
	}
	return found, nil
}

// reserve claims name for id; it fails with Docker's conflict error when
// another container has it.
func (cs *containers) reserve(name, id string) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if other, ok := cs.names[name]; ok && other != id {
		//lint:ignore ST1005 Docker's wording, which clients match
		return fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.: %w",
			name, other, errdefs.ErrConflict)
	}
	cs.names[name] = id
	return nil
}

// release frees name if id holds it.
func (cs *containers) release(name, id string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.names[name] == id {
		delete(cs.names, name)
	}
}

// generateName reserves a free generated name for id.
func (cs *containers) generateName(id string) string {
	for i := 0; ; i++ {
		n := container.GenerateName(i / 3)
		if cs.reserve(n, id) == nil {
			return n
		}
	}
}

// add puts a new entry in the table.
func (cs *containers) add(e *ctrEntry) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.byID[e.c.ID] = e
}

// drop removes id and its name from the table.
func (cs *containers) drop(id, name string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byID, id)
	if cs.names[name] == id {
		delete(cs.names, name)
	}
}

// all returns the entries, newest first.
func (cs *containers) all() []*ctrEntry {
	cs.mu.RLock()
	list := slices.Collect(maps.Values(cs.byID))
	cs.mu.RUnlock()
	created := make(map[*ctrEntry]int64, len(list))
	for _, e := range list {
		e.mu.Lock()
		created[e] = e.c.Created.UnixNano()
		e.mu.Unlock()
	}
	slices.SortFunc(list, func(a, b *ctrEntry) int {
		switch {
		case created[a] > created[b]:
			return -1
		case created[a] < created[b]:
			return 1
		}
		return 0
	})
	return list
}

// newEntry wraps a record.
func newEntry(c *container.Container) *ctrEntry {
	return &ctrEntry{c: c, changed: make(chan struct{}), execs: map[string]*execEntry{}}
}

// save writes e's record; e.mu must be held.
func (d *Daemon) save(e *ctrEntry) error {
	// Saves of many containers at once share commits (Group).
	err := d.db.Group(func(tx *metadata.Tx) error { return tx.PutJSON(container.Kind, e.c.ID, e.c) })
	if err != nil {
		return fmt.Errorf("save container %s: %w", e.c.ID, err)
	}
	return nil
}

// loadContainers reads every container record into the table.
func (d *Daemon) loadContainers() error {
	return d.db.View(func(tx *metadata.Tx) error {
		return tx.ForEachJSON(container.Kind, func(id string, data []byte) error {
			var c container.Container
			if err := json.Unmarshal(data, &c); err != nil {
				return fmt.Errorf("container %s: decode record: %w: %w", id, errdefs.ErrDataLoss, err)
			}
			d.ctrs.add(newEntry(&c))
			d.ctrs.mu.Lock()
			d.ctrs.names[c.Name] = c.ID
			d.ctrs.mu.Unlock()
			return nil
		})
	})
}

// forget deletes e's record; e.mu must be held.
func (d *Daemon) forget(e *ctrEntry) error {
	err := d.db.Group(func(tx *metadata.Tx) error { return tx.DeleteJSON(container.Kind, e.c.ID) })
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container record %s: %w", e.c.ID, err)
	}
	return nil
}
