package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/ipam"
	"github.com/berth-project/berth/internal/network/nettest"
)

// This package's tests take their subnets from here; other packages use
// other parts of 10.250.0.0/16 so their tests can run at the same time.
const testPool = "10.250.0.0/18"

type testNet struct {
	name   string
	subnet netip.Prefix
	gw     netip.Prefix
}

// newBridge creates a bridge named bt<random> on a free test subnet and
// removes it when the test ends.
func newBridge(t *testing.T) testNet {
	t.Helper()
	subnet := nettest.Subnet(t, testPool)
	n := testNet{name: nettest.RandName("bt"), subnet: subnet, gw: netip.PrefixFrom(subnet.Addr().Next(), subnet.Bits())}
	if err := Create(Config{Name: n.name, MTU: 1400, Addrs: []netip.Prefix{n.gw}}); err != nil {
		t.Fatalf("create bridge: %v", err)
	}
	t.Cleanup(func() {
		if err := Delete(n.name); err != nil {
			t.Errorf("delete bridge: %v", err)
		}
		if _, err := netlink.LinkByName(n.name); err == nil {
			t.Errorf("bridge %s still exists", n.name)
		}
	})
	return n
}

// host returns the n-th host address of the test network with its length.
func (n testNet) host(i int) netip.Prefix {
	a := n.subnet.Addr()
	for range i {
		a = a.Next()
	}
	return netip.PrefixFrom(a, n.subnet.Bits())
}

func attach(t *testing.T, n testNet, ns string, i int, internal bool) Endpoint {
	t.Helper()
	ep := Endpoint{HostIfName: nettest.RandName("vbt"), NetNS: ns, Addrs: []netip.Prefix{n.host(i)}}
	if !internal {
		ep.Gateways = []netip.Addr{n.gw.Addr()}
	}
	if err := Attach(n.name, ep); err != nil {
		t.Fatalf("attach: %v", err)
	}
	t.Cleanup(func() {
		if err := Detach(ep.HostIfName); err != nil {
			t.Errorf("detach: %v", err)
		}
	})
	return ep
}

func TestAttachConfiguresContainerSide(t *testing.T) {
	nettest.RequireRoot(t)
	n := newBridge(t)
	ns := nettest.NewNS(t)
	ep := attach(t, n, ns, 2, false)

	h := handleIn(t, ns)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in container: %v", err)
	}
	a := eth0.Attrs()
	wantMAC := MACFromIP(n.host(2).Addr()).String()
	if a.HardwareAddr.String() != wantMAC || a.MTU != 1400 || a.Flags&net.FlagUp == 0 {
		t.Fatalf("eth0: mac %s mtu %d flags %v; want %s, 1400, up", a.HardwareAddr, a.MTU, a.Flags, wantMAC)
	}
	addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != n.host(2).String() {
		t.Fatalf("eth0 addresses %v, %v; want %s", addrs, err, n.host(2))
	}
	routes, err := h.RouteList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !hasDefaultVia(routes, n.gw.Addr()) {
		t.Fatalf("no default route via %s in %v", n.gw.Addr(), routes)
	}
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("lo not up: %v", err)
	}

	host, err := netlink.LinkByName(ep.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	br, _ := netlink.LinkByName(n.name)
	if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().MTU != 1400 {
		t.Fatalf("host veth: master %d mtu %d; want %d, 1400", host.Attrs().MasterIndex, host.Attrs().MTU, br.Attrs().Index)
	}
	if pi, err := netlink.LinkGetProtinfo(host); err != nil || !pi.Hairpin {
		t.Fatalf("host veth hairpin mode off (%v)", err)
	}
	ports, err := Ports(n.name)
	if err != nil || len(ports) != 1 || ports[0] != ep.HostIfName {
		t.Fatalf("Ports = %v, %v; want [%s]", ports, err, ep.HostIfName)
	}
	if v, _ := os.ReadFile("/proc/sys/net/ipv4/conf/" + n.name + "/forwarding"); strings.TrimSpace(string(v)) != "1" {
		t.Fatalf("forwarding on %s = %q", n.name, v)
	}
}

