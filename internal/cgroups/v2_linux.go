package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// v2Manager is the cgroup of a container in a cgroup2 hierarchy: the whole
// cgroup on a unified host, the unified part of a hybrid one.
type v2Manager struct {
	dir        string
	mountpoint string
	// hybrid is set when the directory belongs to a v1Manager, which then
	// owns the limits the v1 hierarchies carry (devices in particular).
	hybrid bool
	// hier is the host's cgroup hierarchies as New or Load found them
	// (unset in the unified part of a v1Manager).
	hier []Hierarchy
}

var _ Manager = (*v2Manager)(nil)

func (m *v2Manager) Paths() map[string]string {
	return map[string]string{"": m.dir}
}

func (m *v2Manager) Apply(pid int) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	if pid == -1 {
		return nil
	}
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

// controllersFor lists the v2 controllers r needs, sorted.
func controllersFor(r *specs.LinuxResources) []string {
	set := make(map[string]bool)
	if c := r.CPU; c != nil {
		if (c.Shares != nil && *c.Shares != 0) || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil {
			set["cpu"] = true
		}
		if c.Cpus != "" || c.Mems != "" {
			set["cpuset"] = true
		}
	}
	if mem := r.Memory; mem != nil && (mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil) {
		set["memory"] = true
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		set["pids"] = true
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || len(b.WeightDevice) > 0 || len(b.ThrottleReadBpsDevice) > 0 ||
		len(b.ThrottleWriteBpsDevice) > 0 || len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		set["io"] = true
	}
	if len(r.HugepageLimits) > 0 {
		set["hugetlb"] = true
	}
	for k := range r.Unified {
		if c, ok := unifiedController(k); ok {
			set[c] = true
		}
	}
	var out []string
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// unifiedController names the controller owning a v2 interface file
// ("memory.high" -> "memory"); core files ("cgroup.*") have none.
func unifiedController(key string) (string, bool) {
	c, _, ok := strings.Cut(key, ".")
	if !ok || c == "cgroup" || c == "" {
		return "", false
	}
	return c, true
}

// enableControllers makes ctrls available in m.dir by enabling them in the
// cgroup.subtree_control of every ancestor from the mountpoint down.
func (m *v2Manager) enableControllers(ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	rel, err := filepath.Rel(m.mountpoint, m.dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below %s: %w", m.dir, m.mountpoint, errdefs.ErrInvalidArgument)
	}
	cur := m.mountpoint
	for _, part := range strings.Split(rel, "/") {
		avail, err := readFile(cur, "cgroup.controllers")
		if err != nil {
			return err
		}
		enabled, err := readFile(cur, "cgroup.subtree_control")
		if err != nil {
			return err
		}
		var add []string
		for _, c := range ctrls {
			if slices.Contains(strings.Fields(enabled), c) {
				continue
			}
			if !slices.Contains(strings.Fields(avail), c) {
				return fmt.Errorf("cgroup controller %q is not available in %s: %w", c, cur, errdefs.ErrUnavailable)
			}
			add = append(add, "+"+c)
		}
		if len(add) > 0 {
			if err := writeFile(cur, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
				if errors.Is(err, unix.EBUSY) {
					return fmt.Errorf("enable controllers (%s has processes of its own, which cgroup v2 forbids in a cgroup that delegates controllers): %w", cur, err)
				}
				return fmt.Errorf("enable controllers: %w", err)
			}
		}
		cur = filepath.Join(cur, part)
	}
	return nil
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := checkV2Supported(r); err != nil {
		return err
	}
	if err := m.enableControllers(controllersFor(r)); err != nil {
		return err
	}
	if c := r.CPU; c != nil {
		if err := setCpusetV2(m.dir, c); err != nil {
			return err
		}
	}
	if !m.hybrid && len(r.Devices) > 0 {
		if err := setDevicesV2(m.dir, r.Devices); err != nil {
			return err
		}
	}
	if err := setMemoryV2(m.dir, r.Memory); err != nil {
		return err
	}
	if err := setCPUV2(m.dir, r.CPU); err != nil {
		return err
	}
	if err := setPids(m.dir, r.Pids); err != nil {
		return err
	}
	if err := setIOV2(m.dir, r.BlockIO); err != nil {
		return err
	}
	if err := setHugetlbV2(m.dir, r.HugepageLimits); err != nil {
		return err
	}
	return setUnified(m.dir, r.Unified)
}

// checkV2Supported rejects the resources cgroup v2 has no interface for:
// realtime CPU time, swappiness, disabling the OOM killer, net_cls and
// net_prio, rdma. The deprecated kernel memory limits are ignored instead,
// as the OCI spec allows, and so are leaf weights.
func checkV2Supported(r *specs.LinuxResources) error {
	unsupported := func(what string) error {
		return fmt.Errorf("%s is not supported on cgroup v2: %w", what, errdefs.ErrNotImplemented)
	}
	if c := r.CPU; c != nil {
		if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			return unsupported("cpu realtime runtime/period")
		}
	}
	if mem := r.Memory; mem != nil {
		if mem.Swappiness != nil {
			return unsupported("memory swappiness")
		}
		if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
			return unsupported("disabling the OOM killer")
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		return unsupported("network classid/priorities")
	}
	if len(r.Rdma) > 0 {
		return unsupported("rdma limits")
	}
	return nil
}

