package firewall

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/nettest"
)

// This package's tests take their subnets from here (the bridge package's
// tests use 10.250.0.0/18 at the same time).
const testPool = "10.250.64.0/18"

// blocked is how long a connection that the firewall drops is given.
const blocked = 700 * time.Millisecond

func newFirewall(t *testing.T) *Firewall {
	t.Helper()
	nettest.RequireRoot(t)
	f, err := New(nettest.RandName("berthtest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Init(); err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), f.Table()) {
			t.Errorf("table %s left behind:\n%s", f.Table(), out)
		}
	})
	return f
}

type testNet struct {
	Network
	subnet netip.Prefix
	gw     netip.Addr
}

// newNet creates a bridge on a free test subnet, as the daemon would
// (route_localnet on), and removes it when the test ends.
func newNet(t *testing.T, internal bool) testNet {
	t.Helper()
	subnet := nettest.Subnet(t, testPool)
	n := testNet{Network: Network{Bridge: nettest.RandName("bt"), Subnets: []netip.Prefix{subnet}, Internal: internal}, subnet: subnet, gw: subnet.Addr().Next()}
	if err := bridge.Create(bridge.Config{Name: n.Bridge, Addrs: []netip.Prefix{netip.PrefixFrom(n.gw, subnet.Bits())}, RouteLocalnet: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bridge.Delete(n.Bridge); err != nil {
			t.Error(err)
		}
	})
	return n
}

// container makes a namespace on n with host address number i and
// returns the namespace and its address.
func (n testNet) container(t *testing.T, i int) (string, netip.Addr) {
	t.Helper()
	ns := nettest.NewNS(t)
	ip := n.subnet.Addr()
	for range i {
		ip = ip.Next()
	}
	ep := bridge.Endpoint{HostIfName: nettest.RandName("vbt"), NetNS: ns, Addrs: []netip.Prefix{netip.PrefixFrom(ip, n.subnet.Bits())}}
	if !n.Internal {
		ep.Gateways = []netip.Addr{n.gw}
	}
	if err := bridge.Attach(n.Bridge, ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bridge.Detach(ep.HostIfName) })
	return ns, ip
}

// freePort returns a TCP port nothing listens on at 127.0.0.1 right now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func hostPort(ip netip.Addr, port uint16) string { return netip.AddrPortFrom(ip, port).String() }

var localhost = netip.MustParseAddr("127.0.0.1")

func TestPublishedPort(t *testing.T) {
	f := newFirewall(t)
	n := newNet(t, false)
	if err := f.AddNetwork(n.Network); err != nil {
		t.Fatal(err)
	}
	ns1, ip1 := n.container(t, 2)
	ns2, ip2 := n.container(t, 3)
	nettest.Listen(t, ns1, ":80", "") // answers with the client's address
	port := freePort(t)
	p := PortMapping{HostPort: port, ContainerIP: ip1, ContainerPort: 80}
	if err := f.AddPort(p); err != nil {
		t.Fatalf("publish: %v", err)
	}

	// From the host on 127.0.0.1: the container sees the bridge's address
	// (loopback sources are masqueraded).
	if got, err := nettest.Fetch("", hostPort(localhost, port), 5*time.Second); err != nil || got != n.gw.String() {
		t.Fatalf("host -> 127.0.0.1:%d = %q, %v; want %s", port, got, err, n.gw)
	}
	// From another container through the host's address (hairpin): also
	// masqueraded, so the reply comes back through the host.
	if got, err := nettest.Fetch(ns2, hostPort(n.gw, port), 5*time.Second); err != nil || got != n.gw.String() {
		t.Fatalf("container %s -> %s:%d = %q, %v", ip2, n.gw, port, got, err)
	}
	// From the container itself through the host.
	if got, err := nettest.Fetch(ns1, hostPort(n.gw, port), 5*time.Second); err != nil || got != n.gw.String() {
		t.Fatalf("container -> itself via %s:%d = %q, %v", n.gw, port, got, err)
	}
	// Directly on the bridge, no NAT: the client's own address.
	if got, err := nettest.Fetch(ns2, hostPort(ip1, 80), 5*time.Second); err != nil || got != ip2.String() {
		t.Fatalf("container -> container = %q, %v; want %s", got, err, ip2)
	}

	// The same host port again: a no-op for the same mapping, a conflict
	// for another one, also when it names one address.
	if err := f.AddPort(p); err != nil {
		t.Fatalf("publish again: %v", err)
	}
	for _, q := range []PortMapping{
		{HostPort: port, ContainerIP: ip2, ContainerPort: 80},
		{HostIP: localhost, HostPort: port, ContainerIP: ip1, ContainerPort: 81},
	} {
		if err := f.AddPort(q); !errdefs.IsConflict(err) {
			t.Fatalf("publish %s over %s: %v, want conflict", q.key(), p.key(), err)
		}
	}

	if err := f.RemovePort(p); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch("", hostPort(localhost, port), blocked); err == nil {
		t.Fatalf("unpublished port still answers: %q", got)
	}
	if got, err := nettest.Fetch(ns2, hostPort(n.gw, port), blocked); err == nil {
		t.Fatalf("unpublished port still answers a container: %q", got)
	}
	if err := f.RemovePort(p); err != nil {
		t.Fatalf("remove twice: %v", err)
	}

	// A mapping bound to 127.0.0.1 answers there and not on the bridge's
	// address.
	p2 := PortMapping{HostIP: localhost, HostPort: port, ContainerIP: ip1, ContainerPort: 80}
	if err := f.AddPort(p2); err != nil {
		t.Fatal(err)
	}
	if _, err := nettest.Fetch("", hostPort(localhost, port), 5*time.Second); err != nil {
		t.Fatalf("127.0.0.1-only mapping: %v", err)
	}
	if got, err := nettest.Fetch("", hostPort(n.gw, port), blocked); err == nil {
		t.Fatalf("127.0.0.1-only mapping answers on %s: %q", n.gw, got)
	}
}

