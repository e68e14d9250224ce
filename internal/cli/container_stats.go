package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// StatsOptions are the options of stats.
type StatsOptions struct {
	All, NoStream, NoTrunc bool
	Format                 string
	Containers             []string
}

const defaultStatsTable = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"ID": "CONTAINER ID", "Name": "NAME", "Container": "CONTAINER", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// StatsRow is one container's usage as stats templates see it.
type StatsRow struct {
	container, id, name        string
	cpu, mem, memLimit, memPct float64
	netRx, netTx, blkR, blkW   float64
	pids                       uint64
	trunc                      bool
}

// MarshalJSON is what {{json .}} prints.
func (r *StatsRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// Container is the container as named on the command line.
func (r *StatsRow) Container() string { return r.container }

// ID is the container's ID.
func (r *StatsRow) ID() string {
	if r.trunc {
		return shortID(r.id)
	}
	return r.id
}

// Name is the container's name.
func (r *StatsRow) Name() string { return strings.TrimPrefix(r.name, "/") }

// CPUPerc is the CPU use in percent of one CPU.
func (r *StatsRow) CPUPerc() string { return fmt.Sprintf("%.2f%%", r.cpu) }

// MemUsage is the memory used and the limit.
func (r *StatsRow) MemUsage() string {
	return units.BytesSize(r.mem) + " / " + units.BytesSize(r.memLimit)
}

// MemPerc is the memory used in percent of the limit.
func (r *StatsRow) MemPerc() string { return fmt.Sprintf("%.2f%%", r.memPct) }

// NetIO is the bytes received and sent.
func (r *StatsRow) NetIO() string {
	return units.HumanSizeWithPrecision(r.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.netTx, 3)
}

// BlockIO is the bytes read and written on block devices.
func (r *StatsRow) BlockIO() string {
	return units.HumanSizeWithPrecision(r.blkR, 3) + " / " + units.HumanSizeWithPrecision(r.blkW, 3)
}

// PIDs is the number of processes.
func (r *StatsRow) PIDs() string { return fmt.Sprint(r.pids) }

// statsRow computes a row from a stats sample, as docker stats does.
func statsRow(name string, s *container.StatsResponse, trunc bool) *StatsRow {
	r := &StatsRow{container: name, id: s.ID, name: s.Name, trunc: trunc}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		r.cpu = cpuDelta / sysDelta * online * 100
	}
	mem := float64(s.MemoryStats.Usage)
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && float64(v) < mem {
			mem -= float64(v)
			break
		}
	}
	r.mem, r.memLimit = mem, float64(s.MemoryStats.Limit)
	if r.memLimit > 0 {
		r.memPct = mem / r.memLimit * 100
	}
	for _, n := range s.Networks {
		r.netRx += float64(n.RxBytes)
		r.netTx += float64(n.TxBytes)
	}
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			r.blkR += float64(e.Value)
		case "write":
			r.blkW += float64(e.Value)
		}
	}
	r.pids = s.PidsStats.Current
	return r
}

// statsSet is the containers stats watches, each fed by its own stream.
type statsSet struct {
	mu      sync.Mutex
	order   []string // names as given, or short IDs
	rows    map[string]*StatsRow
	errs    map[string]error
	cancels map[string]context.CancelFunc
	wg      sync.WaitGroup
	// tolerant drops a container whose stream fails (it went away while
	// watching all) instead of failing the command.
	tolerant bool
}

// add starts streaming the stats of name (once: a name already watched
// is left alone).
func (ss *statsSet) add(ctx context.Context, c *CLI, cl *client.Client, name string, o StatsOptions) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.cancels[name]; ok {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	ss.order = append(ss.order, name)
	ss.cancels[name] = cancel
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		err := c.streamStats(ctx, cl, name, o, func(r *StatsRow) {
			ss.mu.Lock()
			ss.rows[name] = r
			ss.mu.Unlock()
		})
		if err != nil && ctx.Err() == nil {
			ss.mu.Lock()
			ss.errs[name] = err
			ss.mu.Unlock()
		}
	}()
}

// remove stops watching name.
func (ss *statsSet) remove(name string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if cancel, ok := ss.cancels[name]; ok {
		cancel()
		delete(ss.cancels, name)
		delete(ss.rows, name)
		delete(ss.errs, name)
		for i, n := range ss.order {
			if n == name {
				ss.order = append(ss.order[:i], ss.order[i+1:]...)
				break
			}
		}
	}
}

// snapshot returns the rows to print and the first error, in order.
func (ss *statsSet) snapshot() ([]any, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var rows []any
	for _, n := range ss.order {
		if err := ss.errs[n]; err != nil && !ss.tolerant {
			return nil, err
		}
		if r := ss.rows[n]; r != nil {
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// streamStats decodes the stats of one container, calling update with
// each sample, until the stream ends (one sample with --no-stream).
func (c *CLI) streamStats(ctx context.Context, cl *client.Client, name string, o StatsOptions, update func(*StatsRow)) error {
	res, err := cl.ContainerStats(ctx, name, client.ContainerStatsOptions{Stream: !o.NoStream})
	if err != nil {
		return c.daemonError(err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("stats of %s: %w", name, c.daemonError(err))
		}
		update(statsRow(name, &s, !o.NoTrunc))
		if o.NoStream {
			return nil
		}
	}
}

// Stats prints containers' resource usage: once with --no-stream, else
// refreshed every second until interrupted. Without names it watches
// every running container (all with -a), following starts and stops.
func (c *CLI) Stats(ctx context.Context, o StatsOptions) error {
	o.Format = c.configFormat(o.Format, func(cf *configfile.ConfigFile) string { return cf.StatsFormat })
	f := Formatter{Format: o.Format, DefaultTable: defaultStatsTable, Headers: statsHeaders}
	if err := f.ParseFormat(); err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ss := &statsSet{rows: map[string]*StatsRow{}, errs: map[string]error{}, cancels: map[string]context.CancelFunc{}}
	watchAll := len(o.Containers) == 0
	ss.tolerant = watchAll
	var evs client.EventsResult
	if watchAll {
		if !o.NoStream {
			// Subscribe before listing, so that no start falls between.
			f := client.Filters{}.Add("type", "container")
			evs = cl.Events(ctx, client.EventsListOptions{Filters: f})
		}
		list, err := cl.ContainerList(ctx, client.ContainerListOptions{All: o.All})
		if err != nil {
			return c.daemonError(err)
		}
		for _, s := range list.Items {
			ss.add(ctx, c, cl, shortID(s.ID), o)
		}
	}
	for _, name := range o.Containers {
		ss.add(ctx, c, cl, name, o)
	}
	render := func() error {
		rows, err := ss.snapshot()
		if err != nil {
			return err
		}
		return f.Write(c.Out, rows)
	}
	if o.NoStream {
		ss.wg.Wait()
		return render()
	}
	done := make(chan struct{})
	if !watchAll {
		go func() { ss.wg.Wait(); close(done) }()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return render()
		case m := <-evs.Messages:
			id := shortID(m.Actor.ID)
			switch {
			case m.Action == "start" || (o.All && m.Action == "create"):
				ss.add(ctx, c, cl, id, o)
			case m.Action == "destroy" || (!o.All && m.Action == "die"):
				ss.remove(id)
			}
		case err := <-evs.Err:
			if ctx.Err() != nil {
				return nil
			}
			return c.daemonError(fmt.Errorf("watch containers: %w", err))
		case <-tick.C:
			if c.Out.IsTerminal() {
				fmt.Fprint(c.Out, "\033[2J\033[H")
			}
			if err := render(); err != nil {
				return err
			}
		}
	}
}
