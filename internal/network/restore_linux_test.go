package network

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/nettest"
)

func TestConnectDisconnect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createNetwork("one", network.CreateRequest{})
	two := e.createNetwork("two", network.CreateRequest{})
	idC, c := e.setup("c", SandboxRequest{NetworkMode: "one"})
	_, p := e.setup("p", SandboxRequest{NetworkMode: "two"})
	dID, d := e.setup("d", SandboxRequest{}) // on the default bridge
	var hostsIno uint64
	if st, err := os.Stat(c.HostsPath); err == nil {
		hostsIno = st.Sys().(*syscall.Stat_t).Ino
	}

	if err := e.m.Connect(ctx, "two", idC, &network.EndpointSettings{Aliases: []string{"cee"}}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	c2, _ := e.m.Sandbox(idC)
	e.record(c2)
	es := c2.Networks["two"]
	if es == nil || !two.IPAM.Config[0].Subnet.Contains(es.IPAddress) || len(c2.Networks) != 2 {
		t.Fatalf("after connect: %+v", c2.Networks)
	}
	if l := links(t, c.NetNSPath)["eth1"]; l == nil || l.Attrs().HardwareAddr.String() != es.MacAddress.String() {
		t.Fatalf("eth1 missing or wrong: %v", l)
	}
	// The default route stays with the first network.
	routes, _ := handle(t, c.NetNSPath).RouteList(nil, netlink.FAMILY_V4)
	if !hasDefaultRoute(routes, c.Networks["one"].Gateway) {
		t.Fatalf("default route moved: %v", routes)
	}
	// The hosts file is rewritten in place, for the running container.
	st, _ := os.Stat(c.HostsPath)
	if st.Sys().(*syscall.Stat_t).Ino != hostsIno || !strings.Contains(readFile(t, c.HostsPath), es.IPAddress.String()) {
		t.Fatalf("hosts not rewritten in place:\n%s", readFile(t, c.HostsPath))
	}
	if got, _ := resolve(t, p.NetNSPath, "cee", dns.TypeA); !slices.Equal(got, []netip.Addr{es.IPAddress}) {
		t.Fatalf("p resolves cee = %v", got)
	}
	nettest.Listen(t, p.NetNSPath, ":80", "p")
	if got, err := nettest.Fetch(c.NetNSPath, hostPort(p.Networks["two"].IPAddress, "80"), 5*time.Second); err != nil || got != "p" {
		t.Fatalf("c -> p over the new network = %q, %v", got, err)
	}

	for _, tc := range []struct {
		net, id string
		class   func(error) bool
		want    string
	}{
		{"two", idC, errdefs.IsPermission, "already exists in network two"},
		{"host", idC, errdefs.IsPermission, "host network"},
		{"none", idC, errdefs.IsPermission, "private (none) mode"},
		{"nosuch", idC, errdefs.IsNotFound, "network nosuch not found"},
		{"two", newID(), errdefs.IsNotFound, "has no network"},
	} {
		if err := e.m.Connect(ctx, tc.net, tc.id, nil); !tc.class(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("connect %s: %v, want %q", tc.net, err, tc.want)
		}
	}

	// A container of the default bridge gets the embedded DNS server
	// when it joins a user-defined network.
	if err := e.m.Connect(ctx, "two", dID, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, d.ResolvConfPath); !strings.Contains(got, "nameserver 127.0.0.11") {
		t.Fatalf("resolv.conf after connect = %q", got)
	}
	if got, _ := resolve(t, d.NetNSPath, "p", dns.TypeA); !slices.Equal(got, []netip.Addr{p.Networks["two"].IPAddress}) {
		t.Fatalf("d resolves p = %v", got)
	}

	// Disconnecting the first network hands the default route to the
	// second.
	if err := e.m.Disconnect(ctx, "one", idC, false); err != nil {
		t.Fatal(err)
	}
	routes, _ = handle(t, c.NetNSPath).RouteList(nil, netlink.FAMILY_V4)
	if !hasDefaultRoute(routes, es.Gateway) {
		t.Fatalf("default route not moved to two: %v", routes)
	}
	if _, err := netlink.LinkByName(bridge.HostIfName(c.Networks["one"].EndpointID)); err == nil {
		t.Fatal("veth on one left after disconnect")
	}
	if strings.Contains(readFile(t, c.HostsPath), c.Networks["one"].IPAddress.String()) {
		t.Fatal("hosts still lists the address on one")
	}
	if err := e.m.Disconnect(ctx, "two", idC, false); err != nil {
		t.Fatal(err)
	}
	if ls := links(t, c.NetNSPath); len(ls) != 1 {
		t.Fatalf("links after disconnecting both: %v", ls)
	}
	if _, rc := resolve(t, p.NetNSPath, "cee", dns.TypeA); rc == dns.RcodeSuccess {
		t.Fatal("cee still resolves after disconnect")
	}
	if err := e.m.Disconnect(ctx, "two", idC, false); !errdefs.IsNotFound(err) {
		t.Fatalf("disconnect twice: %v", err)
	}
	for _, name := range []string{"one", "two"} {
		n, _ := e.m.lookupNetwork(name)
		if a := n.allocFor(c.Networks["one"].IPAddress); a != nil && a.InUse(c.Networks["one"].IPAddress) {
			t.Fatal("address on one still allocated")
		}
	}
	if err := e.m.Teardown(ctx, idC); err != nil {
		t.Fatal(err)
	}
	e.assertGone(c2)
}

func TestRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createNetwork("rnet", network.CreateRequest{})
	p80 := network.MustParsePort("80/tcp")
	idA, a := e.setup("a", SandboxRequest{NetworkMode: "rnet", PortBindings: network.PortMap{p80: {{}}}})
	idB, b := e.setup("b", SandboxRequest{PortBindings: network.PortMap{p80: {{}}}})
	idC, c := e.setup("c", SandboxRequest{NetworkMode: "rnet"})
	idD, d := e.setup("d", SandboxRequest{NetworkMode: "rnet"})
	nettest.Listen(t, a.NetNSPath, ":80", "a")

	// Leftovers of a crash: a namespace file and a veth on the bridge
	// (named as berths before HostIfPrefix did) that no record explains,
	// and a pair of berth's naming with both ends on the host, on no
	// bridge. The cleanup deletes them if Restore does not.
	stray := filepath.Join(e.cfg.ExecRoot, "netns", "stray")
	if err := newNetNS(stray); err != nil {
		t.Fatal(err)
	}
	e.netnses[stray] = true
	strayIf, strayPair := "veth"+nettest.RandName("")[:11], bridge.HostIfName(newID())
	for _, name := range []string{strayIf, strayPair} {
		e.hostIfs[name] = true
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: nettest.RandName("p")}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Fatal(err)
		}
	}
	br, _ := netlink.LinkByName(e.cfg.BridgeName)
	if err := netlink.LinkSetMaster(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: strayIf}}, br); err != nil {
		t.Fatal(err)
	}
	// d's namespace vanished while the daemon was down.
	if err := removeNetNS(d.NetNSPath); err != nil {
		t.Fatal(err)
	}

	// The daemon stops (nothing is removed) and a new one comes up.
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch("", hostPort(netip.MustParseAddr("127.0.0.1"), a.Ports[p80][0].HostPort), 5*time.Second); err != nil || got != "a" {
		t.Fatalf("published port while the daemon is down = %q, %v", got, err)
	}
	e.m = e.open()
	if err := e.m.Restore(ctx, map[string]bool{idA: true, idC: true, idD: true}); err != nil {
		t.Fatalf("restore: %v", err)
	}

	// b (not running) and d (namespace gone) are torn down, the strays
	// removed; a and c keep working, with their DNS and ports.
	e.assertGone(b)
	e.assertGone(d)
	for _, id := range []string{idB, idD} {
		if _, ok := e.m.Sandbox(id); ok {
			t.Errorf("sandbox %s kept", id)
		}
	}
	if _, err := os.Stat(stray); err == nil {
		t.Fatal("stray namespace file kept")
	}
	for _, name := range []string{strayIf, strayPair} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Fatalf("stray veth %s kept", name)
		}
	}
	if got, ok := e.m.Sandbox(idA); !ok || got.Ports[p80][0].HostPort != a.Ports[p80][0].HostPort {
		t.Fatalf("a after restore = %+v, %v", got, ok)
	}
	port := a.Ports[p80][0].HostPort
	if got, err := nettest.Fetch("", hostPort(netip.MustParseAddr("127.0.0.1"), port), 5*time.Second); err != nil || got != "a" {
		t.Fatalf("a's published port after restore = %q, %v", got, err)
	}
	if l, err := net.Listen("tcp", "0.0.0.0:"+port); err == nil {
		l.Close()
		t.Fatal("a's host port is not held again")
	}
	if got, _ := resolve(t, c.NetNSPath, "a", dns.TypeA); !slices.Equal(got, []netip.Addr{a.Networks["rnet"].IPAddress}) {
		t.Fatalf("c resolves a after restore = %v", got)
	}
	if got, rc := resolve(t, c.NetNSPath, "d", dns.TypeA); rc == dns.RcodeSuccess && len(got) > 0 {
		t.Fatalf("d, torn down, still resolves: %v", got)
	}
	if l, err := net.Listen("tcp", "0.0.0.0:"+b.Ports[p80][0].HostPort); err != nil {
		t.Fatalf("b's host port still held: %v", err)
	} else {
		l.Close()
	}
	// Addresses of the torn-down sandboxes are free; a's and c's not.
	n, _ := e.m.lookupNetwork("rnet")
	for _, sb := range []*Sandbox{a, c, d} {
		ip := sb.Networks["rnet"].IPAddress
		if want := sb != d; n.allocFor(ip).InUse(ip) != want {
			t.Errorf("%s in use = %v, want %v", ip, !want, want)
		}
	}
	// The network still refuses removal while a and c use it.
	if err := e.m.Remove(ctx, "rnet"); !errdefs.IsPermission(err) {
		t.Fatalf("rm rnet after restore: %v", err)
	}
}

