package cgroups

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	"github.com/berth-project/berth/internal/errdefs"
)

// New returns the Manager of the cgroup for cgroupsPath on this host,
// creating nothing. The host mode (v1, hybrid or unified) comes from
// /proc/self/mountinfo. Paths follow runc's cgroupfs driver: an absolute
// cgroupsPath is relative to each hierarchy's mountpoint, a relative one
// is joined under the caller's own cgroup in that hierarchy (from
// /proc/self/cgroup), and an empty one means <own cgroup>/<containerID>.
// A path whose ".." would leave the hierarchy is ErrInvalidArgument.
func New(cgroupsPath, containerID string) (Manager, error) {
	hs, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	layout, err := layoutOf(hs)
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if !filepath.IsAbs(cgroupsPath) {
		if own, err = ownCgroups(); err != nil {
			return nil, err
		}
	}
	m, err := newManager(layout, own, cgroupsPath, containerID)
	switch m := m.(type) {
	case *v1Manager:
		m.hier = hs
	case *v2Manager:
		m.hier = hs
	}
	return m, err
}

// Hierarchies returns the host's cgroup hierarchies as m found them when
// New or Load made it (mountinfo order, one entry per hierarchy), so that
// a caller that needs them again (the container's init, to mount
// /sys/fs/cgroup) need not read mountinfo again. Nil if m does not know.
func Hierarchies(m Manager) []Hierarchy {
	switch m := m.(type) {
	case *v1Manager:
		return m.hier
	case *v2Manager:
		return m.hier
	}
	return nil
}

// newManager picks the implementation for the host layout and resolves
// the directories; own is the caller's cgroups as ownCgroups returns them.
func newManager(layout *hostLayout, own map[string]string, cgroupsPath, containerID string) (Manager, error) {
	if !layout.hasV1Controllers {
		dir, err := dirFor(*layout.unified, own[""], cgroupsPath, containerID)
		if err != nil {
			return nil, err
		}
		return &v2Manager{dir: dir, mountpoint: layout.unified.Mountpoint}, nil
	}
	m := &v1Manager{paths: make(map[string]string), mounts: make(map[string]string)}
	for _, h := range layout.v1 {
		dir, err := dirFor(h, own[h.Subsystems[0]], cgroupsPath, containerID)
		if err != nil {
			return nil, err
		}
		for _, s := range h.Subsystems {
			m.paths[s] = dir
			m.mounts[s] = h.Mountpoint
		}
	}
	if layout.unified != nil {
		dir, err := dirFor(*layout.unified, own[""], cgroupsPath, containerID)
		if err != nil {
			return nil, err
		}
		m.unified = &v2Manager{dir: dir, mountpoint: layout.unified.Mountpoint, hybrid: true}
	}
	return m, nil
}

// Load reopens the Manager whose Paths() were saved. A map with only the
// "" key is a v2 cgroup; otherwise it is v1, with "" the unified directory
// of a hybrid host. Every path must lie in a cgroup hierarchy mounted on
// this host.
func Load(paths map[string]string) (Manager, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("load cgroup: no paths: %w", errdefs.ErrInvalidArgument)
	}
	hs, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	check := func(key, dir string, fstype string) (Hierarchy, error) {
		if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
			return Hierarchy{}, fmt.Errorf("load cgroup: path %q for %q is not clean and absolute: %w", dir, key, errdefs.ErrInvalidArgument)
		}
		h, ok := mountFor(hs, dir)
		if !ok || h.FSType != fstype {
			return Hierarchy{}, fmt.Errorf("load cgroup: %s is not in a mounted %s hierarchy: %w", dir, fstype, errdefs.ErrInvalidArgument)
		}
		return h, nil
	}
	var unified *v2Manager
	if dir, ok := paths[""]; ok {
		h, err := check("", dir, "cgroup2")
		if err != nil {
			return nil, err
		}
		unified = &v2Manager{dir: dir, mountpoint: h.Mountpoint, hier: hs}
	}
	if len(paths) == 1 && unified != nil {
		return unified, nil
	}
	m := &v1Manager{paths: make(map[string]string), mounts: make(map[string]string), unified: unified, hier: hs}
	if unified != nil {
		unified.hybrid = true
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			continue
		}
		h, err := check(k, paths[k], "cgroup")
		if err != nil {
			return nil, err
		}
		if !slices.Contains(h.Subsystems, k) {
			return nil, fmt.Errorf("load cgroup: %s is not in the %s hierarchy: %w", paths[k], k, errdefs.ErrInvalidArgument)
		}
		m.paths[k] = paths[k]
		m.mounts[k] = h.Mountpoint
	}
	return m, nil
}
