package runtime

import specs "github.com/opencontainers/runtime-spec/specs-go"

// mergeResources returns old with every field that upd sets replaced, so
// the saved config reflects the resources in force after an update.
func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		old = &specs.LinuxResources{}
	}
	if upd == nil {
		return old
	}
	out := *old
	if m := upd.Memory; m != nil {
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		mm := *out.Memory
		setPtr(&mm.Limit, m.Limit)
		setPtr(&mm.Reservation, m.Reservation)
		setPtr(&mm.Swap, m.Swap)
		setPtr(&mm.Kernel, m.Kernel)
		setPtr(&mm.KernelTCP, m.KernelTCP)
		setPtr(&mm.Swappiness, m.Swappiness)
		setPtr(&mm.DisableOOMKiller, m.DisableOOMKiller)
		out.Memory = &mm
	}
	if c := upd.CPU; c != nil {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		cc := *out.CPU
		setPtr(&cc.Shares, c.Shares)
		setPtr(&cc.Quota, c.Quota)
		setPtr(&cc.Period, c.Period)
		setPtr(&cc.RealtimeRuntime, c.RealtimeRuntime)
		setPtr(&cc.RealtimePeriod, c.RealtimePeriod)
		if c.Cpus != "" {
			cc.Cpus = c.Cpus
		}
		if c.Mems != "" {
			cc.Mems = c.Mems
		}
		out.CPU = &cc
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if b := upd.BlockIO; b != nil {
		if out.BlockIO == nil {
			out.BlockIO = &specs.LinuxBlockIO{}
		}
		bb := *out.BlockIO
		setPtr(&bb.Weight, b.Weight)
		setPtr(&bb.LeafWeight, b.LeafWeight)
		if b.WeightDevice != nil {
			bb.WeightDevice = b.WeightDevice
		}
		if b.ThrottleReadBpsDevice != nil {
			bb.ThrottleReadBpsDevice = b.ThrottleReadBpsDevice
		}
		if b.ThrottleWriteBpsDevice != nil {
			bb.ThrottleWriteBpsDevice = b.ThrottleWriteBpsDevice
		}
		if b.ThrottleReadIOPSDevice != nil {
			bb.ThrottleReadIOPSDevice = b.ThrottleReadIOPSDevice
		}
		if b.ThrottleWriteIOPSDevice != nil {
			bb.ThrottleWriteIOPSDevice = b.ThrottleWriteIOPSDevice
		}
		out.BlockIO = &bb
	}
	if upd.HugepageLimits != nil {
		out.HugepageLimits = upd.HugepageLimits
	}
	if upd.Devices != nil {
		out.Devices = upd.Devices
	}
	if upd.Unified != nil {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		for k, v := range upd.Unified {
			out.Unified[k] = v
		}
	}
	return &out
}

func setPtr[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}
