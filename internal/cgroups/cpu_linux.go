package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// clockTicks is USER_HZ, the unit of cpuacct.stat; it is 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// cpuNeeded reports whether c asks anything of the v1 cpu controller.
func cpuNeeded(c *specs.LinuxCPU) bool {
	return c != nil && (c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil ||
		c.RealtimeRuntime != nil || c.RealtimePeriod != nil || c.Idle != nil)
}

// cpusetNeeded reports whether c asks anything of the cpuset controller.
func cpusetNeeded(c *specs.LinuxCPU) bool {
	return c != nil && (c.Cpus != "" || c.Mems != "")
}

func setCPUV1(dir string, c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
		// Older kernels clamp instead of failing: report the difference.
		got, err := readUint(dir, "cpu.shares")
		if err != nil {
			return err
		}
		if got != *c.Shares {
			return fmt.Errorf("cpu shares %d out of range, the kernel set %d: %w", *c.Shares, got, errdefs.ErrInvalidArgument)
		}
	}
	setPeriod := c.Period != nil && *c.Period != 0
	setQuota := c.Quota != nil && *c.Quota != 0
	if setPeriod {
		period := strconv.FormatUint(*c.Period, 10)
		err := writeFile(dir, "cpu.cfs_period_us", period)
		if errors.Is(err, unix.EINVAL) && setQuota {
			// The current quota does not fit the new period: quota first.
			if err := writeFile(dir, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)); err != nil {
				return err
			}
			setQuota = false
			err = writeFile(dir, "cpu.cfs_period_us", period)
		}
		if err != nil {
			return err
		}
	}
	if setQuota {
		if err := writeFile(dir, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeOptional(dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10), *c.Burst == 0); err != nil {
			return err
		}
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		if err := writeFile(dir, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		if err := writeFile(dir, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeOptional(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10), *c.Idle == 0); err != nil {
			return err
		}
	}
	return nil
}

// writeOptional writes a file that older kernels lack; its absence is an
// error only when value is not the default (isDefault).
func writeOptional(dir, name, value string, isDefault bool) error {
	if !exists(dir, name) {
		if isDefault {
			return nil
		}
		return fmt.Errorf("%s is not supported by this kernel (no %s): %w", name, filepath.Join(dir, name), errdefs.ErrUnavailable)
	}
	return writeFile(dir, name, value)
}

func setCpusetV1(dir string, c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// setCpusetV2 is the same files on v2.
func setCpusetV2(dir string, c *specs.LinuxCPU) error {
	return setCpusetV1(dir, c)
}

// mkdirCpuset creates dir below the cpuset mountpoint, giving every new
// level the cpus and mems of its parent: a v1 cpuset starts empty and no
// task can join it until both are set.
func mkdirCpuset(mountpoint, dir string) error {
	rel, err := filepath.Rel(mountpoint, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below %s: %w", dir, mountpoint, errdefs.ErrInvalidArgument)
	}
	if rel == "." {
		return nil
	}
	cur := mountpoint
	for _, part := range strings.Split(rel, "/") {
		parent := cur
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create cgroup: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := readFile(cur, f)
			if err != nil {
				return err
			}
			if v != "" {
				continue
			}
			pv, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := writeFile(cur, f, pv); err != nil {
				return err
			}
		}
	}
	return nil
}

// setCPUV2 maps the OCI CPU settings onto cpu.weight (from shares),
// cpu.max ("quota period", keeping the half not given; a negative quota is
// "max", 0 means unset as on v1), cpu.max.burst and cpu.idle.
func setCPUV2(dir string, c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(dir, "cpu.weight", strconv.FormatUint(CPUSharesToWeight(*c.Shares), 10)); err != nil {
			return err
		}
	}
	setQuota := c.Quota != nil && *c.Quota != 0
	setPeriod := c.Period != nil && *c.Period != 0
	if setQuota || setPeriod {
		cur, err := readFile(dir, "cpu.max")
		if err != nil {
			return err
		}
		quota, period, ok := strings.Cut(cur, " ")
		if !ok {
			return fmt.Errorf("%s/cpu.max: unexpected content %q", dir, cur)
		}
		if setQuota {
			quota = "max"
			if *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
		}
		if setPeriod {
			period = strconv.FormatUint(*c.Period, 10)
		}
		if err := writeFile(dir, "cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeOptional(dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10), *c.Burst == 0); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeOptional(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10), *c.Idle == 0); err != nil {
			return err
		}
	}
	return nil
}

// readUints reads a file of space-separated numbers.
func readUints(dir, name string) ([]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := parseUint(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// cpuacctStatsV1 reads CPU time from a v1 cpuacct cgroup.
func cpuacctStatsV1(dir string, st *Stats) error {
	u := &st.CPU.Usage
	var err error
	if u.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if u.Percpu, err = readUints(dir, "cpuacct.usage_percpu"); err != nil {
		return err
	}
	if v, err := readUints(dir, "cpuacct.usage_percpu_user"); err == nil {
		u.PercpuUser = v
	}
	if v, err := readUints(dir, "cpuacct.usage_percpu_sys"); err == nil {
		u.PercpuKernel = v
	}
	user, uerr := readUint(dir, "cpuacct.usage_user")
	sys, serr := readUint(dir, "cpuacct.usage_sys")
	if uerr == nil && serr == nil {
		u.User, u.Kernel = user, sys
		return nil
	}
	ticks, err := readKeyValues(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = ticks["user"] * (1e9 / clockTicks)
	u.Kernel = ticks["system"] * (1e9 / clockTicks)
	return nil
}

// cpuStatsV1 reads CFS throttling from a v1 cpu cgroup.
func cpuStatsV1(dir string, st *Stats) error {
	s, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	st.CPU.Throttling = Throttling{Periods: s["nr_periods"], ThrottledPeriods: s["nr_throttled"], ThrottledTime: s["throttled_time"]}
	return nil
}

func cpuStatsV2(dir string, st *Stats) error {
	s, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	st.CPU.Usage.Total = s["usage_usec"] * 1000
	st.CPU.Usage.User = s["user_usec"] * 1000
	st.CPU.Usage.Kernel = s["system_usec"] * 1000
	st.CPU.Throttling = Throttling{Periods: s["nr_periods"], ThrottledPeriods: s["nr_throttled"], ThrottledTime: s["throttled_usec"] * 1000}
	return nil
}