func TestTwoContainersTalkAndLeaveNothing(t *testing.T) {
	nettest.RequireRoot(t)
	n := newBridge(t)
	ns1, ns2 := nettest.NewNS(t), nettest.NewNS(t)
	ep1 := Endpoint{HostIfName: nettest.RandName("vbt"), NetNS: ns1, Addrs: []netip.Prefix{n.host(2)}, Gateways: []netip.Addr{n.gw.Addr()}}
	ep2 := Endpoint{HostIfName: nettest.RandName("vbt"), NetNS: ns2, Addrs: []netip.Prefix{n.host(3)}, Gateways: []netip.Addr{n.gw.Addr()}}
	for _, ep := range []Endpoint{ep1, ep2} {
		if err := Attach(n.name, ep); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = Detach(ep1.HostIfName); _ = Detach(ep2.HostIfName) })

	addr2 := nettest.Listen(t, ns2, n.host(3).Addr().String()+":0", "from ns2")
	if got, err := nettest.Fetch(ns1, addr2.String(), 5*time.Second); err != nil || got != "from ns2" {
		t.Fatalf("ns1 -> ns2: %q, %v", got, err)
	}
	// The host reaches a container through the bridge's address.
	if got, err := nettest.Fetch("", addr2.String(), 5*time.Second); err != nil || got != "from ns2" {
		t.Fatalf("host -> ns2: %q, %v", got, err)
	}
	// ping, where the machine has it, agrees.
	if _, err := exec.LookPath("ping"); err == nil {
		out, err := exec.Command("ip", "netns", "exec", nsName(ns1), "ping", "-c1", "-W2", n.host(3).Addr().String()).CombinedOutput()
		if err != nil {
			t.Fatalf("ping ns1 -> ns2: %v\n%s", err, out)
		}
	}

	// Attach again (live restore) keeps the same interfaces and works.
	before, _ := netlink.LinkByName(ep1.HostIfName)
	if err := Attach(n.name, ep1); err != nil {
		t.Fatalf("attach again: %v", err)
	}
	after, _ := netlink.LinkByName(ep1.HostIfName)
	if before.Attrs().Index != after.Attrs().Index {
		t.Fatalf("attach again made a new veth (%d -> %d)", before.Attrs().Index, after.Attrs().Index)
	}
	if got, err := nettest.Fetch(ns1, addr2.String(), 5*time.Second); err != nil || got != "from ns2" {
		t.Fatalf("after re-attach: %q, %v", got, err)
	}

	for _, ep := range []Endpoint{ep1, ep2} {
		if err := Detach(ep.HostIfName); err != nil {
			t.Fatal(err)
		}
		if err := Detach(ep.HostIfName); err != nil {
			t.Fatalf("detach twice: %v", err)
		}
	}
	// The peers went with their host ends.
	for _, ns := range []string{ns1, ns2} {
		if _, err := handleIn(t, ns).LinkByName("eth0"); err == nil {
			t.Fatalf("eth0 left in %s", ns)
		}
	}
	if err := Delete(n.name); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{n.name, ep1.HostIfName, ep2.HostIfName} {
		if strings.Contains(string(out), name) {
			t.Fatalf("%s still listed by ip link:\n%s", name, out)
		}
	}
}

func TestInternalHasNoDefaultRoute(t *testing.T) {
	nettest.RequireRoot(t)
	n := newBridge(t)
	ns := nettest.NewNS(t)
	attach(t, n, ns, 2, true)
	h := handleIn(t, ns)
	routes, err := h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			t.Fatalf("internal endpoint has a default route: %v", r)
		}
	}
}

