package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"
	"time"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/errdefs"
)

// clockTicks is USER_HZ, the unit of /proc/stat's CPU times on Linux.
const clockTicks = 100

// ContainerStats reads the resource usage of the container ref once, in
// the Engine API's form. A container that is not running gives a sample
// with only its name and ID, as Docker's does; the caller adds the
// previous reading (precpu_stats) when it streams.
func (d *Daemon) ContainerStats(ctx context.Context, ref string) (StatsSample, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return StatsSample{}, err
	}
	e.mu.Lock()
	c := e.c
	s := StatsSample{ID: c.ID, Name: "/" + c.Name, OSType: "linux"}
	running := c.State.Running() && e.shim != nil
	pid := c.State.Pid
	hostNet := c.HostConfig != nil && c.HostConfig.NetworkMode.IsHost()
	e.mu.Unlock()
	if !running {
		return s, nil
	}
	m, err := cgroups.New(cgroupsPath(s.ID), s.ID)
	if err != nil {
		return s, fmt.Errorf("stats of container %s: %w", s.ID, err)
	}
	st, err := m.Stats()
	if errdefs.IsNotFound(err) {
		return s, nil // it stopped meanwhile
	}
	if err != nil {
		return s, fmt.Errorf("stats of container %s: %w", s.ID, err)
	}
	s.Read = time.Now()
	fillCgroupStats(&s, st)
	if total, cpus, err := systemCPU("/proc/stat"); err == nil {
		s.CPUStats.SystemUsage, s.CPUStats.OnlineCPUs = total, cpus
	}
	if mem, err := hostMemory("/proc/meminfo"); err == nil && mem > 0 && (s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > mem) {
		s.MemoryStats.Limit = mem
	}
	if !hostNet && pid > 0 {
		if nets, err := netDevStats(fmt.Sprintf("/proc/%d/net/dev", pid)); err == nil && len(nets) > 0 {
			s.Networks = nets
		}
	}
	return s, nil
}

// fillCgroupStats converts the cgroup's counters to the Engine API's.
func fillCgroupStats(s *StatsSample, st *cgroups.Stats) {
	u := st.CPU.Usage
	s.CPUStats.CPUUsage = api.CPUUsage{
		TotalUsage:        u.Total,
		PercpuUsage:       u.Percpu,
		UsageInKernelmode: u.Kernel,
		UsageInUsermode:   u.User,
	}
	s.CPUStats.ThrottlingData = api.ThrottlingData{
		Periods:          st.CPU.Throttling.Periods,
		ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods,
		ThrottledTime:    st.CPU.Throttling.ThrottledTime,
	}
	mem := st.Memory
	s.MemoryStats = api.MemoryStats{
		Usage:    mem.Usage.Usage,
		MaxUsage: mem.Usage.Max,
		Failcnt:  mem.Usage.Failcnt,
		Limit:    mem.Usage.Limit,
		Stats:    maps.Clone(mem.Raw),
	}
	s.PidsStats = api.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	s.BlkioStats = api.BlkioStats{
		IoServiceBytesRecursive: blkioEntries(st.Blkio.IoServiceBytesRecursive),
		IoServicedRecursive:     blkioEntries(st.Blkio.IoServicedRecursive),
	}
}

func blkioEntries(in []cgroups.BlkioEntry) []api.BlkioStatEntry {
	if in == nil {
		return nil
	}
	out := make([]api.BlkioStatEntry, 0, len(in))
	for _, b := range in {
		out = append(out, api.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	return out
}

// systemCPU reads the host's CPU time in nanoseconds (the sum of the
// user, nice, system, idle, iowait, irq and softirq times of the "cpu"
// line, as Docker counts it) and the number of online CPUs (the "cpuN"
// lines) from a /proc/stat file.
func systemCPU(path string) (total uint64, cpus uint32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseProcStat(f)
}

func parseProcStat(r io.Reader) (total uint64, cpus uint32, err error) {
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		if fields[0] != "cpu" {
			if _, err := strconv.Atoi(fields[0][3:]); err == nil {
				cpus++
			}
			continue
		}
		if len(fields) < 8 {
			return 0, 0, fmt.Errorf("/proc/stat: cpu line has %d fields, want 8 or more", len(fields))
		}
		var ticks uint64
		for _, v := range fields[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: bad cpu time %q", v)
			}
			ticks += n
		}
		total = ticks * (uint64(time.Second) / clockTicks)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("/proc/stat: no cpu line")
	}
	return total, cpus, nil
}

// hostMemory returns MemTotal from a /proc/meminfo file, in bytes.
func hostMemory(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseMemTotal(f)
}

func parseMemTotal(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "MemTotal:" {
			continue
		}
		n, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo: bad MemTotal %q", fields[1])
		}
		if len(fields) > 2 && fields[2] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("meminfo: no MemTotal")
}

// netDevStats reads the interface counters of a /proc/<pid>/net/dev file
// (the network namespace of that process), without the loopback.
func netDevStats(path string) (map[string]api.NetworkStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseNetDev(f)
}

func parseNetDev(r io.Reader) (map[string]api.NetworkStats, error) {
	out := map[string]api.NetworkStats{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " |") {
			continue // the two header lines
		}
		fields := strings.Fields(rest)
		if len(fields) < 16 {
			return nil, fmt.Errorf("net/dev: interface %s has %d counters, want 16", name, len(fields))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev: interface %s: bad counter %q", name, fields[i])
			}
			v[i] = n
		}
		if name == "lo" {
			continue
		}
		out[name] = api.NetworkStats{
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
