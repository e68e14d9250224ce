package network

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/nettest"
)

func TestDefaultBridgeSandbox(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	idA, a := e.setup("web", SandboxRequest{
		Hostname:     "webhost",
		PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: ""}}},
		ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("9000/udp"): {}},
		ExtraHosts:   []string{"db:192.0.2.10", "gw:host-gateway"},
		DNSSearch:    []string{"corp.test"},
	})
	// docker run names the default network "default" in its endpoints.
	_, b := e.setup("client", SandboxRequest{NetworkMode: "default", Endpoints: map[string]*network.EndpointSettings{"default": {}}})

	ea := a.Networks[NameBridge]
	if ea == nil || len(a.Networks) != 1 {
		t.Fatalf("networks = %v, want only %s", a.Networks, NameBridge)
	}
	if ea.Gateway != e.gw || ea.IPPrefixLen != 24 || !netip.PrefixFrom(e.gw, 24).Masked().Contains(ea.IPAddress) || ea.IPAddress == e.gw {
		t.Fatalf("endpoint = %+v, want an address next to gateway %s", ea, e.gw)
	}
	// Inside the namespace: eth0 with the address, MAC, MTU and a
	// default route through the gateway; lo up.
	h := handle(t, a.NetNSPath)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth0.Attrs().MTU != 1500 || eth0.Attrs().HardwareAddr.String() != ea.MacAddress.String() || eth0.Attrs().HardwareAddr.String() != bridge.MACFromIP(ea.IPAddress).String() {
		t.Fatalf("eth0 MTU %d MAC %s; endpoint MAC %s", eth0.Attrs().MTU, eth0.Attrs().HardwareAddr, ea.MacAddress)
	}
	addrs, _ := h.AddrList(eth0, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(ea.IPAddress, 24).String() {
		t.Fatalf("eth0 addresses %v, want %s/24", addrs, ea.IPAddress)
	}
	routes, _ := h.RouteList(nil, netlink.FAMILY_V4)
	if !hasDefaultRoute(routes, e.gw) {
		t.Fatalf("no default route via %s: %v", e.gw, routes)
	}
	if lo := links(t, a.NetNSPath)["lo"]; lo == nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Fatal("lo is not up")
	}

	// The files.
	hosts := readFile(t, a.HostsPath)
	for _, want := range []string{ea.IPAddress.String() + "\twebhost", "192.0.2.10\tdb", e.gw.String() + "\tgw", "127.0.0.1\tlocalhost"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	if got := readFile(t, a.HostnamePath); got != "webhost\n" {
		t.Errorf("hostname = %q", got)
	}
	// The loopback resolver is left out and no embedded DNS on the
	// default bridge.
	if got, want := readFile(t, a.ResolvConfPath), "search corp.test\nnameserver "+e.gw.String()+"\noptions timeout:1\n"; got != want {
		t.Errorf("resolv.conf = %q, want %q", got, want)
	}

	// Published port: the random host port is reported and answers on
	// 127.0.0.1 and, hairpinned, on the gateway from the other sandbox;
	// the exposed-only port maps to nil.
	bindings := a.Ports[network.MustParsePort("80/tcp")]
	if len(bindings) != 1 || bindings[0].HostIP != netip.IPv4Unspecified() {
		t.Fatalf("ports = %v", a.Ports)
	}
	lo, hi := ephemeralRange()
	if p := mustPort(bindings[0].HostPort); p < lo || p > hi {
		t.Fatalf("random host port %d outside %d-%d", p, lo, hi)
	}
	if bs, ok := a.Ports[network.MustParsePort("9000/udp")]; !ok || bs != nil {
		t.Fatalf("exposed port: %v, %v", bs, ok)
	}
	nettest.Listen(t, a.NetNSPath, ":80", "")
	localhost := netip.MustParseAddr("127.0.0.1")
	if got, err := nettest.Fetch("", hostPort(localhost, bindings[0].HostPort), 5*time.Second); err != nil || got != e.gw.String() {
		t.Fatalf("host -> 127.0.0.1:%s = %q, %v", bindings[0].HostPort, got, err)
	}
	eb := b.Networks[NameBridge]
	if got, err := nettest.Fetch(b.NetNSPath, hostPort(e.gw, bindings[0].HostPort), 5*time.Second); err != nil || got != e.gw.String() {
		t.Fatalf("hairpin from the other sandbox = %q, %v", got, err)
	}
	// Directly across the bridge.
	if got, err := nettest.Fetch(b.NetNSPath, hostPort(ea.IPAddress, "80"), 5*time.Second); err != nil || got != eb.IPAddress.String() {
		t.Fatalf("sandbox to sandbox = %q, %v; want %s", got, err, eb.IPAddress)
	}
	// The host port is held: a host process cannot take it.
	if l, err := net.Listen("tcp", "0.0.0.0:"+bindings[0].HostPort); err == nil {
		l.Close()
		t.Fatal("a host process could listen on the published port")
	}

	got, ok := e.m.Sandbox(idA)
	if !ok || got.NetNSPath != a.NetNSPath || len(got.Ports) != 2 {
		t.Fatalf("Sandbox(%s) = %+v, %v", idA, got, ok)
	}
	ins, err := e.m.Inspect(ctx, NameBridge)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := ins.Containers[idA]; !ok || r.Name != "web" || r.IPv4Address != netip.PrefixFrom(ea.IPAddress, 24) || r.EndpointID != ea.EndpointID {
		t.Fatalf("inspect containers = %+v", ins.Containers)
	}

	if err := e.m.Teardown(ctx, idA); err != nil {
		t.Fatal(err)
	}
	e.assertGone(a)
	if err := e.m.Teardown(ctx, idA); err != nil {
		t.Fatalf("teardown twice: %v", err)
	}
	if _, ok := e.m.Sandbox(idA); ok {
		t.Fatal("sandbox still listed")
	}
	if got, err := nettest.Fetch("", hostPort(localhost, bindings[0].HostPort), blocked); err == nil {
		t.Fatalf("port still published after teardown: %q", got)
	}
	if l, err := net.Listen("tcp", "0.0.0.0:"+bindings[0].HostPort); err != nil {
		t.Fatalf("host port still held after teardown: %v", err)
	} else {
		l.Close()
	}
	// The address is free again (a /24 has room: it is handed out
	// later, not at once, but it must not be in use).
	if e.m.networks[ea.NetworkID].allocFor(ea.IPAddress).InUse(ea.IPAddress) {
		t.Fatal("address still allocated")
	}
}