func TestStaleVethIsReplaced(t *testing.T) {
	nettest.RequireRoot(t)
	n := newBridge(t)
	ns := nettest.NewNS(t)
	name := nettest.RandName("vbt")
	// A veth of that name whose peer is still on the host: not ours to
	// reuse, Attach replaces it.
	stale := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: nettest.RandName("vbp")}
	if err := netlink.LinkAdd(stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(stale) })
	ep := Endpoint{HostIfName: name, NetNS: ns, Addrs: []netip.Prefix{n.host(2)}}
	if err := Attach(n.name, ep); err != nil {
		t.Fatalf("attach over stale veth: %v", err)
	}
	t.Cleanup(func() { _ = Detach(name) })
	if _, err := netlink.LinkByName(stale.PeerName); err == nil {
		t.Fatalf("stale peer %s still on the host", stale.PeerName)
	}
	if _, err := handleIn(t, ns).LinkByName("eth0"); err != nil {
		t.Fatalf("eth0 missing after replacing stale veth: %v", err)
	}
}

func TestErrors(t *testing.T) {
	nettest.RequireRoot(t)
	n := newBridge(t)
	ns := nettest.NewNS(t)
	for _, tc := range []struct {
		what  string
		err   error
		check func(error) bool
	}{
		{"bad bridge name", Create(Config{Name: "a/b"}), errdefs.IsInvalidArgument},
		{"long bridge name", Create(Config{Name: "abcdefghijklmnop"}), errdefs.IsInvalidArgument},
		{"bad MTU", Create(Config{Name: nettest.RandName("bt"), MTU: 20}), errdefs.IsInvalidArgument},
		{"network address as gateway", Create(Config{Name: nettest.RandName("bt"), Addrs: []netip.Prefix{n.subnet}}), errdefs.IsInvalidArgument},
		{"loopback is not a bridge", Create(Config{Name: "lo"}), errdefs.IsConflict},
		{"delete loopback", Delete("lo"), errdefs.IsConflict},
		{"detach loopback", Detach("lo"), errdefs.IsConflict},
		{"no bridge", Attach(nettest.RandName("bt"), Endpoint{HostIfName: "vbtx", NetNS: ns, Addrs: []netip.Prefix{n.host(2)}}), errdefs.IsNotFound},
		{"no netns", Attach(n.name, Endpoint{HostIfName: "vbtx", NetNS: "/nonexistent", Addrs: []netip.Prefix{n.host(2)}}), errdefs.IsNotFound},
		{"no address", Attach(n.name, Endpoint{HostIfName: "vbtx", NetNS: ns}), errdefs.IsInvalidArgument},
		{"foreign gateway", Attach(n.name, Endpoint{HostIfName: "vbtx", NetNS: ns, Addrs: []netip.Prefix{n.host(2)}, Gateways: []netip.Addr{netip.MustParseAddr("10.9.9.9")}}), errdefs.IsInvalidArgument},
	} {
		if !tc.check(tc.err) {
			t.Errorf("%s: err = %v", tc.what, tc.err)
		}
	}
	if err := Delete(nettest.RandName("bt")); err != nil {
		t.Fatalf("delete a missing bridge: %v", err)
	}
	if _, err := netlink.LinkByName("vbtx"); err == nil {
		t.Fatal("a failed attach left vbtx behind")
	}
}

func TestDualStack(t *testing.T) {
	nettest.RequireRoot(t)
	n := newBridge(t)
	// A /64 of fd00:be7::/48 that none of the host's routes overlaps.
	routes, err := ipam.HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	sub6, err := ipam.PickSubnet([]ipam.Pool{{Base: netip.MustParsePrefix("fd00:be7::/48"), Size: 64}}, routes)
	if err != nil {
		t.Fatal(err)
	}
	nth := func(i int) netip.Addr {
		a := sub6.Addr()
		for ; i > 0; i-- {
			a = a.Next()
		}
		return a
	}
	gw := netip.PrefixFrom(nth(1), sub6.Bits())
	if err := Create(Config{Name: n.name, MTU: 1400, Addrs: []netip.Prefix{n.gw, gw}}); err != nil {
		t.Fatalf("add IPv6 to the bridge: %v", err)
	}
	ns1, ns2 := nettest.NewNS(t), nettest.NewNS(t)
	mk := func(ns string, i int) {
		a6 := nth(i)
		ep := Endpoint{HostIfName: nettest.RandName("vbt"), NetNS: ns,
			Addrs: []netip.Prefix{n.host(i), netip.PrefixFrom(a6, sub6.Bits())}, Gateways: []netip.Addr{n.gw.Addr(), gw.Addr()}}
		if err := Attach(n.name, ep); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = Detach(ep.HostIfName) })
	}
	mk(ns1, 2)
	mk(ns2, 3)
	routes6, err := handleIn(t, ns1).RouteList(nil, netlink.FAMILY_V6)
	if err != nil || !hasDefaultVia(routes6, gw.Addr()) {
		t.Fatalf("no IPv6 default route via %s: %v %v", gw.Addr(), routes6, err)
	}
	addr := nettest.Listen(t, ns2, netip.AddrPortFrom(nth(3), 0).String(), "v6")
	if got, err := nettest.Fetch(ns1, addr.String(), 5*time.Second); err != nil || got != "v6" {
		t.Fatalf("ns1 -> ns2 over IPv6: %q, %v", got, err)
	}
}

