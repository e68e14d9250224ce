package host

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestRemoveCgroup puts a process in a nested cgroup of two hierarchies
// and checks that RemoveCgroup kills it and removes every directory.
func TestRemoveCgroup(t *testing.T) {
	rel := fmt.Sprintf("/bbe-test-%d", os.Getpid())
	var hierarchies []string
	for _, h := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"} {
		if isDir(h) {
			hierarchies = append(hierarchies, h)
		}
	}
	if len(hierarchies) == 0 {
		t.Skip("no cgroup v1 pids/memory or unified hierarchy at /sys/fs/cgroup")
	}
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for _, h := range hierarchies {
			os.Remove(filepath.Join(h, rel, "child"))
			os.Remove(filepath.Join(h, rel))
		}
	})
	for _, h := range hierarchies {
		dir := filepath.Join(h, rel, "child")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatalf("move the process into %s: %v", dir, err)
		}
	}
	killed, err := RemoveCgroup(rel)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Errorf("killed %d processes, want 1", killed)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the process in the cgroup still runs")
	}
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join(h, rel)); !os.IsNotExist(err) {
			t.Errorf("%s still exists (stat: %v)", filepath.Join(h, rel), err)
		}
	}
	if killed, err := RemoveCgroup(rel); killed != 0 || err != nil {
		t.Errorf("RemoveCgroup of a missing cgroup = %d, %v; want 0, nil", killed, err)
	}
}