func TestIsolation(t *testing.T) {
	f := newFirewall(t)
	a, b := newNet(t, false), newNet(t, false)
	nsA, ipA := a.container(t, 2)
	nsB, _ := b.container(t, 2)
	nettest.Listen(t, nsA, ":80", "a")
	target := hostPort(ipA, 80)

	// Without rules the host routes between its bridges: the drop below
	// is the firewall's doing.
	if got, err := nettest.Fetch(nsB, target, 5*time.Second); err != nil || got != "a" {
		t.Fatalf("before rules: %q, %v", got, err)
	}
	for _, n := range []testNet{a, b} {
		if err := f.AddNetwork(n.Network); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := nettest.Fetch(nsB, target, blocked); err == nil {
		t.Fatalf("network b reached network a: %q", got)
	}
	// A published port stays reachable from another network through the
	// host's address.
	port := freePort(t)
	if err := f.AddPort(PortMapping{HostPort: port, ContainerIP: ipA, ContainerPort: 80}); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(nsB, hostPort(b.gw, port), 5*time.Second); err != nil || got != "a" {
		t.Fatalf("published port from another network: %q, %v", got, err)
	}
	// Adding a network again replaces its rules instead of doubling them.
	before := listTable(t, f)
	if err := f.AddNetwork(a.Network); err != nil {
		t.Fatal(err)
	}
	if after := listTable(t, f); strings.Count(after, "net "+a.Bridge) != strings.Count(before, "net "+a.Bridge) {
		t.Fatalf("rules doubled by a second AddNetwork:\n%s", after)
	}

	for _, n := range []testNet{a, b} {
		if err := f.RemoveNetwork(n.Bridge); err != nil {
			t.Fatal(err)
		}
	}
	if out := listTable(t, f); strings.Contains(out, a.Bridge) || strings.Contains(out, b.Bridge) {
		t.Fatalf("network rules left after RemoveNetwork:\n%s", out)
	}
	if got, err := nettest.Fetch(nsB, target, 5*time.Second); err != nil || got != "a" {
		t.Fatalf("after removing the rules: %q, %v", got, err)
	}
}

func TestInternalNetwork(t *testing.T) {
	f := newFirewall(t)
	in, out := newNet(t, true), newNet(t, false)
	nsIn, ipIn := in.container(t, 2)
	nsOut, ipOut := out.container(t, 2)
	nettest.Listen(t, nsOut, ":80", "out")
	nettest.Listen(t, nsIn, ":80", "in")
	// An internal container has no default route; give it one for the
	// test, as a hostile container could, to show the firewall stops it.
	runIn(t, nsIn, "ip", "route", "add", "default", "via", in.gw.String())
	if got, err := nettest.Fetch(nsIn, hostPort(ipOut, 80), 5*time.Second); err != nil || got != "out" {
		t.Fatalf("before rules: %q, %v", got, err)
	}
	if err := f.AddNetwork(in.Network); err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork(out.Network); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(nsIn, hostPort(ipOut, 80), blocked); err == nil {
		t.Fatalf("internal network got out: %q", got)
	}
	if got, err := nettest.Fetch(nsOut, hostPort(ipIn, 80), blocked); err == nil {
		t.Fatalf("internal network reached from outside: %q", got)
	}
	// Inside the internal network traffic flows.
	ns2, _ := in.container(t, 3)
	if got, err := nettest.Fetch(ns2, hostPort(ipIn, 80), 5*time.Second); err != nil || got != "in" {
		t.Fatalf("inside the internal network: %q, %v", got, err)
	}
	if strings.Contains(listTable(t, f), "ip saddr "+in.subnet.String()) {
		t.Fatal("internal network is masqueraded")
	}
}

// TestMasquerade puts an "outside" host in a namespace of its own, joined
// to the host by a veth pair, and checks a container reaches it with the
// host's address as source: the outside has no route back to the
// container's subnet, so without masquerading nothing would answer.
func TestMasquerade(t *testing.T) {
	f := newFirewall(t)
	n := newNet(t, false)
	if err := f.AddNetwork(n.Network); err != nil {
		t.Fatal(err)
	}
	ns1, _ := n.container(t, 2)
	outside, hostIP, outsideIP := newOutside(t)
	nettest.Listen(t, outside, ":80", "")

	if got, err := nettest.Fetch(ns1, hostPort(outsideIP, 80), 5*time.Second); err != nil || got != hostIP.String() {
		t.Fatalf("container -> outside = %q, %v; want to be seen as %s", got, err, hostIP)
	}
	if err := f.RemoveNetwork(n.Bridge); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(ns1, hostPort(outsideIP, 80), blocked); err == nil {
		t.Fatalf("reached the outside without masquerading (seen as %q)", got)
	}
}

// newOutside puts an "outside" host in a namespace of its own, joined to
// the host by a veth pair whose host end forwards (replies come in on the
// uplink and are forwarded to a bridge); it returns the namespace, the
// host's address on the link and the outside's.
func newOutside(t *testing.T) (string, netip.Addr, netip.Addr) {
	t.Helper()
	uplink := nettest.Subnet(t, testPool)
	hostIP, outsideIP := uplink.Addr().Next(), uplink.Addr().Next().Next()
	outside := nettest.NewNS(t)
	nsh, err := netns.GetFromPath(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	hostEnd := nettest.RandName("vbt")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(nsh))}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	runIn(t, "", "ip", "addr", "add", netip.PrefixFrom(hostIP, uplink.Bits()).String(), "dev", hostEnd)
	runIn(t, "", "ip", "link", "set", hostEnd, "up")
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+hostEnd+"/forwarding", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	runIn(t, outside, "ip", "addr", "add", netip.PrefixFrom(outsideIP, uplink.Bits()).String(), "dev", "eth0")
	runIn(t, outside, "ip", "link", "set", "eth0", "up")
	runIn(t, outside, "ip", "link", "set", "lo", "up")
	return outside, hostIP, outsideIP
}

