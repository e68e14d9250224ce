// Package cgroups creates, configures, inspects and removes the control group
// of one container, on cgroup v1, v2 and hybrid hosts. New picks the right
// implementation for the host; Load reopens one from paths saved in state.
package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls the cgroup of one container. The lifecycle is:
// New (nothing created yet) -> Apply(pid) (directories created, pid moved in)
// -> Set(resources) any number of times -> Destroy (directories removed).
// A Manager saved with Paths can be reopened with Load by another process.
type Manager interface {
	// Apply creates the cgroup (all hierarchies on v1) and moves pid into it.
	Apply(pid int) error
	// Set writes the limits in r; fields that are nil are left unchanged.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process in the cgroup; Thaw resumes them.
	Freeze() error
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids() ([]int, error)
	// Stats reads current usage counters.
	Stats() (*Stats, error)
	// OOMKillCount is the number of OOM kills seen in the cgroup so far.
	OOMKillCount() (uint64, error)
	// Destroy removes the cgroup directories; it is not an error if they are gone.
	Destroy() error
	// Paths returns the directories of the cgroup keyed by controller
	// ("" for the v2 unified directory), for saving in state.
	Paths() map[string]string
}
