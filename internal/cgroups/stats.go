package cgroups

// Stats are the usage counters of one container's cgroup. The JSON form is
// the "data" of runc's `events --stats` output. Counters a host does not
// provide are left zero.
type Stats struct {
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	Blkio  BlkioStats  `json:"blkio"`
	// Hugetlb is keyed by page size as the kernel names it ("2MB", "1GB").
	Hugetlb map[string]HugetlbStats `json:"hugetlb"`
}

// CPUStats are the CPU time and CFS throttling counters.
type CPUStats struct {
	Usage      CPUUsage   `json:"usage"`
	Throttling Throttling `json:"throttling"`
}

// CPUUsage is the CPU time used by the cgroup since it was created, in
// nanoseconds. Per-CPU figures exist on v1 only.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// Throttling counts CFS bandwidth periods; ThrottledTime is in nanoseconds.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// MemoryStats are the memory counters. Swap follows the v1 convention on
// every host: usage and limit of memory plus swap.
type MemoryStats struct {
	// Cache is the page cache charged to the cgroup ("cache" on v1, "file"
	// on v2).
	Cache     uint64      `json:"cache,omitempty"`
	Usage     MemoryEntry `json:"usage"`
	Swap      MemoryEntry `json:"swap"`
	Kernel    MemoryEntry `json:"kernel"`
	KernelTCP MemoryEntry `json:"kernelTCP"`
	// Raw is memory.stat as read.
	Raw        map[string]uint64 `json:"raw,omitempty"`
	EventCount MemoryEvents      `json:"event_count"`
}

// MemoryEntry is one memory counter. Limit is math.MaxUint64 for "no
// limit"; Max is the peak usage where the kernel records it.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// MemoryEvents are the counters of v2 memory.events; on v1 only Max
// (failcnt), OOM (under_oom transitions are not counted, so 0) and OOMKill
// are known.
type MemoryEvents struct {
	Low     uint64 `json:"low"`
	High    uint64 `json:"high"`
	Max     uint64 `json:"max"`
	OOM     uint64 `json:"oom"`
	OOMKill uint64 `json:"oom_kill"`
}

// PidsStats counts tasks; a Limit of 0 means no limit.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioStats are the block I/O counters per device.
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

// BlkioEntry is one counter of one device; Op is "Read", "Write", "Sync",
// "Async", "Discard" or "Total".
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// HugetlbStats are the counters of one huge page size, in bytes. Max (peak
// usage) exists on v1 only; Limit is the configured limit.
type HugetlbStats struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}
