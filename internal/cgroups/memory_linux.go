package cgroups

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// memoryNeeded reports whether mem asks anything of the memory controller.
func memoryNeeded(mem *specs.LinuxMemory) bool {
	//lint:ignore SA1019 v1 still honours kernel memory limits where the file exists
	return mem != nil && (mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil || mem.Kernel != nil ||
		mem.KernelTCP != nil || mem.Swappiness != nil || mem.DisableOOMKiller != nil)
}

// setMemoryV1 writes the memory limits of a v1 memory cgroup. As in the
// OCI spec (and runc), 0 for a limit means "not set".
func setMemoryV1(dir string, mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	if err := setMemoryAndSwapV1(dir, mem); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	//lint:ignore SA1019 v1 still honours kernel memory limits where the file exists
	kernel := mem.Kernel
	for _, kl := range []struct {
		v    *int64
		file string
	}{{kernel, "memory.kmem.limit_in_bytes"}, {mem.KernelTCP, "memory.kmem.tcp.limit_in_bytes"}} {
		if kl.v == nil || *kl.v == 0 || !exists(dir, kl.file) {
			continue
		}
		if err := writeFile(dir, kl.file, strconv.FormatInt(*kl.v, 10)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("memory swappiness %d is not in [0, 100]: %w", *mem.Swappiness, errdefs.ErrInvalidArgument)
		}
		if err := writeFile(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(dir, "memory.oom_control", v); err != nil {
			return err
		}
	}
	return nil
}

// setMemoryAndSwapV1 writes memory.limit_in_bytes and
// memory.memsw.limit_in_bytes in the order that keeps memsw >= limit at
// every step, as the kernel requires.
func setMemoryAndSwapV1(dir string, mem *specs.LinuxMemory) error {
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if limit == -1 && swap == 0 {
		swap = -1 // unlimited memory takes memory+swap along
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		err := writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
		if errors.Is(err, unix.EBUSY) {
			usage, _ := readUint(dir, "memory.usage_in_bytes")
			return fmt.Errorf("memory limit %d is below the current usage %d, which cannot be reclaimed: %w", limit, usage, err)
		}
		return err
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		if !exists(dir, "memory.memsw.limit_in_bytes") {
			if swap == -1 {
				return nil
			}
			return fmt.Errorf("memory+swap limit: swap accounting is disabled (no memory.memsw.limit_in_bytes): %w", errdefs.ErrUnavailable)
		}
		return writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
	}
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return err
		}
		if swap == -1 || cur < uint64(swap) {
			// memsw grows past the current limit: raise it first.
			if err := writeSwap(); err != nil {
				return err
			}
			return writeLimit()
		}
	}
	if err := writeLimit(); err != nil {
		return err
	}
	return writeSwap()
}

// setMemoryV2 maps the OCI memory limits onto memory.max, memory.low and
// memory.swap.max (swap only, converted with SwapToV2). Kernel memory
// limits do not exist on v2 and are ignored.
func setMemoryV2(dir string, mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	var limit, swapIn int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swapIn = *mem.Swap
	}
	if swapIn != 0 || limit == -1 {
		swap, err := SwapToV2(swapIn, limit)
		if err != nil {
			return err
		}
		// swap 0 with swapIn > 0 means memory+swap == memory: no swap.
		if swap != 0 || swapIn > 0 {
			v := limitString(swap)
			if err := writeFile(dir, "memory.swap.max", v); err != nil {
				// Without swap accounting, "no limit" and "no swap" hold anyway.
				if !isNotExist(err) || (v != "max" && v != "0") {
					return err
				}
			}
		}
	}
	if limit != 0 {
		if err := writeFile(dir, "memory.max", limitString(limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.low", limitString(*mem.Reservation)); err != nil {
			return err
		}
	}
	return nil
}

// memoryEntryV1 reads the usage, peak, limit and failcnt files of one v1
// memory counter ("memory", "memory.memsw", "memory.kmem", ...).
func memoryEntryV1(dir, prefix string) (MemoryEntry, error) {
	var e MemoryEntry
	var err error
	if e.Usage, err = readUint(dir, prefix+".usage_in_bytes"); err != nil {
		return e, err
	}
	if e.Max, err = readUint(dir, prefix+".max_usage_in_bytes"); err != nil {
		return e, err
	}
	if e.Limit, err = readUint(dir, prefix+".limit_in_bytes"); err != nil {
		return e, err
	}
	if e.Failcnt, err = readUint(dir, prefix+".failcnt"); err != nil {
		return e, err
	}
	return e, nil
}

func memoryStatsV1(dir string, st *Stats) error {
	usage, err := memoryEntryV1(dir, "memory")
	if err != nil {
		return err
	}
	st.Memory.Usage = usage
	st.Memory.EventCount.Max = usage.Failcnt
	for _, e := range []struct {
		prefix string
		to     *MemoryEntry
	}{{"memory.memsw", &st.Memory.Swap}, {"memory.kmem", &st.Memory.Kernel}, {"memory.kmem.tcp", &st.Memory.KernelTCP}} {
		v, err := memoryEntryV1(dir, e.prefix)
		if err != nil && !isNotExist(err) {
			return err
		}
		*e.to = v
	}
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	st.Memory.Raw = raw
	st.Memory.Cache = raw["cache"]
	oc, err := readKeyValues(dir, "memory.oom_control")
	if err != nil {
		return err
	}
	st.Memory.EventCount.OOMKill = oc["oom_kill"]
	return nil
}

func memoryStatsV2(dir string, st *Stats) error {
	usage, err := readUint(dir, "memory.current")
	if err != nil {
		return err
	}
	limit, err := readUint(dir, "memory.max")
	if err != nil {
		return err
	}
	st.Memory.Usage = MemoryEntry{Usage: usage, Limit: limit}
	if peak, err := readUint(dir, "memory.peak"); err == nil {
		st.Memory.Usage.Max = peak
	}
	ev, err := readKeyValues(dir, "memory.events")
	if err != nil {
		return err
	}
	st.Memory.EventCount = MemoryEvents{Low: ev["low"], High: ev["high"], Max: ev["max"], OOM: ev["oom"], OOMKill: ev["oom_kill"]}
	st.Memory.Usage.Failcnt = ev["max"]
	// Report swap as memory+swap, the v1 convention.
	if swap, err := readUint(dir, "memory.swap.current"); err == nil {
		st.Memory.Swap.Usage = swap + usage
		swapMax, err := readUint(dir, "memory.swap.max")
		if err != nil {
			return err
		}
		st.Memory.Swap.Limit = math.MaxUint64
		if swapMax != math.MaxUint64 && limit != math.MaxUint64 {
			st.Memory.Swap.Limit = swapMax + limit
		}
		if sev, err := readKeyValues(dir, "memory.swap.events"); err == nil {
			st.Memory.Swap.Failcnt = sev["max"]
		}
	}
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	st.Memory.Raw = raw
	st.Memory.Cache = raw["file"]
	st.Memory.Kernel.Usage = raw["kernel"]
	return nil
}
