package nsinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostCgroupMount is one cgroup hierarchy as the host mounted it.
type hostCgroupMount struct {
	mountpoint string
	root       string
	fstype     string
	options    string // super options, e.g. "rw,memory" or "rw,name=systemd"
}

// mountCgroup mounts /sys/fs/cgroup (or wherever the spec says) in the
// container. With a cgroup namespace the kernel shows the container's own
// cgroup as the root; without one the container's directories are bind
// mounted from the host, so either way the container sees only its own.
func mountCgroup(rootfs string, m *specs.Mount, dest string, pm parsedMount, cgroupns bool) error {
	if err := mkdirInRoot(rootfs, dest, 0o755); err != nil {
		return err
	}
	hosts, err := readHostCgroupMounts()
	if err != nil {
		return err
	}
	flags := pm.flags &^ (unix.MS_BIND | unix.MS_REC)
	// A pure v2 host: one cgroup2 mount.
	if len(hosts) == 1 && hosts[0].fstype == "cgroup2" {
		return mountCgroupDir(hosts[0], dest, flags, cgroupns)
	}
	if err := mountAt("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return err
	}
	for _, h := range hosts {
		name := filepath.Base(h.mountpoint)
		sub := filepath.Join(dest, name)
		if err := os.Mkdir(sub, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create %s: %w", sub, err)
		}
		if err := mountCgroupDir(h, sub, flags, cgroupns); err != nil {
			return err
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", dest, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
			return fmt.Errorf("remount %s read-only: %w", dest, err)
		}
	}
	return applyPropagation(dest, pm.propagation)
}

func mountCgroupDir(h hostCgroupMount, dest string, flags uintptr, cgroupns bool) error {
	flags |= unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if cgroupns {
		opts := ""
		if h.fstype == "cgroup" {
			var keep []string
			for _, o := range strings.Split(h.options, ",") {
				if o != "rw" && o != "ro" {
					keep = append(keep, o)
				}
			}
			opts = strings.Join(keep, ",")
		}
		return mountAt(h.fstype, dest, h.fstype, flags, opts)
	}
	own, err := ownCgroupPath(h)
	if err != nil {
		return err
	}
	src := filepath.Join(h.mountpoint, strings.TrimPrefix(own, h.root))
	if err := mountAt(src, dest, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return remountBind(dest, flags)
}

// ownCgroupPath returns this process's cgroup in hierarchy h, from /proc/self/cgroup.
func ownCgroupPath(h hostCgroupMount) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if h.fstype == "cgroup2" {
			if parts[0] == "0" && parts[1] == "" {
				return parts[2], nil
			}
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if ctrl != "" && hasOption(h.options, ctrl) {
				return parts[2], nil
			}
		}
	}
	return "/", nil
}

func hasOption(options, want string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// readHostCgroupMounts lists the cgroup hierarchies mounted on the host,
// one per hierarchy (the first mount of each wins).
func readHostCgroupMounts() ([]hostCgroupMount, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []hostCgroupMount
	seen := map[string]bool{}
	for _, m := range mounts {
		key := m.FSType + " " + m.VFSOptions
		if m.FSType == "cgroup2" {
			key = m.FSType
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, hostCgroupMount{mountpoint: m.Mountpoint, root: m.Root, fstype: m.FSType, options: m.VFSOptions})
	}
	return out, nil
}
