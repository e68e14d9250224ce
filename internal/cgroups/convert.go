package cgroups

import (
	"fmt"
	"math"
	"strconv"

	"github.com/berth-project/berth/internal/errdefs"
)

// CPUSharesToWeight converts v1 cpu.shares ([2, 262144], default 1024) to
// v2 cpu.weight ([1, 10000], default 100) the way current runc does: a
// quadratic in log2(shares) that maps 2 -> 1, 1024 -> 100 and
// 262144 -> 10000 exactly, so the default stays the default. 0 means
// "unset" and stays 0.
func CPUSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612.0 - 7.0/34.0
	// Round the exponent to avoid ceil(100.00000000000001) = 101 at the
	// anchor points; 1e-9 is far below the resolution that matters here.
	exp = math.Round(exp*1e9) / 1e9
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// BlkioWeightToIOWeight converts a v1 blkio weight ([10, 1000]) to a v2
// io.weight ([1, 10000]) linearly, as runc does. 0 means "unset".
func BlkioWeightToIOWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	if w < 10 {
		w = 10
	}
	return 1 + (w-10)*9999/990
}

// SwapToV2 converts the OCI memory.swap value, which is memory plus swap
// like v1's memsw, into v2's memory.swap.max, which counts swap only. The
// result is -1 for "max", 0 to disable swap. memory is the memory limit
// given with it (0 if none).
func SwapToV2(swap, memory int64) (int64, error) {
	switch {
	case memory == -1 && swap == 0:
		// Unlimited memory and swap not given: unlimited swap too.
		return -1, nil
	case swap == -1 || swap == 0:
		return swap, nil
	case memory == 0 || memory == -1:
		return 0, fmt.Errorf("memory swap limit %d without a memory limit: %w", swap, errdefs.ErrInvalidArgument)
	case memory < 0:
		return 0, fmt.Errorf("invalid memory limit %d: %w", memory, errdefs.ErrInvalidArgument)
	case swap < memory:
		return 0, fmt.Errorf("memory+swap limit %d is lower than memory limit %d: %w", swap, memory, errdefs.ErrInvalidArgument)
	}
	return swap - memory, nil
}

// limitString formats a limit for a v2 file: negative is "max".
func limitString(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// pageSizeName names a huge page size (from /sys/kernel/mm/hugepages, in
// kB) the way the kernel names hugetlb cgroup files (mem_fmt, rounding
// down): "64KB", "2MB", "1GB".
func pageSizeName(kb uint64) string {
	switch {
	case kb >= 1<<20:
		return strconv.FormatUint(kb>>20, 10) + "GB"
	case kb >= 1<<10:
		return strconv.FormatUint(kb>>10, 10) + "MB"
	}
	return strconv.FormatUint(kb, 10) + "KB"
}
