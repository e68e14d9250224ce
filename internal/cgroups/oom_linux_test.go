package cgroups

import (
	"os"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// receive waits for a value or the channel's closing; the timeout only
// bounds a failing test.
func receive(t *testing.T, ch <-chan struct{}) (ok bool) {
	t.Helper()
	select {
	case _, ok = <-ch:
		return ok
	case <-time.After(30 * time.Second):
		t.Fatal("no event and channel not closed after 30s")
		return false
	}
}

// oomKill fills a memory-limited cgroup until the kernel kills the helper,
// and checks what m and NotifyOOM report.
func oomKill(t *testing.T, m Manager, limit *specs.LinuxMemory) {
	t.Helper()
	c := startHelper(t, "serve")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: limit}); err != nil {
		t.Fatal(err)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Fatalf("OOMKillCount() before = %d, %v; want 0", n, err)
	}
	ch, cancel, err := NotifyOOM(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	c.send(t, 'a')
	if !c.killedBySIGKILL() {
		t.Fatalf("helper exited with %v, want SIGKILL from the OOM killer", c.wait())
	}
	if !receive(t, ch) {
		t.Fatal("NotifyOOM channel closed without an event")
	}
	if n, err := m.OOMKillCount(); err != nil || n < 1 {
		t.Errorf("OOMKillCount() = %d, %v; want >= 1", n, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.EventCount.OOMKill < 1 || st.Memory.Usage.Failcnt == 0 {
		t.Errorf("memory stats = %+v, want an oom_kill and a failcnt", st.Memory.EventCount)
	}
	cancel()
	cancel() // idempotent
	for range ch {
		// Drain: the channel must be closed once cancel returns.
	}
}

func TestV1OOM(t *testing.T) {
	m := newTestV1Manager(t)
	dir, ok := m.paths["memory"]
	if !ok {
		t.Skip("no v1 memory hierarchy")
	}
	mem := &specs.LinuxMemory{Limit: i64(64 << 20)}
	if exists(dir, "memory.memsw.limit_in_bytes") {
		mem.Swap = i64(64 << 20)
	}
	oomKill(t, m, mem)
}

func TestV2OOM(t *testing.T) {
	m, h := newTestV2Manager(t)
	if !slices.Contains(h.Subsystems, "memory") {
		t.Skip("memory controller not available on cgroup2 (hybrid host)")
	}
	oomKill(t, m, &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)})
}

func TestNotifyOOMV1ClosesOnRemoval(t *testing.T) {
	m := newTestV1Manager(t)
	if _, ok := m.paths["memory"]; !ok {
		t.Skip("no v1 memory hierarchy")
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	fds := openFDs(t)
	ch, cancel, err := NotifyOOM(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if receive(t, ch) {
		t.Error("got an OOM event from a cgroup that was only removed")
	}
	// The watch released its descriptors when it ended, before any cancel.
	if n := openFDs(t); n != fds {
		t.Errorf("open descriptors: %d before NotifyOOM, %d after its channel closed", fds, n)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestNotifyOOMV2WithoutMemory(t *testing.T) {
	m, h := newTestV2Manager(t)
	if slices.Contains(h.Subsystems, "memory") {
		t.Skip("memory controller available on cgroup2")
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NotifyOOM(m); err == nil {
		t.Error("NotifyOOM without a memory controller: no error")
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount() without a memory controller = %d, %v; want 0, nil", n, err)
	}
}

// TestWatchCounter exercises the v2 watcher behind NotifyOOM on a file
// every cgroup2 directory has: cgroup.events "populated".
func TestWatchCounter(t *testing.T) {
	m, _ := newTestV2Manager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	ch, cancel, err := watchCounter(m.dir, "cgroup.events", "populated")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	c := startHelper(t, "serve")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if !receive(t, ch) {
		t.Fatal("channel closed instead of reporting populated 0 -> 1")
	}
	// populated 1 -> 0 is a decrease: no event; removal closes the channel.
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if receive(t, ch) {
		t.Error("event for a decrease of the counter")
	}
}