// setUnified writes the OCI unified map verbatim. Each key must name an
// existing interface file of the cgroup; files that belong to the manager
// (membership, kill, delegation) are refused.
func setUnified(dir string, u map[string]string) error {
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "", ".", "..", "cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.subtree_control", "cgroup.freeze":
			return fmt.Errorf("unified resource %q cannot be set: %w", k, errdefs.ErrInvalidArgument)
		}
		if strings.Contains(k, "/") {
			return fmt.Errorf("unified resource %q must not contain \"/\": %w", k, errdefs.ErrInvalidArgument)
		}
		fi, err := os.Lstat(filepath.Join(dir, k))
		if err != nil || !fi.Mode().IsRegular() {
			if c, ok := unifiedController(k); ok {
				return fmt.Errorf("unified resource %q is not a file of %s (is the %s controller enabled?): %w", k, dir, c, errdefs.ErrInvalidArgument)
			}
			return fmt.Errorf("unified resource %q is not a file of %s: %w", k, dir, errdefs.ErrInvalidArgument)
		}
		if err := writeFile(dir, k, u[k]); err != nil {
			return fmt.Errorf("set unified resource: %w", err)
		}
	}
	return nil
}

func (m *v2Manager) Freeze() error {
	return freeze(v2Freezer(m.dir), m.dir, freezeTimeout)
}

// eventValue finds key in a flat keyed file's content.
func eventValue(content, key string) (uint64, bool) {
	for _, line := range strings.Split(content, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func (m *v2Manager) Thaw() error {
	if err := writeFile(m.dir, "cgroup.freeze", "0"); err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

func (m *v2Manager) Frozen() (bool, error) {
	s, err := readFile(m.dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	v, _ := eventValue(s, "frozen")
	return v == 1, nil
}

func (m *v2Manager) Pids() ([]int, error) {
	return walkProcs(m.dir)
}

func (m *v2Manager) Kill() error {
	done, err := m.killAll()
	if err != nil {
		return err
	}
	if done {
		return killFrozen(m.dir, nil, nil)
	}
	// Before Linux 5.14 there is no cgroup.kill: freeze, signal, thaw.
	return killFrozen(m.dir, func() error { return freeze(v2Freezer(m.dir), m.dir, killFreezeTimeout) }, m.Thaw)
}

// killAll kills the processes of the cgroup and its descendants with
// cgroup.kill; done is false if the kernel has no cgroup.kill.
//
// cgroup.kill passes over a process whose leader thread is already dying,
// and a process in the middle of an execve from another thread looks just
// so: the caller must still signal every process it lists (killFrozen
// without a freezer), as Kill does.
func (m *v2Manager) killAll() (done bool, err error) {
	err = writeFile(m.dir, "cgroup.kill", "1")
	if err == nil {
		return true, nil
	}
	if !isNotExist(err) || !exists(m.dir, "cgroup.procs") {
		return false, fmt.Errorf("kill: %w", err)
	}
	return false, nil
}

// killFrozen sends SIGKILL to every process below dir with the cgroup
// frozen (when freeze is not nil and succeeds), so that none can fork a
// child that escapes the listing; a cgroup that cannot be frozen is
// signalled round after round until a round finds no new process.
func killFrozen(dir string, freeze, thaw func() error) error {
	frozen := freeze != nil && freeze() == nil
	seen := make(map[int]bool)
	var errs []error
	// Frozen, one round lists everything; unfrozen, repeat until a round
	// finds no new process.
	for round := 0; round < 100; round++ {
		pids, err := walkProcs(dir)
		if err != nil {
			errs = append(errs, err)
			break
		}
		fresh := false
		for _, pid := range pids {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			fresh = true
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
				errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
			}
		}
		if frozen || !fresh {
			break
		}
	}
	if frozen {
		if err := thaw(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kill processes of %s: %w", dir, err)
	}
	return nil
}

func (m *v2Manager) Destroy() error {
	return removeCgroup(m.dir, time.Now().Add(removeTimeout))
}

// removeTimeout bounds how long Destroy waits for exiting processes to
// leave the cgroup.
const removeTimeout = 500 * time.Millisecond

// removeCgroup removes dir and every cgroup below it, deepest first. A
// cgroup whose last processes are still exiting (EBUSY) is retried until
// deadline.
func removeCgroup(dir string, deadline time.Time) error {
	// Most have no child cgroups: try that first, saving the read of a
	// directory of control files.
	if err := unix.Rmdir(dir); err == nil || err == unix.ENOENT {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("remove cgroup: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for {
		err = unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
	if err == unix.EBUSY {
		if pids, perr := walkProcs(dir); perr == nil && len(pids) > 0 {
			return fmt.Errorf("remove cgroup %s: processes %v are still in it: %w: %w", dir, pids, errdefs.ErrConflict, err)
		}
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

func (m *v2Manager) OOMKillCount() (uint64, error) {
	return oomKillCountV2(m.dir)
}

func oomKillCountV2(dir string) (uint64, error) {
	ev, err := readKeyValues(dir, "memory.events")
	if err != nil {
		if isNotExist(err) && exists(dir, "cgroup.procs") {
			return 0, nil // memory controller not enabled for this cgroup
		}
		if isNotExist(err) {
			return 0, fmt.Errorf("cgroup %s: %w", dir, errdefs.ErrNotFound)
		}
		return 0, err
	}
	return ev["oom_kill"], nil
}

func (m *v2Manager) Stats() (*Stats, error) {
	st := &Stats{}
	if err := statsV2(m.dir, st); err != nil {
		return nil, err
	}
	return st, nil
}

// statsV2 fills st from the v2 files of dir; files of controllers that are
// not enabled are skipped.
func statsV2(dir string, st *Stats) error {
	if !exists(dir, "cgroup.procs") {
		return fmt.Errorf("stats: cgroup %s: %w", dir, errdefs.ErrNotFound)
	}
	for _, f := range []func(string, *Stats) error{cpuStatsV2, memoryStatsV2, pidsStats, ioStatsV2, hugetlbStatsV2} {
		if err := f(dir, st); err != nil && !isNotExist(err) {
			return fmt.Errorf("stats: %w", err)
		}
	}
	return nil
}
