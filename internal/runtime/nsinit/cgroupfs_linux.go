package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// cgroupView is what init knows of the cgroups to mount /sys/fs/cgroup:
// whether it has a cgroup namespace, its cgroup directories on the host
// (controller -> directory, "" for cgroup2) and the host's hierarchies,
// both from the runtime, which read them making the cgroup. Whatever the
// runtime did not send is read from /proc here, once.
type cgroupView struct {
	cgroupns bool
	paths    map[string]string
	hosts    []CgroupMount
	own      map[string]string // /proc/self/cgroup, when read
}

// hierarchies returns the host's cgroup hierarchies.
func (v *cgroupView) hierarchies() ([]CgroupMount, error) {
	if len(v.hosts) > 0 {
		return v.hosts, nil
	}
	hosts, err := readHostCgroupMounts()
	if err != nil {
		return nil, err
	}
	v.hosts = hosts
	return hosts, nil
}

// source returns the host directory of this container's cgroup in h: the
// runtime's path for one of h's controllers, else init's own cgroup there.
func (v *cgroupView) source(h CgroupMount) (string, error) {
	if h.FSType == "cgroup2" {
		if dir, ok := v.paths[""]; ok {
			return dir, nil
		}
	} else {
		for _, o := range strings.Split(h.Options, ",") {
			if dir, ok := v.paths[o]; ok && o != "" {
				return dir, nil
			}
		}
	}
	own, err := v.ownCgroupPath(h)
	if err != nil {
		return "", err
	}
	return filepath.Join(h.Mountpoint, strings.TrimPrefix(own, h.Root)), nil
}

// mountCgroup mounts /sys/fs/cgroup (or wherever the spec says) in the
// container. With a cgroup namespace the kernel shows the container's own
// cgroup as the root; without one the container's directories are bind
// mounted from the host, so either way the container sees only its own.
func mountCgroup(rootfs, dest string, pm parsedMount, v *cgroupView) error {
	if err := mkdirInRoot(rootfs, dest, 0o755); err != nil {
		return err
	}
	hosts, err := v.hierarchies()
	if err != nil {
		return err
	}
	flags := pm.flags&^(unix.MS_BIND|unix.MS_REC) | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	// A pure v2 host: one cgroup2 mount.
	if len(hosts) == 1 && hosts[0].FSType == "cgroup2" {
		if err := v.mountHierarchy(hosts[0], dest, flags, mountAt); err != nil {
			return err
		}
		if !v.cgroupns {
			if err := remountBind(dest, flags); err != nil {
				return err
			}
		}
		return applyPropagation(dest, pm.propagation)
	}
	if err := mountAt("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return err
	}
	// dest is now a tmpfs of our own, which nothing in the container can
	// reach yet: the hierarchies are mounted on plain paths below it.
	for _, h := range hosts {
		sub := filepath.Join(dest, filepath.Base(h.Mountpoint))
		if err := os.Mkdir(sub, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create %s: %w", sub, err)
		}
		if err := v.mountHierarchy(h, sub, flags, mountPlain); err != nil {
			return err
		}
		if err := linkComounted(dest, h); err != nil {
			return err
		}
	}
	if !v.cgroupns {
		if err := restrictTree(dest, hosts, flags); err != nil {
			return err
		}
	} else if err := remountTmpfs(dest, flags); err != nil {
		return err
	}
	return applyPropagation(dest, pm.propagation)
}

// linkComounted links each controller of a v1 hierarchy that mounts
// several ("cpu,cpuacct") to it, as the host does (/sys/fs/cgroup/cpu ->
// cpu,cpuacct): programs read /sys/fs/cgroup/cpu/cpu.shares.
func linkComounted(dest string, h CgroupMount) error {
	name := filepath.Base(h.Mountpoint)
	if h.FSType != "cgroup" || !strings.Contains(name, ",") {
		return nil
	}
	for _, ctrl := range strings.Split(name, ",") {
		if ctrl == "" || ctrl == name {
			continue
		}
		if err := os.Symlink(name, filepath.Join(dest, ctrl)); err != nil && !os.IsExist(err) {
			return fmt.Errorf("link cgroup controller %s to %s: %w", ctrl, name, err)
		}
	}
	return nil
}