// TestNoDirectRouting checks that an outside host routing to a
// container's address through the host reaches it only through a
// published port once the network's rules are in, as with Docker 28.
func TestNoDirectRouting(t *testing.T) {
	f := newFirewall(t)
	n := newNet(t, false)
	ns1, ip1 := n.container(t, 2)
	nettest.Listen(t, ns1, ":80", "c")
	outside, hostIP, _ := newOutside(t)
	runIn(t, outside, "ip", "route", "add", n.subnet.String(), "via", hostIP.String())
	if got, err := nettest.Fetch(outside, hostPort(ip1, 80), 5*time.Second); err != nil || got != "c" {
		t.Fatalf("before rules: %q, %v", got, err)
	}
	if err := f.AddNetwork(n.Network); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(outside, hostPort(ip1, 80), blocked); err == nil {
		t.Fatalf("outside reached the container directly: %q", got)
	}
	port := freePort(t)
	if err := f.AddPort(PortMapping{HostPort: port, ContainerIP: ip1, ContainerPort: 80}); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(outside, hostPort(hostIP, port), 5*time.Second); err != nil || got != "c" {
		t.Fatalf("published port from outside: %q, %v", got, err)
	}
	if err := f.RemoveNetwork(n.Bridge); err != nil {
		t.Fatal(err)
	}
	if out := listTable(t, f); strings.Contains(out, n.Bridge) {
		t.Fatalf("network rules left after RemoveNetwork:\n%s", out)
	}
}