func hasDefaultRoute(routes []netlink.Route, gw netip.Addr) bool {
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil && r.Gw.Equal(gw.AsSlice()) {
			return true
		}
	}
	return false
}

func TestPortConflicts(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	p80 := network.MustParsePort("80/tcp")
	id1, a := e.setup("a", SandboxRequest{PortBindings: network.PortMap{p80: {{HostPort: port}}}})
	if a.Ports[p80][0].HostPort != port {
		t.Fatalf("ports = %v", a.Ports)
	}

	// Berth's own mapping, also when the second names one address.
	for _, hostIP := range []string{"", "127.0.0.1"} {
		var ip netip.Addr
		if hostIP != "" {
			ip = netip.MustParseAddr(hostIP)
		}
		before := e.nft()
		_, id, err := e.trySetup("b", SandboxRequest{PortBindings: network.PortMap{p80: {{HostIP: ip, HostPort: port}}}})
		if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "failed: port is already allocated") {
			t.Fatalf("same host port: %v, want a conflict", err)
		}
		if hostIP == "" && !strings.Contains(err.Error(), "Bind for 0.0.0.0:"+port+" failed") {
			t.Fatalf("message = %q", err)
		}
		if _, err := os.Stat(filepath.Join(e.cfg.ExecRoot, "netns", id)); err == nil {
			t.Fatal("failed setup left its namespace file")
		}
		if after := e.nft(); after != before {
			t.Fatalf("failed setup changed the table:\n%s\nwas:\n%s", after, before)
		}
	}

	// A host process listening on the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_, _, err = e.trySetup("c", SandboxRequest{PortBindings: network.PortMap{p80: {{HostPort: busy}}}})
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "failed to bind host port for 0.0.0.0:"+busy+":") || !strings.Contains(err.Error(), "/tcp: address already in use") {
		t.Fatalf("port of a host process: %v", err)
	}

	// A range skips the taken port; UDP is a port space of its own.
	rng := port + "-" + strconv.Itoa(int(mustPort(port))+1)
	_, c := e.setup("d", SandboxRequest{PortBindings: network.PortMap{
		p80:                                {{HostPort: rng}},
		network.MustParsePort("53/udp"):    {{HostPort: port}},
		network.MustParsePort("8080/tcp"):  nil, // "-p 8080": random
		network.MustParsePort("10000/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}},
	}})
	if got := c.Ports[p80][0].HostPort; got != strconv.Itoa(int(mustPort(port))+1) {
		t.Fatalf("range %s gave %s", rng, got)
	}
	if got := c.Ports[network.MustParsePort("53/udp")][0].HostPort; got != port {
		t.Fatalf("udp port = %s", got)
	}
	if bs := c.Ports[network.MustParsePort("10000/tcp")]; len(bs) != 1 || bs[0].HostIP.String() != "127.0.0.1" || bs[0].HostPort == "" {
		t.Fatalf("127.0.0.1 binding = %v", bs)
	}
	if bs := c.Ports[network.MustParsePort("8080/tcp")]; len(bs) != 1 || bs[0].HostPort == "" {
		t.Fatalf("random binding = %v", bs)
	}

	// -P publishes every exposed port on a random one.
	_, d := e.setup("e", SandboxRequest{PublishAllPorts: true, ExposedPorts: network.PortSet{network.MustParsePort("7/tcp"): {}, network.MustParsePort("9/udp"): {}}})
	if len(d.Ports) != 2 || len(d.Ports[network.MustParsePort("7/tcp")]) != 1 || len(d.Ports[network.MustParsePort("9/udp")]) != 1 {
		t.Fatalf("-P ports = %v", d.Ports)
	}

	// Once the first is gone its port is free.
	if err := e.m.Teardown(context.Background(), id1); err != nil {
		t.Fatal(err)
	}
	e.setup("f", SandboxRequest{PortBindings: network.PortMap{p80: {{HostPort: port}}}})
}