func TestDefaultBridgeAddress(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	n, _ := e.m.defaultNetwork()
	if n.rec.Subnets[0].Gateway != e.gw || n.rec.Bridge != e.cfg.BridgeName {
		t.Fatalf("default bridge %+v", n.rec)
	}
	list, _ := e.m.List(ctx, map[string][]string{"type": {"builtin"}})
	if len(list) != 3 {
		t.Fatalf("builtin networks = %d, want bridge, host, none", len(list))
	}
	// A restart without --bip keeps the address, and the IDs.
	ins, _ := e.m.Inspect(ctx, NameBridge)
	e.m.Close()
	e.cfg.BIP = ""
	e.m = e.open()
	ins2, _ := e.m.Inspect(ctx, NameBridge)
	if ins2.ID != ins.ID || ins2.IPAM.Config[0].Subnet != ins.IPAM.Config[0].Subnet || ins2.IPAM.Config[0].Gateway != ins.IPAM.Config[0].Gateway || ins2.Options[OptBridgeName] != e.cfg.BridgeName {
		t.Fatalf("after restart: %+v, was %+v", ins2.Network, ins.Network)
	}
	// A fresh store adopts the existing bridge's address.
	e.m.Close()
	db2, err := metadata.Open(filepath.Join(t.TempDir(), "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	cfg2 := e.cfg
	cfg2.DB = db2
	m2, err := New(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	ins3, _ := m2.Inspect(ctx, NameBridge)
	m2.Close()
	if ins3.ID == ins.ID || ins3.IPAM.Config[0].Gateway != e.gw || ins3.IPAM.Config[0].Subnet != ins.IPAM.Config[0].Subnet {
		t.Fatalf("fresh store: %+v, want the bridge's %s", ins3.IPAM, e.gw)
	}
	e.m = e.open()
	// --bip of the wrong kind is refused.
	for _, bad := range []string{"10.0.0.0/16", "fd00::1/64", "nonsense", "10.0.0.1/31"} {
		cfg := e.cfg
		cfg.BIP = bad
		if _, err := New(ctx, cfg); !errdefs.IsInvalidArgument(err) {
			t.Errorf("--bip %s: %v", bad, err)
		}
	}
}