// TestOtherTablesUntouched checks berth's table lives beside others: a
// foreign table with rules is the same after Init, rules, Sync and Cleanup.
func TestOtherTablesUntouched(t *testing.T) {
	nettest.RequireRoot(t)
	foreign := nettest.RandName("btforeign")
	nft(t, "add", "table", "inet", foreign)
	t.Cleanup(func() { _, _ = exec.Command("nft", "delete", "table", "inet", foreign).CombinedOutput() })
	nft(t, "add", "chain", "inet", foreign, "c", "{ type filter hook forward priority 0; policy accept; }")
	nft(t, "add", "rule", "inet", foreign, "c", "ip saddr 10.250.255.0/24 counter accept")
	foreignBefore := nft(t, "list", "table", "inet", foreign)

	f := newFirewall(t)
	n := newNet(t, false)
	c := netip.MustParseAddr(n.gw.Next().String())
	if err := f.Sync([]Network{n.Network}, []PortMapping{{HostPort: 40000, ContainerIP: c, ContainerPort: 80}}); err != nil {
		t.Fatalf("sync: %v", err)
	}
	got := listTable(t, f)
	for _, want := range []string{"net " + n.Bridge, "masquerade", "dnat ip to " + c.String() + ":80", "127.0.0.0/8 drop"} {
		if !strings.Contains(got, want) {
			t.Fatalf("table lacks %q:\n%s", want, got)
		}
	}
	// Sync again with less: the old rules are gone, in one step.
	if err := f.Sync(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := listTable(t, f); strings.Contains(got, n.Bridge) || strings.Contains(got, "dnat") {
		t.Fatalf("sync kept old rules:\n%s", got)
	}
	// Init on an existing table keeps its rules.
	if err := f.AddNetwork(n.Network); err != nil {
		t.Fatal(err)
	}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	if got := listTable(t, f); !strings.Contains(got, "net "+n.Bridge) {
		t.Fatalf("Init dropped rules:\n%s", got)
	}
	if err := f.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := f.Cleanup(); err != nil {
		t.Fatalf("cleanup twice: %v", err)
	}
	if got := nft(t, "list", "table", "inet", foreign); got != foreignBefore {
		t.Fatalf("foreign table changed:\n%s\nwas:\n%s", got, foreignBefore)
	}
	nft(t, "delete", "table", "inet", foreign)
	// Only this firewall's table went (the host's table list is not
	// compared whole: other packages' tests add and remove theirs
	// meanwhile).
	after := nft(t, "list", "tables")
	for _, line := range strings.Split(after, "\n") {
		if strings.TrimSpace(line) == "table inet "+f.Table() {
			t.Fatalf("table %s left after cleanup:\n%s", f.Table(), after)
		}
	}
	// Without the table, edits say what is missing.
	if err := f.AddNetwork(n.Network); !errdefs.IsNotFound(err) {
		t.Fatalf("AddNetwork without a table: %v", err)
	}
}

func listTable(t *testing.T, f *Firewall) string {
	t.Helper()
	return nft(t, "list", "table", "inet", f.Table())
}

func nft(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// runIn runs a command in the named namespace at path ("" for the host).
func runIn(t *testing.T, path string, args ...string) {
	t.Helper()
	if path != "" {
		args = append([]string{"ip", "netns", "exec", path[strings.LastIndex(path, "/")+1:]}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func TestPortBatch(t *testing.T) {
	f := newFirewall(t)
	n := newNet(t, false)
	if err := f.AddNetwork(n.Network); err != nil {
		t.Fatal(err)
	}
	ns, ip := n.container(t, 2)
	nettest.Listen(t, ns, ":80", "80")
	nettest.Listen(t, ns, ":81", "81")
	p1, p2 := freePort(t), freePort(t)
	a := PortMapping{HostPort: p1, ContainerIP: ip, ContainerPort: 80}
	b := PortMapping{HostIP: localhost, HostPort: p2, ContainerIP: ip, ContainerPort: 81}
	before := listTable(t, f)
	// A conflict inside the batch: nothing is published.
	if err := f.AddPorts(a, b, PortMapping{HostIP: localhost, HostPort: p1, ContainerIP: ip, ContainerPort: 81}); !errdefs.IsConflict(err) {
		t.Fatalf("conflicting batch: %v", err)
	}
	if got := listTable(t, f); got != before {
		t.Fatalf("a refused batch changed the table:\n%s", got)
	}
	if err := f.AddPorts(a, b, a); err != nil {
		t.Fatal(err)
	}
	for port, want := range map[uint16]string{p1: "80", p2: "81"} {
		if got, err := nettest.Fetch("", hostPort(localhost, port), 5*time.Second); err != nil || got != want {
			t.Fatalf("port %d = %q, %v", port, got, err)
		}
	}
	// A conflict with a published port names the mapping.
	c := PortMapping{HostPort: p2, ContainerIP: ip, ContainerPort: 80}
	var ce *ConflictError
	if err := f.AddPorts(a, c); !errors.As(err, &ce) || ce.Mapping != c || !errdefs.IsConflict(err) {
		t.Fatalf("batch over a published port: %v", err)
	}
	if err := f.RemovePorts(a, b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(listTable(t, f), "dnat ip to") {
		t.Fatalf("rules left after RemovePorts:\n%s", listTable(t, f))
	}
	if err := f.RemovePorts(a, b); err != nil {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestRedirectDNS(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	runIn(t, ns, "ip", "link", "set", "lo", "up")
	dnsAddr := netip.MustParseAddr("127.0.0.11")
	// A TCP "server" on a random port of 127.0.0.11, reached on port 53.
	srv := nettest.Listen(t, ns, "127.0.0.11:0", "dns")
	port := uint16(srv.(*net.TCPAddr).Port)
	if err := RedirectDNS(ns, dnsAddr, port+1, port+1); err != nil {
		t.Fatal(err)
	}
	// Redirecting again replaces the rules (a daemon restart picks new
	// ports).
	if err := RedirectDNS(ns, dnsAddr, port, port); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(ns, "127.0.0.11:53", 5*time.Second); err != nil || got != "dns" {
		t.Fatalf("127.0.0.11:53 inside = %q, %v", got, err)
	}
	out, err := exec.Command("ip", "netns", "exec", filepath.Base(ns), "nft", "list", "table", "inet", DNSTable).CombinedOutput()
	if err != nil || strings.Count(string(out), "dnat") != 2 {
		t.Fatalf("table in the namespace:\n%s %v", out, err)
	}
	// Port 53 stays free for the container's own server.
	if err := nettest.Do(ns, func() error {
		l, err := net.Listen("tcp", "0.0.0.0:53")
		if err == nil {
			l.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("container cannot listen on port 53: %v", err)
	}
	// The host's tables are untouched.
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), DNSTable) {
		t.Fatalf("%s created in the host's namespace", DNSTable)
	}
	if err := RedirectDNS(ns, netip.MustParseAddr("::1"), 1, 1); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("IPv6 address: %v", err)
	}
	if err := RedirectDNS("/nonexistent", dnsAddr, 1, 1); err == nil {
		t.Fatal("missing namespace accepted")
	}
}

// TestForwardGuard runs in namespaces of its own, never on the host: a
// "router" namespace with forwarding on, two uplinks to namespaces left
// and right, and a bridge with a container. The guard stops forwarding
// between the uplinks and lets the container's traffic through both ways;
// Sync keeps it and SetForwardGuard(false, false) lifts it.
func TestForwardGuard(t *testing.T) {
	nettest.RequireRoot(t)
	router, left, right := nettest.NewNS(t), nettest.NewNS(t), nettest.NewNS(t)
	subL, subR, subB := nettest.Subnet(t, testPool), nettest.Subnet(t, testPool), nettest.Subnet(t, testPool)
	nth := func(p netip.Prefix, i int) netip.Addr {
		a := p.Addr()
		for range i {
			a = a.Next()
		}
		return a
	}
	pfx := func(p netip.Prefix, i int) string { return netip.PrefixFrom(nth(p, i), p.Bits()).String() }
	brName, ctr, ctr2 := nettest.RandName("bt"), nettest.NewNS(t), nettest.NewNS(t)
	var f *Firewall
	in := func(fn func() error) {
		t.Helper()
		if err := nettest.Do(router, fn); err != nil {
			t.Fatal(err)
		}
	}
	in(func() error {
		for _, up := range []struct {
			ns  string
			sub netip.Prefix
		}{{left, subL}, {right, subR}} {
			peer, err := netns.GetFromPath(up.ns)
			if err != nil {
				return err
			}
			name := "up" + filepath.Base(up.ns)[len("btns"):][:6]
			err = netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(peer))})
			peer.Close()
			if err != nil {
				return err
			}
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			addr, _ := netlink.ParseAddr(pfx(up.sub, 1))
			if err := netlink.AddrAdd(l, addr); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		if err := bridge.Create(bridge.Config{Name: brName, Addrs: []netip.Prefix{netip.MustParsePrefix(pfx(subB, 1))}}); err != nil {
			return err
		}
		for i, ns := range []string{ctr, ctr2} {
			if err := bridge.Attach(brName, bridge.Endpoint{HostIfName: nettest.RandName("vbt"), NetNS: ns,
				Addrs: []netip.Prefix{netip.MustParsePrefix(pfx(subB, 2+i))}, Gateways: []netip.Addr{nth(subB, 1)}}); err != nil {
				return err
			}
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return err
		}
		var err error
		if f, err = New(nettest.RandName("berthtest")); err != nil {
			return err
		}
		return f.Init()
	})
	for _, up := range []struct {
		ns  string
		sub netip.Prefix
	}{{left, subL}, {right, subR}} {
		runIn(t, up.ns, "ip", "addr", "add", pfx(up.sub, 2), "dev", "eth0")
		runIn(t, up.ns, "ip", "link", "set", "eth0", "up")
		runIn(t, up.ns, "ip", "route", "add", "default", "via", nth(up.sub, 1).String())
	}
	nettest.Listen(t, right, ":80", "right")
	nettest.Listen(t, ctr, ":80", "ctr")
	toRight, toCtr := hostPort(nth(subR, 2), 80), hostPort(nth(subB, 2), 80)
	reach := func(what, from, to, want string, ok bool) {
		t.Helper()
		wait := 5 * time.Second
		if !ok {
			wait = blocked
		}
		got, err := nettest.Fetch(from, to, wait)
		if ok && (err != nil || got != want) {
			t.Fatalf("%s: %q, %v; want %q", what, got, err, want)
		}
		if !ok && err == nil {
			t.Fatalf("%s: got through (%q)", what, got)
		}
	}
	reach("left -> right without the guard", left, toRight, "right", true)

	in(func() error { return f.SetForwardGuard(true, false) })
	reach("left -> right with the guard", left, toRight, "", false)
	reach("container -> right", ctr, toRight, "right", true)
	reach("right -> container", right, toCtr, "ctr", true)
	reach("container -> container", ctr2, toCtr, "ctr", true)
	var table string
	in(func() error {
		// Twice: the rules are replaced, not doubled; Sync keeps them.
		if err := f.SetForwardGuard(true, false); err != nil {
			return err
		}
		if err := f.Sync(nil, nil); err != nil {
			return err
		}
		out, err := exec.Command("nft", "list", "table", "inet", f.Table()).CombinedOutput()
		table = string(out)
		return err
	})
	if n := strings.Count(table, "jump "+chainGuard); n != 1 || !strings.Contains(table, `iifkind "bridge" return`) {
		t.Fatalf("guard rules after SetForwardGuard and Sync (%d jumps):\n%s", n, table)
	}
	reach("left -> right after Sync", left, toRight, "", false)
	in(func() error { return f.SetForwardGuard(false, true) })
	reach("left -> right with only the IPv6 guard", left, toRight, "right", true)
	in(func() error { return f.SetForwardGuard(false, false) })
	reach("left -> right with the guard lifted", left, toRight, "right", true)
	in(f.Cleanup)
}
