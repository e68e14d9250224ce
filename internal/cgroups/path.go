package cgroups

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// resolveCgroupPath returns the cgroup a container gets in one hierarchy,
// as a clean absolute path relative to the hierarchy's mountpoint, with
// runc's cgroupfs semantics: an absolute cgroupsPath is taken from the
// mountpoint, a relative one is joined under own (the caller's cgroup,
// relative to the mountpoint), and an empty one means own/containerID.
// A path that climbs above the mountpoint with ".." is rejected.
func resolveCgroupPath(own, cgroupsPath, containerID string) (string, error) {
	inner := cgroupsPath
	if inner == "" {
		if containerID == "" || containerID == "." || containerID == ".." || strings.Contains(containerID, "/") {
			return "", fmt.Errorf("container id %q cannot name a cgroup: %w", containerID, errdefs.ErrInvalidArgument)
		}
		inner = containerID
	}
	base := own
	if path.IsAbs(inner) {
		base = "/"
	}
	if !path.IsAbs(base) {
		return "", fmt.Errorf("own cgroup %q is not absolute: %w", base, errdefs.ErrInvalidArgument)
	}
	depth := 0
	for _, c := range strings.Split(path.Clean(base), "/") {
		if c != "" {
			depth++
		}
	}
	for _, c := range strings.Split(inner, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("cgroup path %q escapes the hierarchy: %w", cgroupsPath, errdefs.ErrInvalidArgument)
			}
		default:
			depth++
		}
	}
	return path.Join(base, inner), nil
}

// relativeToRoot converts a cgroup path as /proc/self/cgroup shows it
// (relative to the hierarchy's real root) into one relative to a mount of
// the hierarchy whose root (mountinfo field 4) is root.
func relativeToRoot(cgroup, root string) (string, error) {
	cgroup, root = path.Clean(cgroup), path.Clean(root)
	if root == "/" {
		return cgroup, nil
	}
	if cgroup == root {
		return "/", nil
	}
	if rest, ok := strings.CutPrefix(cgroup, root+"/"); ok {
		return "/" + rest, nil
	}
	return "", fmt.Errorf("cgroup %s is outside the mounted part %s of its hierarchy: %w", cgroup, root, errdefs.ErrInvalidArgument)
}