// mountFunc mounts like mount(2); mountAt checks the destination first.
type mountFunc func(source, dest, typ string, flags uintptr, data string) error

// mountPlain is mount(2) for destinations init made itself.
func mountPlain(source, dest, typ string, flags uintptr, data string) error {
	if err := unix.Mount(source, dest, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) to %s: %w", source, typ, dest, err)
	}
	return nil
}

// mountHierarchy mounts h at dest with mount: a new cgroup filesystem in a
// cgroup namespace (flags apply at once), else a bind of the container's
// directory (restricted afterwards).
func (v *cgroupView) mountHierarchy(h CgroupMount, dest string, flags uintptr, mount mountFunc) error {
	if v.cgroupns {
		opts := ""
		if h.FSType == "cgroup" {
			var keep []string
			for _, o := range strings.Split(h.Options, ",") {
				if o != "rw" && o != "ro" {
					keep = append(keep, o)
				}
			}
			opts = strings.Join(keep, ",")
		}
		return mount(h.FSType, dest, h.FSType, flags, opts)
	}
	src, err := v.source(h)
	if err != nil {
		return err
	}
	return mount(src, dest, "", unix.MS_BIND, "")
}

// restrictTree applies flags (nosuid, nodev, noexec and read-only when
// asked) to the tmpfs at dest and every bind below it: in one
// mount_setattr call where the kernel has it (5.12), else one remount
// per mount.
func restrictTree(dest string, hosts []CgroupMount, flags uintptr) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if flags&unix.MS_RDONLY != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW, &attr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("restrict %s: %w", dest, err)
	}
	for _, h := range hosts {
		if err := remountBind(filepath.Join(dest, filepath.Base(h.Mountpoint)), flags); err != nil {
			return err
		}
	}
	return remountTmpfs(dest, flags)
}

// remountTmpfs applies flags to the tmpfs at dest when they ask for
// read-only (it was mounted nosuid, nodev and noexec already).
func remountTmpfs(dest string, flags uintptr) error {
	if flags&unix.MS_RDONLY == 0 {
		return nil
	}
	if err := unix.Mount("", dest, "", unix.MS_REMOUNT|flags, "mode=755"); err != nil {
		return fmt.Errorf("remount %s read-only: %w", dest, err)
	}
	return nil
}

// ownCgroupPath returns this process's cgroup in hierarchy h, from
// /proc/self/cgroup (read once).
func (v *cgroupView) ownCgroupPath(h CgroupMount) (string, error) {
	if v.own == nil {
		data, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return "", fmt.Errorf("read /proc/self/cgroup: %w", err)
		}
		v.own = make(map[string]string)
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[0] == "0" && parts[1] == "" {
				v.own[""] = parts[2]
				continue
			}
			for _, ctrl := range strings.Split(parts[1], ",") {
				if ctrl != "" {
					v.own[ctrl] = parts[2]
				}
			}
		}
	}
	if h.FSType == "cgroup2" {
		if p, ok := v.own[""]; ok {
			return p, nil
		}
		return "/", nil
	}
	for _, ctrl := range strings.Split(h.Options, ",") {
		if p, ok := v.own[ctrl]; ok && ctrl != "" {
			return p, nil
		}
	}
	return "/", nil
}

// readHostCgroupMounts lists the cgroup hierarchies mounted on the host,
// one per hierarchy (the first mount of each wins).
func readHostCgroupMounts() ([]CgroupMount, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []CgroupMount
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
		out = append(out, CgroupMount{Mountpoint: m.Mountpoint, Root: m.Root, FSType: m.FSType, Options: m.VFSOptions})
	}
	return out, nil
}
