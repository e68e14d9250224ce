package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/testutil"
)

// testDaemon is a daemon on temporary roots with the busybox image
// imported as "busybox:latest".
type testDaemon struct {
	*Daemon
	cfg Config
	dir string
}

// newTestDaemon starts a daemon with its own roots, bridge and firewall
// table, and the berth binaries of testutil.Binaries. Cleanup removes every
// container, closes the daemon, deletes its bridge and table and fails the
// test if a mount is left under its roots.
func newTestDaemon(t *testing.T) *testDaemon {
	t.Helper()
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
	td := &testDaemon{cfg: cfg, dir: dir}
	t.Cleanup(func() {
		if td.Daemon != nil {
			td.removeAll(t)
			td.Close()
		}
		td.cleanupHost(t)
		os.RemoveAll(dir)
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

// open (re)opens the daemon on the test's roots.
func (td *testDaemon) open(t *testing.T) {
	t.Helper()
	d, err := New(context.Background(), td.cfg)
	if err != nil {
		t.Fatal(err)
	}
	td.Daemon = d
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

// cleanupHost deletes the daemon's bridge and firewall table and fails if
// mounts are left under its directory.
func (td *testDaemon) cleanupHost(t *testing.T) {
	t.Helper()
	if l, err := netlink.LinkByName(td.cfg.Bridge); err == nil {
		netlink.LinkDel(l)
	}
	if fw, err := firewall.New(firewallTable(td.cfg.Bridge)); err == nil {
		fw.Cleanup()
	}
	// The network namespace directory stays a mount point while the
	// daemon is down (live restore); the test removes it.
	unix.Unmount(filepath.Join(td.cfg.ExecRoot, "netns"), unix.MNT_DETACH)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(td.dir))
	if err != nil {
		t.Errorf("read mounts: %v", err)
	}
	for _, m := range mounts {
		t.Errorf("left a mount: %s (%s)", m.Mountpoint, m.FSType)
	}
}
