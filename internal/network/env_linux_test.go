package network

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/network/ipam"
	"github.com/berth-project/berth/internal/network/nettest"
)

// This package's tests take the default bridge's subnet from the first
// range and user networks' subnets from the second (the bridge and
// firewall packages use 10.250.0.0/17 at the same time).
const (
	bipPool     = "10.250.128.0/19"
	networkPool = "10.250.160.0/19"
)

// blocked is how long a connection the firewall drops is given.
const blocked = 700 * time.Millisecond

// env is a Manager on its own default bridge, firewall table, store and
// exec root; everything it made is removed and checked gone at the end.
type env struct {
	t   testing.TB
	cfg Config
	m   *Manager
	gw  netip.Addr // the default bridge's gateway
	// made records what the test's sandboxes were given, for the final
	// leak check; mu guards it for tests that set up concurrently.
	mu       sync.Mutex
	hostIfs  map[string]bool
	netnses  map[string]bool
	bridges  map[string]bool
	upstream netip.Addr // a loopback address the host's resolv.conf names
}

func newEnv(t testing.TB) *env {
	t.Helper()
	nettest.RequireRoot(t)
	db, err := metadata.Open(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	execRoot := t.TempDir()
	t.Cleanup(func() {
		// New made <execRoot>/netns a mount point; the temporary
		// directory's removal comes after this.
		_ = unix.Unmount(filepath.Join(execRoot, "netns"), unix.MNT_DETACH)
	})
	subnet := nettest.Subnet(t, bipPool)
	e := &env{t: t, gw: subnet.Addr().Next(), hostIfs: map[string]bool{}, netnses: map[string]bool{}, bridges: map[string]bool{}}
	// The host's resolvers: one on a random loopback address (reachable
	// only from the host's namespace) and one on the default bridge's
	// gateway, a local address where nothing listens, so that no query
	// ever leaves the machine.
	e.upstream = netip.AddrFrom4([4]byte{127, 53, byte(subnet.Addr().As4()[2]), 53})
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("search example.test\nnameserver "+e.upstream.String()+"\nnameserver "+e.gw.String()+"\noptions timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n192.0.2.7\thost-only-name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := ipam.ParsePool(networkPool, 24)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = Config{
		DB:                  db,
		ExecRoot:            execRoot,
		BridgeName:          nettest.RandName("bb"),
		BIP:                 netip.PrefixFrom(e.gw, subnet.Bits()).String(),
		DefaultAddressPools: []ipam.Pool{pool},
		FirewallTable:       nettest.RandName("berthtest"),
		HostResolvConf:      resolv,
		HostHosts:           hosts,
	}
	e.bridges[e.cfg.BridgeName] = true
	t.Cleanup(e.cleanup)
	e.m = e.open()
	return e
}

// open starts a Manager on the env's configuration (again, for restarts).
func (e *env) open() *Manager {
	e.t.Helper()
	m, err := New(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatalf("new manager: %v", err)
	}
	return m
}

// cleanup tears down what the test left, removes the default bridge and
// the firewall table, and fails the test on anything left behind.
func (e *env) cleanup() {
	t := e.t
	ctx := context.Background()
	if e.m != nil {
		e.m.mu.RLock()
		var ids []string
		for id := range e.m.sandboxes {
			ids = append(ids, id)
		}
		var nets []string
		for _, n := range e.m.networks {
			if !n.rec.predefined() {
				nets = append(nets, n.rec.ID)
			}
		}
		e.m.mu.RUnlock()
		for _, id := range ids {
			if err := e.m.Teardown(ctx, id); err != nil {
				t.Errorf("teardown %s: %v", id, err)
			}
		}
		for _, id := range nets {
			if err := e.m.Remove(ctx, id); err != nil {
				t.Errorf("remove network %s: %v", id, err)
			}
		}
		e.m.Close()
	}
	for b := range e.bridges {
		if err := bridge.Delete(b); err != nil {
			t.Errorf("delete bridge %s: %v", b, err)
		}
	}
	fw, _ := firewall.New(e.cfg.FirewallTable)
	if err := fw.Cleanup(); err != nil {
		t.Errorf("delete firewall table: %v", err)
	}
	for name := range e.hostIfs {
		if l, err := netlink.LinkByName(name); err == nil {
			t.Errorf("veth %s left behind", name)
			// Deleting one end deletes the pair.
			if err := netlink.LinkDel(l); err != nil {
				t.Errorf("delete veth %s: %v", name, err)
			}
		}
	}
	for b := range e.bridges {
		if _, err := netlink.LinkByName(b); err == nil {
			t.Errorf("bridge %s left behind", b)
		}
	}
	for p := range e.netnses {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("namespace file %s left behind", p)
		}
	}
	nsDir := filepath.Join(e.cfg.ExecRoot, "netns")
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(nsDir))
	if err != nil {
		t.Error(err)
	}
	for _, m := range mounts {
		if m.Mountpoint != nsDir {
			t.Errorf("mount %s left behind", m.Mountpoint)
		}
	}
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), e.cfg.FirewallTable) {
		t.Errorf("table %s left behind", e.cfg.FirewallTable)
	}
}

