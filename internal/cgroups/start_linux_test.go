package cgroups

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestStartIn: the process is born in every directory of the cgroup, and
// no thread of the caller stays there once the thread that started it
// has ended (it is never handed back to the caller's goroutines).
func TestStartIn(t *testing.T) {
	m := newTestManager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if err := StartIn(m, cmd.SysProcAttr, cmd.Start); err != nil {
		t.Fatal(err)
	}
	// Registered after the manager's clean-up, so it runs before it.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	for _, dir := range m.Paths() {
		procs, err := readProcs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(procs, pid) {
			t.Errorf("%s/cgroup.procs = %v, want it to hold the started process %d", dir, procs, pid)
		}
	}
	// The starting thread leaves with its goroutine, just after StartIn
	// returned: wait for that, not for a set time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := m.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(pids, []int{pid}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup holds %v, want only the started process %d: a thread of the caller stayed in it", pids, pid)
		}
		time.Sleep(time.Millisecond)
	}
}
