package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

// v1Manager is a container's cgroup on a v1 or hybrid host: one directory
// per mounted v1 hierarchy (named ones included) and, on a hybrid host,
// one in the cgroup2 tree.
type v1Manager struct {
	paths  map[string]string // subsystem ("cpu", "name=systemd") -> directory
	mounts map[string]string // subsystem -> mountpoint of its hierarchy
	// unified is the cgroup2 directory on a hybrid host, nil on pure v1.
	unified *v2Manager
	// hier is the host's cgroup hierarchies as New or Load found them.
	hier []Hierarchy
}

var _ Manager = (*v1Manager)(nil)

func (m *v1Manager) Paths() map[string]string {
	p := maps.Clone(m.paths)
	if m.unified != nil {
		p[""] = m.unified.dir
	}
	return p
}

// dirs lists each distinct directory once (co-mounted controllers share
// one), sorted.
func (m *v1Manager) dirs() []string {
	seen := make(map[string]bool)
	var out []string
	for _, d := range m.paths {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func (m *v1Manager) Apply(pid int) error {
	cpuset := m.paths["cpuset"]
	for _, dir := range m.dirs() {
		var err error
		if dir == cpuset {
			err = mkdirCpuset(m.mounts["cpuset"], dir)
		} else if err = os.MkdirAll(dir, 0o755); err != nil {
			err = fmt.Errorf("create cgroup: %w", err)
		}
		if err != nil {
			return err
		}
		if pid != -1 {
			if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
				return err
			}
		}
	}
	if m.unified != nil {
		return m.unified.Apply(pid)
	}
	return nil
}

// need returns the directory of subsystem, or an error naming it if the
// host has no such hierarchy.
func (m *v1Manager) need(subsystem string) (string, error) {
	if dir, ok := m.paths[subsystem]; ok {
		return dir, nil
	}
	return "", fmt.Errorf("cgroup controller %q is not mounted: %w", subsystem, errdefs.ErrUnavailable)
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Rdma) > 0 {
		return fmt.Errorf("rdma limits are not supported: %w", errdefs.ErrNotImplemented)
	}
	type step struct {
		subsystem string
		needed    bool
		set       func(dir string) error
	}
	net := r.Network
	steps := []step{
		{"cpuset", cpusetNeeded(r.CPU), func(d string) error { return setCpusetV1(d, r.CPU) }},
		{"devices", len(r.Devices) > 0, func(d string) error { return setDevicesV1(d, r.Devices) }},
		{"memory", memoryNeeded(r.Memory), func(d string) error { return setMemoryV1(d, r.Memory) }},
		{"cpu", cpuNeeded(r.CPU), func(d string) error { return setCPUV1(d, r.CPU) }},
		{"pids", r.Pids != nil && r.Pids.Limit != nil, func(d string) error { return setPids(d, r.Pids) }},
		{"blkio", blkioNeeded(r.BlockIO), func(d string) error { return setBlkioV1(d, r.BlockIO) }},
		{"net_cls", net != nil && net.ClassID != nil, func(d string) error { return setNetClsV1(d, net) }},
		{"net_prio", net != nil && len(net.Priorities) > 0, func(d string) error { return setNetPrioV1(d, net) }},
	}
	// Huge pages: the v1 hierarchy if mounted, else the unified one of a
	// hybrid host (where hugetlb often lives).
	var unifiedCtrls []string
	if len(r.HugepageLimits) > 0 {
		if _, ok := m.paths["hugetlb"]; ok || m.unified == nil {
			steps = append(steps, step{"hugetlb", true, func(d string) error { return setHugetlbV1(d, r.HugepageLimits) }})
		} else {
			unifiedCtrls = append(unifiedCtrls, "hugetlb")
		}
	}
	for k := range r.Unified {
		if c, ok := unifiedController(k); ok && !slices.Contains(unifiedCtrls, c) {
			unifiedCtrls = append(unifiedCtrls, c)
		}
	}
	if len(r.Unified) > 0 && m.unified == nil {
		return fmt.Errorf("unified resources need cgroup v2, and this host has no cgroup2 hierarchy: %w", errdefs.ErrNotImplemented)
	}
	// Check every controller first so that nothing is half-applied for a
	// missing one.
	for _, s := range steps {
		if s.needed {
			if _, err := m.need(s.subsystem); err != nil {
				return err
			}
		}
	}
	for _, s := range steps {
		if !s.needed {
			continue
		}
		if err := s.set(m.paths[s.subsystem]); err != nil {
			return fmt.Errorf("set %s: %w", s.subsystem, err)
		}
	}
	if m.unified == nil || len(unifiedCtrls) == 0 && len(r.Unified) == 0 {
		return nil
	}
	slices.Sort(unifiedCtrls)
	if err := m.unified.enableControllers(unifiedCtrls); err != nil {
		return err
	}
	if _, ok := m.paths["hugetlb"]; !ok {
		if err := setHugetlbV2(m.unified.dir, r.HugepageLimits); err != nil {
			return fmt.Errorf("set hugetlb: %w", err)
		}
	}
	return setUnified(m.unified.dir, r.Unified)
}