// setup runs Setup for a new container named name with a directory of its
// own and records its kernel objects for the leak check.
func (e *env) setup(name string, req SandboxRequest) (string, *Sandbox) {
	e.t.Helper()
	sb, id, err := e.trySetup(name, req)
	if err != nil {
		e.t.Fatalf("setup %s: %v", name, err)
	}
	return id, sb
}

func (e *env) trySetup(name string, req SandboxRequest) (*Sandbox, string, error) {
	req.ContainerID = newID()
	req.Name = name
	if req.Dir == "" {
		req.Dir = e.t.TempDir()
	}
	e.mu.Lock()
	e.netnses[filepath.Join(e.cfg.ExecRoot, "netns", req.ContainerID)] = true
	e.mu.Unlock()
	sb, err := e.m.Setup(context.Background(), req)
	if err == nil {
		e.record(sb)
	}
	return sb, req.ContainerID, err
}

func (e *env) record(sb *Sandbox) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, es := range sb.Networks {
		if es.IPAddress.IsValid() || es.GlobalIPv6Address.IsValid() {
			e.hostIfs[bridge.HostIfName(es.EndpointID)] = true
		}
	}
}

// createNetwork makes a user-defined network and records its bridge.
func (e *env) createNetwork(name string, req network.CreateRequest) network.Inspect {
	e.t.Helper()
	id, _, err := e.m.Create(context.Background(), name, req)
	if err != nil {
		e.t.Fatalf("create network %s: %v", name, err)
	}
	ins, err := e.m.Inspect(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	e.bridges[e.m.networks[id].rec.Bridge] = true
	return ins
}

// assertGone checks a torn-down sandbox left nothing: no veth, no
// namespace file or mount, no nftables rule naming its addresses.
func (e *env) assertGone(sb *Sandbox) {
	e.t.Helper()
	e.m.reapers.Wait() // the kernel destroys veths with their namespace
	for name, es := range sb.Networks {
		if es.EndpointID == "" {
			continue
		}
		if _, err := netlink.LinkByName(bridge.HostIfName(es.EndpointID)); err == nil {
			e.t.Errorf("veth of network %s left", name)
		}
		table := e.nft()
		for _, ip := range []netip.Addr{es.IPAddress, es.GlobalIPv6Address} {
			if ip.IsValid() && strings.Contains(table, ip.String()+":") {
				e.t.Errorf("nftables rule for %s left:\n%s", ip, table)
			}
		}
	}
	if sb.NetNSPath != "" {
		if _, err := os.Stat(sb.NetNSPath); err == nil {
			e.t.Errorf("namespace file %s left", sb.NetNSPath)
		}
		mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(sb.NetNSPath))
		if err != nil || len(mounts) > 0 {
			e.t.Errorf("namespace mount %s left: %v %v", sb.NetNSPath, mounts, err)
		}
	}
}

func (e *env) nft() string {
	e.t.Helper()
	out, err := exec.Command("nft", "list", "table", "inet", e.cfg.FirewallTable).CombinedOutput()
	if err != nil {
		e.t.Fatalf("nft list table: %v\n%s", err, out)
	}
	return string(out)
}

// links lists the interfaces in a namespace.
func links(t *testing.T, path string) map[string]netlink.Link {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]netlink.Link{}
	for _, l := range ls {
		out[l.Attrs().Name] = l
	}
	return out
}

// handle returns a netlink handle in the namespace.
func handle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func hostPort(ip netip.Addr, port string) string {
	return netip.AddrPortFrom(ip, mustPort(port)).String()
}

func mustPort(s string) uint16 {
	lo, _, err := parseHostPort(s)
	if err != nil {
		panic(err)
	}
	return lo
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
