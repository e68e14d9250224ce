package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// RemoveCgroup kills every process left in the cgroup rel ("/bbe-xxx",
// "/berth/<id>") and below it, in every hierarchy (cgroup v1 controllers
// and the unified one), then removes its directories, deepest first.
// Processes are left only when a daemon could not remove its containers;
// killed says how many there were. A cgroup that does not exist is not
// an error.
func RemoveCgroup(rel string) (killed int, err error) {
	var dirs []string
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", rel))
	if d := filepath.Join("/sys/fs/cgroup", rel); isDir(d) {
		roots = append(roots, d)
	}
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	// Deepest first, so each directory is empty of children when removed.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	seen := map[int]bool{}
	for _, d := range dirs {
		for _, pid := range cgroupProcs(d) {
			if !seen[pid] {
				seen[pid] = true
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	var errs []error
	for _, d := range dirs {
		// A killed process leaves its cgroup once it is reaped.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return len(seen), errors.Join(errs...)
}

// cgroupProcs returns the processes in the cgroup directory d.
func cgroupProcs(d string) []int {
	raw, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(raw)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