func hasDefaultVia(routes []netlink.Route, gw netip.Addr) bool {
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(gw.AsSlice()) {
			return true
		}
	}
	return false
}

func handleIn(t *testing.T, path string) *netlink.Handle {
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

func nsName(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// TestRemoveStrayPairs runs in namespaces of its own: a pair named as
// berth names host ends with both ends in one namespace goes; a berth
// end whose peer is in another namespace and a pair named otherwise stay.
func TestRemoveStrayPairs(t *testing.T) {
	nettest.RequireRoot(t)
	host, other := nettest.NewNS(t), nettest.NewNS(t)
	stray, kept, foreign := HostIfName(nettest.RandName("")), HostIfName(nettest.RandName("")), nettest.RandName("vbt")
	var removed []string
	err := nettest.Do(host, func() error {
		ons, err := netns.GetFromPath(other)
		if err != nil {
			return err
		}
		defer ons.Close()
		for _, v := range []*netlink.Veth{
			{LinkAttrs: netlink.LinkAttrs{Name: stray}, PeerName: nettest.RandName("p")},
			{LinkAttrs: netlink.LinkAttrs{Name: kept}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ons))},
			{LinkAttrs: netlink.LinkAttrs{Name: foreign}, PeerName: nettest.RandName("p")},
		} {
			if err := netlink.LinkAdd(v); err != nil {
				return fmt.Errorf("add %s: %w", v.Name, err)
			}
		}
		if removed, err = RemoveStrayPairs(); err != nil {
			return err
		}
		for name, want := range map[string]bool{stray: false, kept: true, foreign: true} {
			if _, err := netlink.LinkByName(name); (err == nil) != want {
				t.Errorf("%s present = %v, want %v", name, err == nil, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stray {
		t.Fatalf("removed %v, want [%s]", removed, stray)
	}
}

// TestPortsWhileLinksChange lists a bridge's ports while interfaces come
// and go in the same namespace (one of its own): a link dump the kernel
// marks interrupted is run again rather than failing the listing.
func TestPortsWhileLinksChange(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	name := nettest.RandName("bt")
	// Enough links that a dump takes several messages, between which
	// the kernel sees the changes.
	if err := nettest.Do(ns, func() error {
		for i := range 100 {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("vmany%d", i)}, PeerName: fmt.Sprintf("pmany%d", i)}); err != nil {
				return err
			}
		}
		return Create(Config{Name: name})
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		churned <- nettest.Do(ns, func() error {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return nil
				default:
				}
				v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("vchurn%d", i%4)}, PeerName: fmt.Sprintf("pchurn%d", i%4)}
				if err := netlink.LinkAdd(v); err != nil {
					return err
				}
				if err := netlink.LinkDel(v); err != nil {
					return err
				}
			}
		})
	}()
	err := nettest.Do(ns, func() error {
		for range 30 {
			if _, err := Ports(name); err != nil {
				return err
			}
		}
		return nil
	})
	close(stop)
	if cerr := <-churned; cerr != nil {
		t.Fatalf("churn: %v", cerr)
	}
	if err != nil {
		t.Fatalf("Ports while links change: %v", err)
	}
}
