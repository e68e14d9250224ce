package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// cgroupRoot is where cgroup hierarchies are mounted: the v1 hierarchies and
// the hybrid "unified" one below it, or the v2 unified hierarchy itself.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupDepth bounds how deep below cgroupRoot the leak check looks for a
// container's cgroup (hierarchy, then nested parents such as a systemd
// slice or a test harness' own cgroup).
const cgroupDepth = 6

// CheckNoLeaks registers a cleanup that fails t if, once the test is over,
// the container id (or anything under paths, such as its bundle) left
// something behind: a mount in /proc/self/mountinfo whose mount point,
// source or root mentions id or lies under one of paths, a cgroup directory
// whose name contains id under /sys/fs/cgroup (every v1 hierarchy and the
// unified one, up to a few levels deep), or a process whose command line
// contains id or one of paths. The failure lists each leak.
//
// Cleanups run last-registered first: call CheckNoLeaks before registering
// the cleanup that deletes the container, so that the check runs after it.
func CheckNoLeaks(t testing.TB, id string, paths ...string) {
	t.Helper()
	if id == "" {
		t.Fatal("check leaks: empty container id")
	}
	t.Cleanup(func() {
		leaks, err := Leaks(id, paths...)
		if err != nil {
			t.Errorf("check leaks of container %s: %v", id, err)
		}
		if len(leaks) > 0 {
			t.Errorf("container %s leaked:\n\t%s", id, strings.Join(leaks, "\n\t"))
		}
	})
}

// Leaks returns what container id left behind, as CheckNoLeaks describes,
// one line per leak. It returns an error when the mounts, cgroups or
// processes cannot be listed; the leaks it found so far are still returned.
func Leaks(id string, paths ...string) ([]string, error) {
	if id == "" {
		return nil, errors.New("find leaks: empty container id")
	}
	var leaks []string
	var errs []error

	mounts, err := readMountinfo()
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if strings.Contains(m.line, id) || under(m.mountPoint, paths) || under(m.root, paths) || under(m.source, paths) {
			leaks = append(leaks, "mount "+m.line)
		}
	}

	cgroups, err := findCgroups(id)
	if err != nil {
		errs = append(errs, err)
	}
	for _, c := range cgroups {
		leaks = append(leaks, "cgroup "+c)
	}

	procs, err := findProcesses(id, paths)
	if err != nil {
		errs = append(errs, err)
	}
	leaks = append(leaks, procs...)
	return leaks, errors.Join(errs...)
}

// under reports whether p is one of dirs or lies below one of them.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		d = filepath.Clean(d)
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

type mountEntry struct {
	mountPoint, root, source string
	line                     string // the whole entry, unescaped, for messages
}

// readMountinfo parses /proc/self/mountinfo.
func readMountinfo() ([]mountEntry, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	out := make([]mountEntry, 0, len(infos))
	for _, m := range infos {
		out = append(out, mountEntry{
			root: m.Root, mountPoint: m.Mountpoint, source: m.Source,
			line: fmt.Sprintf("%d %d %s %s %s %s - %s %s %s", m.ID, m.Parent, m.Root, m.Mountpoint, m.Options, m.Optional, m.FSType, m.Source, m.VFSOptions),
		})
	}
	return out, nil
}

// mountsUnder returns the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mounts {
		if under(m.mountPoint, []string{dir}) {
			out = append(out, m.mountPoint)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// findCgroups returns the cgroup directories below cgroupRoot whose name
// contains id.
func findCgroups(id string) ([]string, error) {
	var out []string
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && dir != cgroupRoot {
				return nil // removed while walking
			}
			return err
		}
		for _, e := range entries {
			// Symlinks (cpu -> cpu,cpuacct) are not followed: their
			// target is walked under its own name.
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if strings.Contains(e.Name(), id) {
				out = append(out, p)
				continue
			}
			if depth < cgroupDepth {
				if err := walk(p, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if _, err := os.Stat(cgroupRoot); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err := walk(cgroupRoot, 1); err != nil {
		return out, fmt.Errorf("find cgroups: %w", err)
	}
	return out, nil
}

// findProcesses describes the processes, other than this one, whose command
// line contains id or one of paths.
func findProcesses(id string, paths []string) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("find processes: %w", err)
	}
	self := os.Getpid()
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
		match := strings.Contains(cmdline, id)
		for _, p := range paths {
			match = match || strings.Contains(cmdline, filepath.Clean(p))
		}
		if match {
			out = append(out, fmt.Sprintf("process %d: %s", pid, cmdline))
		}
	}
	return out, nil
}