// freezer returns the v1 freezer directory, or "" if there is none.
func (m *v1Manager) freezer() string {
	return m.paths["freezer"]
}

func (m *v1Manager) Freeze() error {
	dir := m.freezer()
	if dir == "" {
		if m.unified != nil {
			return m.unified.Freeze()
		}
		_, err := m.need("freezer")
		return err
	}
	return freeze(v1Freezer(dir), dir, freezeTimeout)
}

func (m *v1Manager) Thaw() error {
	dir := m.freezer()
	if dir == "" {
		if m.unified != nil {
			return m.unified.Thaw()
		}
		_, err := m.need("freezer")
		return err
	}
	return thawV1(dir)
}

func (m *v1Manager) Frozen() (bool, error) {
	dir := m.freezer()
	if dir == "" {
		if m.unified != nil {
			return m.unified.Frozen()
		}
		_, err := m.need("freezer")
		return false, err
	}
	s, err := readFile(dir, "freezer.state")
	if err != nil {
		return false, err
	}
	return s == "FROZEN", nil
}

// procsDir picks the hierarchy used to list processes.
func (m *v1Manager) procsDir() (string, error) {
	for _, s := range []string{"pids", "freezer", "memory", "cpu", "cpuacct", "devices", "blkio", "cpuset"} {
		if d, ok := m.paths[s]; ok {
			return d, nil
		}
	}
	if m.unified != nil {
		return m.unified.dir, nil
	}
	if d := m.dirs(); len(d) > 0 {
		return d[0], nil
	}
	return "", fmt.Errorf("cgroup has no directory: %w", errdefs.ErrInvalidArgument)
}

func (m *v1Manager) Pids() ([]int, error) {
	dir, err := m.procsDir()
	if err != nil {
		return nil, err
	}
	return walkProcs(dir)
}

func (m *v1Manager) Kill() error {
	dir, err := m.procsDir()
	if err != nil {
		return err
	}
	// On a hybrid host every process of the container is in the cgroup2
	// directory too: cgroup.kill there needs no freezer. The sweep that
	// follows signals each listed process too (see v2Manager.killAll),
	// those that joined the v1 hierarchies only among them.
	// Without it (or its directory) the v1 freezer does the job.
	if m.unified != nil {
		if done, err := m.unified.killAll(); err == nil && done {
			err := killFrozen(dir, nil, nil)
			// Tasks frozen by the v1 freezer die only once thawed.
			if fz := m.freezer(); fz != "" {
				err = errors.Join(err, thawV1(fz))
			}
			return err
		}
	}
	return m.killV1(dir)
}

// killV1 kills the processes listed in dir with the v1 hierarchies alone:
// frozen meanwhile if the freezer settles in time, else unfrozen.
func (m *v1Manager) killV1(dir string) error {
	if fz := m.freezer(); fz != "" {
		return killFrozen(dir,
			func() error { return freeze(v1Freezer(fz), fz, killFreezeTimeout) },
			func() error { return thawV1(fz) })
	}
	return killFrozen(dir, nil, nil)
}

func (m *v1Manager) Destroy() error {
	var errs []error
	deadline := time.Now().Add(removeTimeout)
	for _, dir := range m.dirs() {
		if err := removeCgroup(dir, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	if m.unified != nil {
		if err := removeCgroup(m.unified.dir, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *v1Manager) OOMKillCount() (uint64, error) {
	dir, ok := m.paths["memory"]
	if !ok {
		return 0, nil
	}
	oc, err := readKeyValues(dir, "memory.oom_control")
	if err != nil {
		if isNotExist(err) {
			return 0, fmt.Errorf("cgroup %s: %w", dir, errdefs.ErrNotFound)
		}
		return 0, err
	}
	return oc["oom_kill"], nil
}

func (m *v1Manager) Stats() (*Stats, error) {
	st := &Stats{}
	type source struct {
		subsystem string
		read      func(string, *Stats) error
	}
	sources := []source{
		{"cpuacct", cpuacctStatsV1},
		{"cpu", cpuStatsV1},
		{"memory", memoryStatsV1},
		{"pids", pidsStats},
		{"blkio", blkioStatsV1},
		{"hugetlb", hugetlbStatsV1},
	}
	for _, s := range sources {
		dir, ok := m.paths[s.subsystem]
		if !ok {
			continue
		}
		if err := s.read(dir, st); err != nil {
			if isNotExist(err) && !exists(dir, "cgroup.procs") {
				return nil, fmt.Errorf("stats: cgroup %s: %w", dir, errdefs.ErrNotFound)
			}
			if !isNotExist(err) {
				return nil, fmt.Errorf("stats: %w", err)
			}
		}
	}
	if _, ok := m.paths["hugetlb"]; !ok && m.unified != nil {
		if err := hugetlbStatsV2(m.unified.dir, st); err != nil && !isNotExist(err) {
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	return st, nil
}
