package oci

import (
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultShmSize is the size of /dev/shm when HostConfig.ShmSize is 0.
const defaultShmSize = 64 * 1024 * 1024

// InitPathInContainer is where the init binary (HostConfig.Init) is
// mounted in the container, and the process's first argument.
const InitPathInContainer = "/sbin/berth-init"

// defaultMounts returns Docker's default mounts: proc, a tmpfs /dev with
// devpts, mqueue and a /dev/shm tmpfs of shmSize bytes, and a read-only
// sysfs and cgroup file system.
func defaultMounts(shmSize int64) []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}},
	}
}

// etcMount bind-mounts the host file src at dst, read-only when the rootfs
// is (Docker's rule for /etc/hosts, /etc/resolv.conf and /etc/hostname).
func etcMount(src, dst string, readonly bool) specs.Mount {
	opts := []string{"rbind"}
	if readonly {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append(opts, "rprivate")}
}

// tmpfsFlags are the mount flags a --tmpfs option may name, each with the
// flag it sets or clears: a later option for the same flag wins.
var tmpfsFlags = map[string]string{
	"ro": "ro", "rw": "ro",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"exec": "exec", "noexec": "exec",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync", "remount": "remount",
	"mand": "mand", "nomand": "mand",
	"atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"bind": "bind", "rbind": "bind",
	"tmpcopyup": "tmpcopyup", "notmpcopyup": "tmpcopyup",
	"shared": "propagation", "rshared": "propagation", "slave": "propagation", "rslave": "propagation",
	"private": "propagation", "rprivate": "propagation", "unbindable": "propagation", "runbindable": "propagation",
}

// tmpfsData are the key=value options of tmpfs.
var tmpfsData = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}

// tmpfsMount returns the mount for --tmpfs dest:data, with Docker's
// defaults (noexec, nosuid, nodev, rprivate) overridden by data's options.
func tmpfsMount(dest, data string) (specs.Mount, error) {
	if !path.IsAbs(dest) {
		return specs.Mount{}, invalidf("invalid tmpfs mount %q: mount path must be absolute", dest)
	}
	dest = path.Clean(dest)
	if dest == "/" {
		return specs.Mount{}, invalidf("invalid tmpfs mount %q: destination can't be '/'", dest)
	}
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	merged, err := mergeTmpfsOptions(opts)
	if err != nil {
		return specs.Mount{}, invalidf("invalid tmpfs mount %s: %v", dest, err)
	}
	return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: merged}, nil
}

// mergeTmpfsOptions removes options overridden by a later one (noexec by
// exec, size=1m by size=2m), keeping the survivors in order.
func mergeTmpfsOptions(opts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		if o == "defaults" {
			continue
		}
		key, isFlag := tmpfsFlags[o]
		if !isFlag {
			k, _, ok := strings.Cut(o, "=")
			if !ok || !slices.Contains(tmpfsData, k) {
				return nil, invalidf("invalid tmpfs option %q", o)
			}
			key = "data:" + k
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, o)
	}
	slices.Reverse(out)
	return out, nil
}

// tmpfsMounts returns HostConfig.Tmpfs as mounts, sorted by destination.
func tmpfsMounts(tmpfs map[string]string) ([]specs.Mount, error) {
	dests := make([]string, 0, len(tmpfs))
	for d := range tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	var out []specs.Mount
	for _, d := range dests {
		m, err := tmpfsMount(d, tmpfs[d])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// assembleMounts puts the spec's mounts together, as Docker does: the
// defaults (with those a user mount replaces removed, every /dev/... one
// when the user mounts /dev, and /dev/shm with --ipc none), made read-only
// with the rootfs except the /proc and /dev ones; /sys and the cgroup file
// system made writable for a privileged container; then the user's mounts
// in order.
func assembleMounts(defaults, user []specs.Mount, readonlyRootfs, noShm, rwSys, rwCgroup bool) ([]specs.Mount, error) {
	userDest := map[string]bool{}
	for _, m := range user {
		d := path.Clean(m.Destination)
		if !path.IsAbs(d) {
			return nil, invalidf("invalid mount destination %q: mount path must be absolute", m.Destination)
		}
		if userDest[d] {
			return nil, invalidf("Duplicate mount point: %s", d)
		}
		userDest[d] = true
	}
	out := make([]specs.Mount, 0, len(defaults)+len(user))
	for _, m := range defaults {
		switch {
		case userDest[m.Destination]:
			continue
		case userDest["/dev"] && strings.HasPrefix(m.Destination, "/dev/"):
			continue
		case noShm && m.Destination == "/dev/shm":
			continue
		}
		m.Options = slices.Clone(m.Options)
		if readonlyRootfs && !slices.Contains([]string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"}, m.Destination) &&
			!slices.Contains(m.Options, "ro") {
			m.Options = append(m.Options, "ro")
		}
		if (rwSys && m.Destination == "/sys") || (rwCgroup && m.Type == "cgroup") {
			m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return o == "ro" })
		}
		out = append(out, m)
	}
	for _, m := range user {
		m.Options = slices.Clone(m.Options)
		out = append(out, m)
	}
	return out, nil
}
