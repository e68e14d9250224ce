package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/testutil"
)

// testTimeout bounds every wait for a condition in the daemon's tests.
const testTimeout = 30 * time.Second

// testDaemon is a daemon on temporary roots with the busybox image
// imported as "busybox:latest", and the events it published.
type testDaemon struct {
	*Daemon
	cfg Config
	dir string

	// sub feeds events; recorded is closed once its last event is in.
	sub      *Subscription
	recorded chan struct{}

	mu   sync.Mutex
	seen []Event
}

// noLiveRestore is a newTestDaemon option: closing the daemon stops its
// containers.
func noLiveRestore(c *Config) { c.LiveRestore = false }

// nativeStorage is a newTestDaemon option: the native storage driver,
// whose diff compares full trees and whose layers are bind mounts.
func nativeStorage(c *Config) { c.StorageDriver = "native" }

// newTestDaemon starts a daemon with its own roots, bridge and firewall
// table, live restore on (opts change the config) and the berth binaries
// of testutil.Binaries. Cleanup removes every container, closes the
// daemon, fails the test if a container left a mount, cgroup or process
// behind, deletes the bridge and table and fails if a mount is left under
// its roots.
func newTestDaemon(t *testing.T, opts ...func(*Config)) *testDaemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests run containers: run them as root")
	}
	dir, err := os.MkdirTemp("", "bd-")
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	bins := testutil.Binaries(t)
	cfg := Config{
		DataRoot:      filepath.Join(dir, "data"),
		ExecRoot:      filepath.Join(dir, "exec"),
		StorageDriver: "overlay",
		Bridge:        "bd" + hex.EncodeToString(b[:]),
		ShimPath:      filepath.Join(bins, "berth-shim"),
		RuntimePath:   filepath.Join(bins, "berth-runtime"),
		InitPath:      filepath.Join(bins, "berth-init"),
		LiveRestore:   true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	td := &testDaemon{cfg: cfg, dir: dir}
	t.Cleanup(func() {
		if td.Daemon != nil {
			td.removeAll(t)
			td.close(t)
			td.checkLeaks(t)
		}
		if td.cleanupHost(t) {
			os.RemoveAll(dir)
		}
	})
	td.open(t)
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := td.ImportImage(context.Background(), bytes.NewReader(layer), image.ImportOptions{Ref: "busybox:latest", Changes: []string{`CMD ["sh"]`}}); err != nil {
		t.Fatal(err)
	}
	return td
}

// open (re)opens the daemon on the test's roots and records its events.
func (td *testDaemon) open(t *testing.T) {
	t.Helper()
	d, err := New(context.Background(), td.cfg)
	if err != nil {
		t.Fatalf("new daemon: %v", err)
	}
	td.Daemon = d
	_, td.sub = d.Events().Subscribe(time.Time{})
	td.recorded = make(chan struct{})
	go func(c <-chan Event, done chan<- struct{}) {
		defer close(done)
		for ev := range c {
			td.mu.Lock()
			td.seen = append(td.seen, ev)
			td.mu.Unlock()
		}
	}(td.sub.C, td.recorded)
}

// close closes the daemon; the events it published stay recorded.
func (td *testDaemon) close(t *testing.T) {
	t.Helper()
	td.sub.Close()
	<-td.recorded
	if err := td.Close(); err != nil {
		t.Errorf("close daemon: %v", err)
	}
	td.Daemon = nil
}

// removeAll force-removes every container.
func (td *testDaemon) removeAll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := td.Containers(ctx, ListContainersOptions{All: true})
	if err != nil {
		t.Errorf("list containers: %v", err)
		return
	}
	for _, c := range list {
		if err := td.RemoveContainer(ctx, c.ID, RemoveContainerOptions{Force: true, Volumes: true}); err != nil {
			t.Errorf("remove container %s: %v", c.ID, err)
		}
	}
}

// checkLeaks fails the test if a container the daemon created (as its
// events tell) left a mount, cgroup or process behind. Processes may
// still be exiting: it waits for them up to testTimeout.
func (td *testDaemon) checkLeaks(t *testing.T) {
	t.Helper()
	td.mu.Lock()
	var ids []string
	for _, ev := range td.seen {
		if ev.Type == "container" && ev.Action == "create" {
			ids = append(ids, ev.ID)
		}
	}
	td.mu.Unlock()
	for _, id := range ids {
		var leaks []string
		var err error
		if !within(func() bool { leaks, err = testutil.Leaks(id); return err == nil && len(leaks) == 0 }) {
			t.Errorf("container %s leaked %q (%v)", id, leaks, err)
		}
	}
}

