package oci

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// minMemory is the smallest memory limit or reservation Docker accepts.
const minMemory = 6 * 1024 * 1024

// cfsPeriod is the CFS period (µs) --cpus is expressed in.
const cfsPeriod = 100000

// Resources converts Docker's resource settings to OCI Linux resources, for
// a new container and for `docker update` alike: only the settings that are
// set appear (a nil or zero field means "leave as is"). MemorySwap -1 and a
// PidsLimit of 0 or less mean unlimited and become -1. Devices, device
// cgroup rules and ulimits are not resources of the cgroup and are handled
// by Generate. Bad values give errdefs.ErrInvalidArgument errors with
// Docker's wording.
func Resources(r *container.Resources) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	if r == nil {
		return out, nil
	}
	if err := validateResources(r); err != nil {
		return nil, err
	}

	var mem specs.LinuxMemory
	memSet := false
	if r.Memory > 0 {
		mem.Limit, memSet = ptr(r.Memory), true
	}
	if r.MemoryReservation > 0 {
		mem.Reservation, memSet = ptr(r.MemoryReservation), true
	}
	if r.MemorySwap > 0 || r.MemorySwap == -1 {
		mem.Swap, memSet = ptr(r.MemorySwap), true
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
		mem.Swappiness, memSet = ptr(uint64(*r.MemorySwappiness)), true
	}
	if r.OomKillDisable != nil {
		mem.DisableOOMKiller, memSet = ptr(*r.OomKillDisable), true
	}
	if memSet {
		out.Memory = &mem
	}

	var cpu specs.LinuxCPU
	cpuSet := false
	if r.CPUShares > 0 {
		cpu.Shares, cpuSet = ptr(uint64(r.CPUShares)), true
	}
	if r.NanoCPUs > 0 {
		cpu.Period, cpu.Quota, cpuSet = ptr(uint64(cfsPeriod)), ptr(r.NanoCPUs*cfsPeriod/1e9), true
	}
	if r.CPUPeriod != 0 {
		cpu.Period, cpuSet = ptr(uint64(r.CPUPeriod)), true
	}
	if r.CPUQuota != 0 {
		cpu.Quota, cpuSet = ptr(r.CPUQuota), true
	}
	if r.CPURealtimePeriod != 0 {
		cpu.RealtimePeriod, cpuSet = ptr(uint64(r.CPURealtimePeriod)), true
	}
	if r.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime, cpuSet = ptr(r.CPURealtimeRuntime), true
	}
	if r.CpusetCpus != "" {
		cpu.Cpus, cpuSet = r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		cpu.Mems, cpuSet = r.CpusetMems, true
	}
	if cpuSet {
		out.CPU = &cpu
	}

	if r.PidsLimit != nil {
		limit := *r.PidsLimit
		if limit <= 0 {
			limit = -1
		}
		out.Pids = &specs.LinuxPids{Limit: &limit}
	}

	blkio, err := blockIO(r)
	if err != nil {
		return nil, err
	}
	out.BlockIO = blkio
	return out, nil
}

// validateResources checks r the way Docker's daemon does, with its
// messages.
func validateResources(r *container.Resources) error {
	switch {
	case r.Memory != 0 && r.Memory < minMemory:
		return invalidf("Minimum memory limit allowed is 6MB")
	case r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory:
		return invalidf("Minimum memoryswap limit should be larger than memory limit, see usage")
	case r.MemorySwap < -1:
		return invalidf("invalid memory swap limit %d: use -1 for unlimited swap", r.MemorySwap)
	case r.MemorySwappiness != nil && *r.MemorySwappiness != -1 && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100):
		return invalidf("Invalid value: %d, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	case r.MemoryReservation != 0 && r.MemoryReservation < minMemory:
		return invalidf("Minimum memory reservation allowed is 6MB")
	case r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation:
		return invalidf("Minimum memory limit can not be less than memory reservation limit, see usage")
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return invalidf("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return invalidf("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs < 0 || r.NanoCPUs > int64(runtime.NumCPU())*1e9:
		n := runtime.NumCPU()
		return invalidf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
	case r.CPUShares < 0:
		return invalidf("shares: invalid argument")
	case r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000):
		return invalidf("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case r.CPUQuota > 0 && r.CPUQuota < 1000:
		return invalidf("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case r.CPURealtimePeriod != 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod:
		return invalidf("cpu-rt-runtime cannot be higher than cpu-rt-period")
	case r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000):
		return invalidf("Range of blkio weight is from 10 to 1000")
	case r.IOMaximumBandwidth != 0 || r.IOMaximumIOps != 0:
		return invalidf("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
	}
	if err := checkCPUList(r.CpusetCpus); err != nil {
		return invalidf("Invalid value %s for cpuset cpus: %v", r.CpusetCpus, err)
	}
	if err := checkCPUList(r.CpusetMems); err != nil {
		return invalidf("Invalid value %s for cpuset mems: %v", r.CpusetMems, err)
	}
	for _, d := range r.BlkioWeightDevice {
		if d == nil {
			continue
		}
		if d.Weight != 0 && (d.Weight < 10 || d.Weight > 1000) {
			return invalidf("invalid weight for device %s: %d, the range is from 10 to 1000", d.Path, d.Weight)
		}
	}
	return nil
}

// checkCPUList checks a cpuset list such as "0-3,5" (empty is fine).
func checkCPUList(list string) error {
	if list == "" {
		return nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return fmt.Errorf("invalid format: %s", list)
		}
		if isRange {
			b, err := strconv.ParseUint(hi, 10, 16)
			if err != nil || b < a {
				return fmt.Errorf("invalid format: %s", list)
			}
		}
	}
	return nil
}

// blockIO converts the blkio weight and throttles, stat'ing each device
// path for its numbers; nil when none is set.
func blockIO(r *container.Resources) (*specs.LinuxBlockIO, error) {
	var b specs.LinuxBlockIO
	set := false
	if r.BlkioWeight > 0 {
		b.Weight, set = ptr(r.BlkioWeight), true
	}
	for _, d := range r.BlkioWeightDevice {
		if d == nil {
			continue
		}
		major, minor, err := blockDevice(d.Path)
		if err != nil {
			return nil, invalidf("blkio weight device: %v", err)
		}
		wd := specs.LinuxWeightDevice{Weight: ptr(d.Weight)}
		wd.Major, wd.Minor = major, minor
		b.WeightDevice, set = append(b.WeightDevice, wd), true
	}
	throttles := []struct {
		name string
		in   []*blkiodev.ThrottleDevice
		out  *[]specs.LinuxThrottleDevice
	}{
		{"read bps", r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{"write bps", r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{"read iops", r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{"write iops", r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, d := range t.in {
			if d == nil {
				continue
			}
			major, minor, err := blockDevice(d.Path)
			if err != nil {
				return nil, invalidf("blkio %s device: %v", t.name, err)
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = major, minor
			*t.out, set = append(*t.out, td), true
		}
	}
	if !set {
		return nil, nil
	}
	return &b, nil
}

func ptr[T any](v T) *T { return &v }
