package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// hostInfo fills in what the kernel says: version, machine, memory,
// cgroup version and controllers, IP forwarding.
func hostInfo(si *SystemInfo, dataRoot string) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dataRoot, &fs); err == nil {
		si.BackingFS = fsName(int64(fs.Type))
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		si.NFd = len(fds)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		si.KernelVersion = unix.ByteSliceToString(u.Release[:])
		si.Architecture = unix.ByteSliceToString(u.Machine[:])
	}
	var sys unix.Sysinfo_t
	if err := unix.Sysinfo(&sys); err == nil {
		si.MemTotal = int64(sys.Totalram) * int64(sys.Unit)
	}
	si.CgroupDriver = "cgroupfs"
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		si.CgroupVersion = "2"
		b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		ctrls := strings.Fields(string(b))
		has := func(c string) bool {
			for _, x := range ctrls {
				if x == c {
					return true
				}
			}
			return false
		}
		si.MemoryLimit = has("memory")
		si.CPUCfsQuota, si.CPUShares = has("cpu"), has("cpu")
		si.CPUSet = has("cpuset")
		si.PidsLimit = has("pids")
		if m, _ := filepath.Glob("/sys/fs/cgroup/*/memory.swap.max"); si.MemoryLimit && len(m) > 0 {
			si.SwapLimit = true
		}
	} else {
		si.CgroupVersion = "1"
		exists := func(p string) bool { _, err := os.Stat(filepath.Join("/sys/fs/cgroup", p)); return err == nil }
		si.MemoryLimit = exists("memory/memory.limit_in_bytes")
		si.SwapLimit = exists("memory/memory.memsw.limit_in_bytes")
		si.CPUCfsQuota = exists("cpu/cpu.cfs_quota_us")
		si.CPUShares = exists("cpu/cpu.shares")
		si.CPUSet = exists("cpuset/cpuset.cpus")
		si.PidsLimit = exists("pids")
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		si.IPv4Forwarding = strings.TrimSpace(string(b)) == "1"
	}
}

// fsName names a file system by its magic number, as docker info does.
func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	}
	return fmt.Sprintf("0x%x", magic)
}