// cleanupHost deletes the daemon's bridge and firewall table and fails if
// mounts are left under its directory; it reports whether none are.
func (td *testDaemon) cleanupHost(t *testing.T) bool {
	t.Helper()
	if l, err := netlink.LinkByName(td.cfg.Bridge); err == nil {
		netlink.LinkDel(l)
	}
	if fw, err := firewall.New(firewallTable(td.cfg.Bridge)); err == nil {
		fw.Cleanup()
	}
	// The network namespace directory stays a mount point while the
	// daemon is down (live restore), as Docker's /run/docker/netns does;
	// the test removes it.
	unix.Unmount(filepath.Join(td.cfg.ExecRoot, "netns"), unix.MNT_DETACH)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(td.dir))
	if err != nil {
		t.Errorf("read mounts: %v", err)
		return false
	}
	for _, m := range mounts {
		t.Errorf("left a mount: %s (%s)", m.Mountpoint, m.FSType)
	}
	return len(mounts) == 0
}

// ctxT is a context that ends with the test, two minutes at the most.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// poll calls cond until it holds, failing the test after testTimeout.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !within(cond) {
		t.Fatalf("%s: not within %v", what, testTimeout)
	}
}

// within calls cond until it holds or testTimeout passes, and reports
// whether it held.
func within(cond func() bool) bool {
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// create makes a container of cfg (of busybox unless cfg names an image).
func (td *testDaemon) create(t *testing.T, name string, cfg *api.Config, hc *api.HostConfig) string {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	res, err := td.CreateContainer(ctxT(t), CreateContainerOptions{Name: name, Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res.ID
}

// run creates and starts a busybox:latest container running cfg's command
// (a sleep if it has none).
func (td *testDaemon) run(t *testing.T, cfg *api.Config, hc *api.HostConfig) string {
	t.Helper()
	if cfg == nil {
		cfg = &api.Config{}
	}
	cfg.Image = "busybox:latest"
	if len(cfg.Cmd) == 0 {
		cfg.Cmd = []string{"sleep", "1000"}
	}
	id := td.create(t, "", cfg, hc)
	if err := td.StartContainer(ctxT(t), id); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return id
}

// startAndWait starts container ref and waits for cond (WaitContainer's
// condition) to be met.
func (td *testDaemon) startAndWait(t *testing.T, ref string, cond api.WaitCondition) WaitResult {
	t.Helper()
	ctx := ctxT(t)
	ch, err := td.WaitContainer(ctx, ref, cond)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := td.StartContainer(ctx, ref); err != nil {
		t.Fatalf("start: %v", err)
	}
	return waitFor(t, ch)
}

// waitFor waits on a WaitContainer channel with the test's deadline.
func waitFor(t *testing.T, ch <-chan WaitResult) WaitResult {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("wait channel closed without a result")
		}
		return r
	case <-time.After(testTimeout):
		t.Fatal("container did not exit in time")
	}
	return WaitResult{}
}

// logs returns the container's whole log, stream by stream.
func (td *testDaemon) logs(t *testing.T, id string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	_, err := td.ContainerLogs(ctxT(t), id, LogsOptions{Stdout: true, Stderr: true, Tail: -1}, func(l LogEntry) error {
		if l.Stream == "stderr" {
			errb.Write(l.Line)
		} else {
			out.Write(l.Line)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	return out.String(), errb.String()
}

// exec runs cmd in container id with opts and returns its output and
// exit code, checking that the ended exec is inspected as such.
func (td *testDaemon) exec(t *testing.T, id string, opts ExecCreateOptions, stdin io.Reader) (stdout, stderr string, code int) {
	t.Helper()
	ctx := ctxT(t)
	opts.AttachStdout, opts.AttachStderr = true, true
	opts.AttachStdin = stdin != nil
	eid, err := td.CreateExec(ctx, id, opts)
	if err != nil {
		t.Fatalf("create exec %q: %v", opts.Cmd, err)
	}
	var out, errOut bytes.Buffer
	if err := td.StartExec(ctx, eid, ExecStartOptions{Stdin: stdin, Stdout: &out, Stderr: &errOut}); err != nil {
		t.Fatalf("start exec %q: %v", opts.Cmd, err)
	}
	info, err := td.InspectExec(ctx, eid)
	if err != nil {
		t.Fatalf("inspect exec: %v", err)
	}
	if info.Running || info.ExitCode == nil || !info.CanRemove || info.Pid <= 0 {
		t.Fatalf("exec %q after its end: %+v", opts.Cmd, info)
	}
	return out.String(), errOut.String(), *info.ExitCode
}

// waitEvent waits for an event of container id that satisfies ok.
func (td *testDaemon) waitEvent(t *testing.T, id string, ok func(Event) bool) Event {
	t.Helper()
	var found Event
	poll(t, "event of "+id, func() bool {
		td.mu.Lock()
		defer td.mu.Unlock()
		for _, ev := range td.seen {
			if ev.ID == id && ok(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}
