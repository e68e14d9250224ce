package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
)

// leakCycles is how many docker run --rm cycles TestRunRmLeaks runs, and
// leakWorkers how many at a time.
const (
	leakCycles  = 200
	leakWorkers = 4
)

// daemonCounts reads berthd's open descriptors (/proc/<pid>/fd) and its
// goroutines (docker info's NGoroutines).
func daemonCounts(t *testing.T, d *Daemon, c *CLI) (fds, goroutines int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	g, err := strconv.Atoi(strings.TrimSpace(c.ok("info", "--format", "{{.NGoroutines}}")))
	if err != nil {
		t.Fatalf("docker info NGoroutines: %v", err)
	}
	return len(ents), g
}

// cgroupRoots are the cgroup hierarchies mounted on this machine (every
// v1 controller and the cgroup2 mount).
func cgroupRoots(t *testing.T) []string {
	t.Helper()
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (bool, bool) {
		return m.FSType != "cgroup" && m.FSType != "cgroup2", false
	})
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, m := range mounts {
		roots = append(roots, m.Mountpoint)
	}
	return roots
}

// TestRunRmLeaks runs docker run --rm busybox true many times and checks
// that nothing is left: mounts under the roots besides the network
// namespace directory, cgroups of those containers in any hierarchy,
// shims, veths on the daemon's bridge, network namespace files, and no
// growth of berthd's descriptors or goroutines.
func TestRunRmLeaks(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	d := e.berth
	c := e.cli(t)
	// Warm up: what the first containers set up once (bridge, firewall,
	// connection pools) is no leak.
	for range 3 {
		c.ok("run", "--rm", "busybox", "true")
	}
	fds0, g0 := daemonCounts(t, d, c)

	cids := t.TempDir()
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range leakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := c.run("", "run", "--rm", "--cidfile", filepath.Join(cids, strconv.Itoa(i)), "busybox", "true")
				if r.ExitCode != 0 || r.Stdout != "" || r.Stderr != "" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("cycle %d: %s", i, r))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range leakCycles {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d docker run --rm cycles, %d at a time: %v (%v per cycle)", leakCycles, leakWorkers, elapsed.Round(time.Millisecond), (elapsed / leakCycles).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Fatalf("%d of %d runs failed, the first:\n%s", len(failures), leakCycles, failures[0])
	}

	var ids []string
	for i := range leakCycles {
		b, err := os.ReadFile(filepath.Join(cids, strconv.Itoa(i)))
		if err != nil || len(strings.TrimSpace(string(b))) != 64 {
			t.Fatalf("cidfile of cycle %d: %q (%v)", i, b, err)
		}
		ids = append(ids, strings.TrimSpace(string(b)))
	}
	if out := c.ok("ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}

	// Network teardown may finish after the run returns (the kernel
	// destroys a namespace's veth lazily): poll for it.
	br, err := netlink.LinkByName(d.Bridge)
	if err != nil {
		t.Fatalf("the daemon's bridge %s: %v", d.Bridge, err)
	}
	netnsDir := filepath.Join(d.ExecRoot, "netns")
	var veths []string
	var nsFiles []os.DirEntry
	deadline := time.Now().Add(pollTimeout)
	for {
		links, err := netlink.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) && time.Now().Before(deadline) {
			// A concurrent change on a busy host: list again.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		veths = veths[:0]
		for _, l := range links {
			if l.Type() == "veth" && l.Attrs().MasterIndex == br.Attrs().Index {
				veths = append(veths, l.Attrs().Name)
			}
		}
		nsFiles, err = os.ReadDir(netnsDir)
		if err != nil {
			t.Fatal(err)
		}
		if (len(veths) == 0 && len(nsFiles) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(veths) > 0 {
		t.Errorf("%d veths left on %s: %v", len(veths), d.Bridge, veths)
	}
	for _, f := range nsFiles {
		t.Errorf("network namespace file left: %s", filepath.Join(netnsDir, f.Name()))
	}

	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d.Dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.Mountpoint != netnsDir {
			t.Errorf("mount left: %s (%s)", m.Mountpoint, m.FSType)
		}
	}
	roots := cgroupRoots(t)
	if len(roots) == 0 {
		t.Fatal("no cgroup hierarchy mounted")
	}
	for _, id := range ids {
		for _, root := range roots {
			if _, err := os.Stat(filepath.Join(root, "berth", id)); err == nil {
				t.Errorf("cgroup left: %s", filepath.Join(root, "berth", id))
			}
		}
	}
	for _, p := range d.shims(t) {
		t.Errorf("shim left: %d %s", p.pid, p.cmdline)
	}
	for _, p := range processes("berth-runtime", d.ExecRoot+"/") {
		t.Errorf("runtime left: %d %s", p.pid, p.cmdline)
	}

	// Descriptors and goroutines settle once the last streams close.
	var fds, g int
	for deadline := time.Now().Add(pollTimeout); ; time.Sleep(20 * time.Millisecond) {
		fds, g = daemonCounts(t, d, c)
		if fds <= fds0+3 && g <= g0+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("berthd grew: %d descriptors and %d goroutines before the cycles, %d and %d %v after", fds0, g0, fds, g, pollTimeout)
			break
		}
	}
	t.Logf("berthd: %d descriptors and %d goroutines before the cycles, %d and %d after", fds0, g0, fds, g)
}
