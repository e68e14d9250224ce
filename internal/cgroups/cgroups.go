// Package cgroups creates, configures, inspects and removes the control group
// of one container, on cgroup v1, v2 and hybrid hosts. New picks the right
// implementation for the host; Load reopens one from paths saved in state.
//
// Host modes:
//
//   - v1: every controller has its own "cgroup" hierarchy.
//   - hybrid: v1 hierarchies plus a "cgroup2" tree (usually at
//     /sys/fs/cgroup/unified) that carries few or no controllers; the
//     container joins it too, so cgroup.kill, cgroup.events and the unified
//     resources map work there.
//   - unified: one "cgroup2" tree, usually at /sys/fs/cgroup.
//
// Nothing in this package runs at init time and no goroutine outlives the
// call that started it, except the one behind NotifyOOM, which its cancel
// function stops.
package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls the cgroup of one container. The lifecycle is:
// New (nothing created yet) -> Apply(pid) (directories created, pid moved in)
// -> Set(resources) any number of times -> Destroy (directories removed).
// A Manager saved with Paths can be reopened with Load by another process.
// A Manager is not safe for concurrent use.
type Manager interface {
	// Apply creates the cgroup (all hierarchies on v1) and moves pid into
	// it. A pid of -1 only creates the directories.
	Apply(pid int) error
	// Set writes the limits in r; fields that are nil are left unchanged.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process in the cgroup and returns once the kernel
	// reports them all frozen; Thaw resumes them.
	Freeze() error
	// Thaw resumes the processes stopped by Freeze.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids() ([]int, error)
	// Stats reads current usage counters.
	Stats() (*Stats, error)
	// OOMKillCount is the number of OOM kills seen in the cgroup so far.
	// It is 0 when the memory controller does not account the cgroup.
	OOMKillCount() (uint64, error)
	// Kill sends SIGKILL to every process in the cgroup and its
	// descendants. It does not wait for them to exit.
	Kill() error
	// Destroy removes the cgroup directories (and any sub-cgroups); it is
	// not an error if they are gone. It fails, naming them, if processes
	// are still inside.
	Destroy() error
	// Paths returns the directories of the cgroup keyed by controller
	// ("" for the v2 unified directory), for saving in state.
	Paths() map[string]string
}

// Hierarchy is one cgroup filesystem mounted on the host, as the runtime
// needs to know it to mount cgroupfs inside a container.
type Hierarchy struct {
	// Mountpoint is where the hierarchy is mounted, e.g. /sys/fs/cgroup/cpu.
	Mountpoint string `json:"mountpoint"`
	// FSType is "cgroup" (v1) or "cgroup2".
	FSType string `json:"fstype"`
	// Root is the cgroup path, relative to the hierarchy's real root, that
	// is visible at Mountpoint ("/" unless in a cgroup namespace or a bind
	// mount).
	Root string `json:"root"`
	// Subsystems lists the v1 controllers of the hierarchy ("cpu",
	// "cpuacct", named hierarchies as "name=systemd") or, for cgroup2, the
	// controllers listed in cgroup.controllers at the mountpoint.
	Subsystems []string `json:"subsystems"`
	// Options are the filesystem's super-block options as in mountinfo,
	// e.g. "rw,cpu,cpuacct" or "rw,nsdelegate".
	Options string `json:"options"`
}