// freePort returns a TCP port nothing listens on at 0.0.0.0 right now.
func freePort(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The next one must be free too, for the range test.
		if l2, err := net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(p+1)); err == nil {
			l2.Close()
			return strconv.Itoa(p)
		}
	}
	t.Fatal("no two free consecutive ports")
	return ""
}

func TestHostAndNone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	idN, none := e.setup("isolated", SandboxRequest{NetworkMode: "none", Hostname: "iso"})
	ls := links(t, none.NetNSPath)
	if len(ls) != 1 || ls["lo"] == nil || ls["lo"].Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("none: links %v, want lo alone and up", ls)
	}
	if es := none.Networks[NameNone]; es == nil || es.EndpointID == "" || es.IPAddress.IsValid() {
		t.Fatalf("none: networks %+v", none.Networks)
	}
	if hosts := readFile(t, none.HostsPath); strings.Contains(hosts, "iso") {
		t.Fatalf("none: hostname listed without an address:\n%s", hosts)
	}

	idH, host := e.setup("hostnet", SandboxRequest{NetworkMode: "host", ExtraHosts: []string{"extra:192.0.2.99"},
		PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "80"}}}})
	if host.NetNSPath != "" || len(host.Ports) != 0 {
		t.Fatalf("host: netns %q ports %v", host.NetNSPath, host.Ports)
	}
	if got := readFile(t, host.HostsPath); got != "127.0.0.1\tlocalhost\n192.0.2.7\thost-only-name\n192.0.2.99\textra\n" {
		t.Fatalf("host: hosts = %q", got)
	}
	if got, want := readFile(t, host.ResolvConfPath), readFile(t, e.cfg.HostResolvConf); got != want {
		t.Fatalf("host: resolv.conf = %q, want the host's %q", got, want)
	}
	hn, _ := os.Hostname()
	if got := readFile(t, host.HostnamePath); got != hn+"\n" {
		t.Fatalf("host: hostname = %q, want %q", got, hn)
	}
	ins, err := e.m.Inspect(ctx, NameHost)
	if err != nil || ins.Containers[idH].Name != "hostnet" || ins.Driver != DriverHost {
		t.Fatalf("inspect host = %+v, %v", ins, err)
	}

	// Host and none networking joins no other network.
	_, _, err = e.trySetup("x", SandboxRequest{NetworkMode: "host", Endpoints: map[string]*network.EndpointSettings{NameBridge: {}}})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "cannot be connected to network endpoints: host, bridge") {
		t.Fatalf("host plus bridge: %v", err)
	}
	for _, id := range []string{idN, idH} {
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.assertGone(none)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		req  SandboxRequest
		want string
	}{
		{"alias on default bridge", SandboxRequest{Endpoints: map[string]*network.EndpointSettings{NameBridge: {Aliases: []string{"x"}}}}, "network-scoped alias is supported only for containers in user defined networks"},
		{"static IP on default bridge", SandboxRequest{Endpoints: map[string]*network.EndpointSettings{NameBridge: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: e.gw.Next()}}}}, "user specified IP address is supported on user defined networks only"},
		{"unknown network", SandboxRequest{NetworkMode: "nosuchnet"}, "network nosuchnet not found"},
		{"container mode", SandboxRequest{NetworkMode: "container:abc"}, "the daemon shares"},
		{"bad add-host", SandboxRequest{ExtraHosts: []string{"nocolon"}}, "add-host"},
		{"bad host port", SandboxRequest{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "9-1"}}}}, "invalid host port"},
		{"IPv6 host address without IPv6", SandboxRequest{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("::1")}}}}, "no IPv6 address"},
		{"multicast MAC", SandboxRequest{Endpoints: map[string]*network.EndpointSettings{NameBridge: {MacAddress: network.HardwareAddr{1, 2, 3, 4, 5, 6}}}}, "invalid MAC"},
	} {
		_, id, err := e.trySetup("bad", tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !(errdefs.IsInvalidArgument(err) || errdefs.IsNotFound(err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if _, ok := e.m.Sandbox(id); ok {
			t.Errorf("%s: sandbox left", tc.name)
		}
	}
	if _, err := e.m.Setup(context.Background(), SandboxRequest{ContainerID: "../x", Dir: t.TempDir()}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad container id: %v", err)
	}
	if _, err := e.m.Setup(context.Background(), SandboxRequest{ContainerID: newID(), Dir: "relative"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative dir: %v", err)
	}
	// Every address handed out during the failures is free again.
	n, _ := e.m.defaultNetwork()
	if st := n.allocs[0].State(); len(st.Allocated) != 0 {
		t.Errorf("addresses left allocated: %v", st.Allocated)
	}
}
