package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// unifiedMountpoint is where a pure v2 host mounts cgroup2.
const unifiedMountpoint = "/sys/fs/cgroup"

var isUnified = sync.OnceValue(func() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(unifiedMountpoint, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
})

// IsUnified reports whether the host is a pure cgroup v2 host (cgroup2
// mounted at /sys/fs/cgroup). The answer is computed once.
func IsUnified() bool {
	return isUnified()
}

// HostMounts lists the cgroup hierarchies mounted on the host, one entry
// per hierarchy (a hierarchy mounted twice is listed at its first
// mountpoint), in mountinfo order.
func HostMounts() ([]Hierarchy, error) {
	hs, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	for i := range hs {
		if hs[i].FSType != "cgroup2" {
			continue
		}
		s, err := readFile(hs[i].Mountpoint, "cgroup.controllers")
		if err != nil {
			return nil, err
		}
		hs[i].Subsystems = strings.Fields(s)
	}
	return hs, nil
}

// cgroupMounts reads the cgroup mounts from /proc/self/mountinfo (or the
// cache, see CacheMounts), without the cgroup2 controllers (Subsystems is
// nil for cgroup2).
func cgroupMounts() ([]Hierarchy, error) {
	if hs, ok := cachedCgroupMounts(); ok {
		return hs, nil
	}
	hs, err := readCgroupMounts()
	if err == nil {
		saveCgroupMounts(hs)
	}
	return hs, err
}

// readCgroupMounts is cgroupMounts from /proc/self/mountinfo.
func readCgroupMounts() ([]Hierarchy, error) {
	infos, err := readCgroupMountinfo()
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var hs []Hierarchy
	seen := make(map[string]bool)
	for _, mi := range infos {
		h := Hierarchy{
			Mountpoint: mi.Mountpoint,
			FSType:     mi.FSType,
			Root:       mi.Root,
			Options:    mi.VFSOptions,
		}
		key := "cgroup2"
		if mi.FSType == "cgroup" {
			h.Subsystems = v1Subsystems(mi.VFSOptions)
			if len(h.Subsystems) == 0 {
				continue
			}
			key = strings.Join(h.Subsystems, ",")
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		hs = append(hs, h)
	}
	return hs, nil
}

// v1Subsystems extracts the controllers (and "name=" of a named
// hierarchy) from the super-block options of a v1 mount.
func v1Subsystems(opts string) []string {
	var subs []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "rw", o == "ro", o == "noprefix", o == "xattr", o == "clone_children",
			o == "cpuset_v2_mode", o == "favordynmods", o == "none", o == "",
			strings.HasPrefix(o, "release_agent="):
			continue
		}
		subs = append(subs, o)
	}
	return subs
}

// ownCgroups reads /proc/self/cgroup: v1 controller (or "name=...") ->
// cgroup path, and "" -> the cgroup2 path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	own := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	return own, nil
}

// hostLayout is the host's cgroup mounts sorted by role.
type hostLayout struct {
	v1      []Hierarchy // controller and named hierarchies
	unified *Hierarchy  // the cgroup2 mount, if any
	// hasV1Controllers is true if some v1 hierarchy carries a real
	// controller, which makes the host v1 or hybrid.
	hasV1Controllers bool
}

// layoutOf sorts the hierarchies cgroupMounts found.
func layoutOf(hs []Hierarchy) (*hostLayout, error) {
	l := &hostLayout{}
	for i, h := range hs {
		if h.FSType == "cgroup2" {
			if l.unified == nil {
				l.unified = &hs[i]
			}
			continue
		}
		l.v1 = append(l.v1, h)
		for _, s := range h.Subsystems {
			if !strings.HasPrefix(s, "name=") {
				l.hasV1Controllers = true
			}
		}
	}
	if !l.hasV1Controllers && l.unified == nil {
		return nil, fmt.Errorf("no cgroup filesystem is mounted: %w", errdefs.ErrUnavailable)
	}
	return l, nil
}

// dirFor returns the directory of cgroupsPath in hierarchy h, own being
// the caller's cgroup in that hierarchy.
func dirFor(h Hierarchy, own, cgroupsPath, containerID string) (string, error) {
	var base string
	if !filepath.IsAbs(cgroupsPath) {
		if own == "" {
			return "", fmt.Errorf("own cgroup in %s is unknown: %w", h.Mountpoint, errdefs.ErrUnavailable)
		}
		var err error
		if base, err = relativeToRoot(own, h.Root); err != nil {
			return "", err
		}
	}
	rel, err := resolveCgroupPath(base, cgroupsPath, containerID)
	if err != nil {
		return "", err
	}
	return filepath.Join(h.Mountpoint, rel), nil
}

// mountFor finds the hierarchy of layout l that holds dir.
func mountFor(hs []Hierarchy, dir string) (Hierarchy, bool) {
	for _, h := range hs {
		if dir == h.Mountpoint || strings.HasPrefix(dir, h.Mountpoint+"/") {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// readCgroupMountinfo returns the cgroup and cgroup2 entries of
// /proc/self/mountinfo. Only their lines are parsed: on a host with many
// containers nearly every line is an overlay or nsfs mount, and parsing
// them all was most of the time a runtime spent reading its cgroups.
func readCgroupMountinfo() ([]*mountinfo.Info, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var keep []byte
	for line := range bytes.Lines(data) {
		// The filesystem type follows the " - " separator.
		if _, after, ok := bytes.Cut(line, []byte(" - ")); ok && (bytes.HasPrefix(after, []byte("cgroup ")) || bytes.HasPrefix(after, []byte("cgroup2 "))) {
			keep = append(keep, line...)
		}
	}
	return mountinfo.GetMountsFromReader(bytes.NewReader(keep), mountinfo.FSTypeFilter("cgroup", "cgroup2"))
}
