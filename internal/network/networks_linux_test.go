package network

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/nettest"
)

// startUpstream stands for the host's resolver at e.upstream:53, in the
// host's namespace: "external.test." is 192.0.2.123, the rest NXDOMAIN.
func (e *env) startUpstream() *nettest.Resolver {
	e.t.Helper()
	r, err := nettest.StartResolver(e.t, netip.AddrPortFrom(e.upstream, 53).String(), "external.test.", netip.MustParseAddr("192.0.2.123"))
	if err != nil {
		e.t.Fatalf("fake host resolver: %v", err)
	}
	return r
}

// resolve asks the embedded DNS server of the sandbox at path, from inside
// it, and returns the answer's addresses and its rcode.
func resolve(t *testing.T, path, name string, qtype uint16) ([]netip.Addr, int) {
	t.Helper()
	var resp *dns.Msg
	err := nettest.Do(path, func() error {
		m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
		var err error
		resp, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, "127.0.0.11:53")
		return err
	})
	if err != nil {
		t.Fatalf("resolve %s: %v", name, err)
	}
	var out []netip.Addr
	for _, rr := range resp.Answer {
		switch r := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(r.A)
			out = append(out, a.Unmap())
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(r.AAAA)
			out = append(out, a)
		}
	}
	return out, resp.Rcode
}

func TestUserNetworks(t *testing.T) {
	e := newEnv(t)
	up := e.startUpstream()
	ctx := context.Background()

	front := e.createNetwork("front", network.CreateRequest{Labels: map[string]string{"tier": "front"}})
	if front.Driver != DriverBridge || front.Scope != "local" || !front.EnableIPv4 || front.EnableIPv6 || len(front.IPAM.Config) != 1 {
		t.Fatalf("front = %+v", front.Network)
	}
	fsub := front.IPAM.Config[0]
	if !netip.MustParsePrefix(networkPool).Contains(fsub.Subnet.Addr()) || fsub.Gateway != fsub.Subnet.Addr().Next() {
		t.Fatalf("front IPAM = %+v, want a subnet of %s", fsub, networkPool)
	}
	bsub := nettest.Subnet(t, networkPool)
	gw := netip.MustParseAddr(strings.TrimSuffix(bsub.Addr().String(), ".0") + ".254")
	rng := netip.PrefixFrom(gw.Prev().Prev(), 29).Masked() // .248/29
	brName := nettest.RandName("bu")
	back := e.createNetwork("back", network.CreateRequest{
		IPAM:    &network.IPAM{Config: []network.IPAMConfig{{Subnet: bsub, Gateway: gw, IPRange: rng}}},
		Options: map[string]string{OptBridgeName: brName, OptMTU: "1400"},
		Labels:  map[string]string{"tier": "back"},
	})
	if c := back.IPAM.Config[0]; c.Subnet != bsub || c.Gateway != gw || c.IPRange != rng || back.Options[OptMTU] != "1400" {
		t.Fatalf("back IPAM %+v options %v", back.IPAM, back.Options)
	}
	if l, err := netlink.LinkByName(brName); err != nil || l.Attrs().MTU != 1400 {
		t.Fatalf("bridge %s: %v", brName, err)
	}

	// Creation errors, in Docker's words.
	for _, tc := range []struct {
		name  string
		req   network.CreateRequest
		class func(error) bool
		want  string
	}{
		{"front", network.CreateRequest{}, errdefs.IsConflict, "network with name front already exists"},
		{"overlap", network.CreateRequest{IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: bsub}}}}, errdefs.IsPermission, "Pool overlaps"},
		{"h2", network.CreateRequest{Driver: "host"}, errdefs.IsPermission, `only one instance of "host" network is allowed`},
		{"ov", network.CreateRequest{Driver: "overlay"}, errdefs.IsNotFound, `plugin "overlay" not found`},
		{"bad name!", network.CreateRequest{}, errdefs.IsInvalidArgument, "invalid network name"},
		{"mtu", network.CreateRequest{Options: map[string]string{OptMTU: "9"}}, errdefs.IsInvalidArgument, "invalid MTU"},
		{"lo", network.CreateRequest{Options: map[string]string{OptBridgeName: "lo"}}, errdefs.IsConflict, "already exists"},
		{"dup", network.CreateRequest{Options: map[string]string{OptBridgeName: brName}}, errdefs.IsConflict, "is used by network back"},
		{"gwout", network.CreateRequest{IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.250.191.0/24"), Gateway: netip.MustParseAddr("10.250.190.1")}}}}, errdefs.IsInvalidArgument, "gateway"},
	} {
		if _, _, err := e.m.Create(ctx, tc.name, tc.req); !tc.class(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %s: %v, want %q", tc.name, err, tc.want)
		}
	}

	// Containers: two on front (one with an alias), one on back with a
	// static address outside its ip-range, one dynamic from the range.
	idA1, a1 := e.setup("a1", SandboxRequest{NetworkMode: "front"})
	idA2, a2 := e.setup("a2", SandboxRequest{NetworkMode: front.ID[:12], Endpoints: map[string]*network.EndpointSettings{
		"front": {Aliases: []string{"api"}}}})
	static := bsub.Addr().Next().Next().Next().Next().Next() // .5
	_, b1 := e.setup("b1", SandboxRequest{NetworkMode: "back", Endpoints: map[string]*network.EndpointSettings{
		"back": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: static}}}})
	_, b2 := e.setup("b2", SandboxRequest{NetworkMode: "back"})
	if got := b1.Networks["back"].IPAddress; got != static {
		t.Fatalf("static address = %s, want %s", got, static)
	}
	if got := b2.Networks["back"].IPAddress; !rng.Contains(got) || b2.Networks["back"].Gateway != gw {
		t.Fatalf("dynamic address %s not in ip-range %s (gateway %s)", got, rng, b2.Networks["back"].Gateway)
	}
	if l := links(t, b1.NetNSPath)["eth0"]; l.Attrs().MTU != 1400 {
		t.Fatalf("eth0 MTU on back = %d", l.Attrs().MTU)
	}
	if es := a2.Networks["front"]; !slices.Equal(es.Aliases, []string{"api"}) || !slices.Equal(es.DNSNames, []string{"a2", "api", idA2[:12]}) {
		t.Fatalf("a2 aliases %v DNS names %v", es.Aliases, es.DNSNames)
	}
	// The same static address again is taken.
	if _, _, err := e.trySetup("b3", SandboxRequest{NetworkMode: "back", Endpoints: map[string]*network.EndpointSettings{
		"back": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: static}}}}); !errdefs.IsConflict(err) {
		t.Fatalf("static address twice: %v", err)
	}
	// Static addresses need a subnet the user chose.
	if _, _, err := e.trySetup("a3", SandboxRequest{NetworkMode: "front", Endpoints: map[string]*network.EndpointSettings{
		"front": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: fsub.Subnet.Addr().Next().Next()}}}}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "user configured subnets") {
		t.Fatalf("static address on a picked subnet: %v", err)
	}

	// Same network: reachable. Different networks: isolated.
	ipA1, ipA2 := a1.Networks["front"].IPAddress, a2.Networks["front"].IPAddress
	nettest.Listen(t, a1.NetNSPath, ":80", "a1")
	if got, err := nettest.Fetch(a2.NetNSPath, hostPort(ipA1, "80"), 5*time.Second); err != nil || got != "a1" {
		t.Fatalf("a2 -> a1 = %q, %v", got, err)
	}
	if got, err := nettest.Fetch(b1.NetNSPath, hostPort(ipA1, "80"), blocked); err == nil {
		t.Fatalf("back reached front: %q", got)
	}

	// Embedded DNS: names, aliases, ID prefixes and name.network resolve
	// on the shared network only; the rest goes to the host's resolver.
	if got := readFile(t, a1.ResolvConfPath); got != "search example.test\nnameserver 127.0.0.11\noptions timeout:1 ndots:0\n" {
		t.Fatalf("resolv.conf on a user network = %q", got)
	}
	for _, name := range []string{"a2", "api", "A2", idA2[:12], idA2[:20], "a2.front"} {
		if got, rc := resolve(t, a1.NetNSPath, name, dns.TypeA); rc != dns.RcodeSuccess || !slices.Equal(got, []netip.Addr{ipA2}) {
			t.Errorf("a1 resolves %s = %v (%s), want %s", name, got, dns.RcodeToString[rc], ipA2)
		}
	}
	if got, _ := resolve(t, a2.NetNSPath, "a2", dns.TypeA); !slices.Equal(got, []netip.Addr{ipA2}) {
		t.Errorf("a2 resolves itself = %v", got)
	}
	// A legacy link is an alias for the linking container alone.
	idAl, al := e.setup("al", SandboxRequest{NetworkMode: "front", Endpoints: map[string]*network.EndpointSettings{
		"front": {Links: []string{"/a2:db"}}}})
	if got, rc := resolve(t, al.NetNSPath, "DB", dns.TypeA); rc != dns.RcodeSuccess || !slices.Equal(got, []netip.Addr{ipA2}) {
		t.Errorf("al resolves its link db = %v (%s), want %s", got, dns.RcodeToString[rc], ipA2)
	}
	if got, rc := resolve(t, a1.NetNSPath, "db", dns.TypeA); rc != dns.RcodeNameError || len(got) != 0 {
		t.Errorf("a1 resolves al's link db = %v (%s), want unknown", got, dns.RcodeToString[rc])
	}
	if got := al.Networks["front"].Links; !slices.Equal(got, []string{"/a2:db"}) {
		t.Errorf("al's endpoint links = %v", got)
	}
	if err := e.m.Teardown(ctx, idAl); err != nil {
		t.Fatal(err)
	}
	if got, rc := resolve(t, a1.NetNSPath, "b1", dns.TypeA); rc != dns.RcodeNameError || len(got) != 0 || !up.WasAsked("b1.") {
		t.Errorf("a1 resolves b1 of another network = %v (%s); want it forwarded and unknown", got, dns.RcodeToString[rc])
	}
	if got, rc := resolve(t, a1.NetNSPath, "external.test", dns.TypeA); rc != dns.RcodeSuccess || len(got) != 1 || got[0].String() != "192.0.2.123" {
		t.Errorf("forwarded = %v (%s)", got, dns.RcodeToString[rc])
	}
	if got, _ := resolve(t, b1.NetNSPath, "b2", dns.TypeA); !slices.Equal(got, []netip.Addr{b2.Networks["back"].IPAddress}) {
		t.Errorf("b1 resolves b2 = %v", got)
	}

	// Inspect lists the containers; ls filters.
	ins, err := e.m.Inspect(ctx, "front")
	if err != nil || len(ins.Containers) != 2 || ins.Containers[idA1].Name != "a1" || ins.Containers[idA2].IPv4Address.Addr() != ipA2 {
		t.Fatalf("inspect front containers = %+v, %v", ins.Containers, err)
	}
	for _, tc := range []struct {
		filters map[string][]string
		want    []string
	}{
		{nil, []string{"back", "bridge", "front", "host", "none"}},
		{map[string][]string{"name": {"fro"}}, []string{"front"}},
		{map[string][]string{"driver": {"bridge"}}, []string{"back", "bridge", "front"}},
		{map[string][]string{"type": {"custom"}}, []string{"back", "front"}},
		{map[string][]string{"type": {"builtin"}, "driver": {"null", "host"}}, []string{"host", "none"}},
		{map[string][]string{"label": {"tier=back"}}, []string{"back"}},
		{map[string][]string{"label": {"tier"}}, []string{"back", "front"}},
		{map[string][]string{"id": {front.ID[:6]}}, []string{"front"}},
		{map[string][]string{"dangling": {"true"}}, nil},
	} {
		list, err := e.m.List(ctx, tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range list {
			if n.Name == "front" || n.Name == "back" || n.Name == "bridge" || n.Name == "host" || n.Name == "none" {
				names = append(names, n.Name)
			}
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("ls %v = %v, want %v", tc.filters, names, tc.want)
		}
	}
	for _, bad := range []map[string][]string{{"color": {"x"}}, {"type": {"x"}}, {"dangling": {"maybe"}}} {
		if _, err := e.m.List(ctx, bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ls %v: %v", bad, err)
		}
	}

	// rm: refused for predefined networks and while in use.
	if err := e.m.Remove(ctx, "bridge"); !errdefs.IsPermission(err) || !strings.Contains(err.Error(), "bridge is a pre-defined network and cannot be removed") {
		t.Fatalf("rm bridge: %v", err)
	}
	if err := e.m.Remove(ctx, "front"); !errdefs.IsPermission(err) || !strings.Contains(err.Error(), "has active endpoints") {
		t.Fatalf("rm front in use: %v", err)
	}
	for _, id := range []string{idA1, idA2} {
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.m.List(ctx, map[string][]string{"dangling": {"true"}}); err != nil || len(got) != 1 || got[0].Name != "front" {
		t.Fatalf("dangling after teardown = %v, %v", got, err)
	}
	// prune: label! keeps front; then it goes, back (in use) stays.
	if got, err := e.m.Prune(ctx, map[string][]string{"label!": {"tier=front"}}); err != nil || len(got) != 0 {
		t.Fatalf("prune label!=tier=front = %v, %v", got, err)
	}
	// until: only networks created before an hour ago.
	if got, err := e.m.Prune(ctx, map[string][]string{"until": {"1h"}}); err != nil || len(got) != 0 {
		t.Fatalf("prune until 1h = %v, %v", got, err)
	}
	frontBridge := "br-" + front.ID[:12]
	if got, err := e.m.Prune(ctx, nil); err != nil || !slices.Equal(got, []string{"front"}) {
		t.Fatalf("prune = %v, %v", got, err)
	}
	if _, err := e.m.Inspect(ctx, "front"); !errdefs.IsNotFound(err) {
		t.Fatalf("inspect pruned network: %v", err)
	}
	if _, err := netlink.LinkByName(frontBridge); err == nil {
		t.Fatalf("bridge %s of the pruned network still exists", frontBridge)
	}
	if strings.Contains(e.nft(), frontBridge) {
		t.Fatalf("firewall rules of the pruned network left:\n%s", e.nft())
	}
}

func TestInternalNetwork(t *testing.T) {
	e := newEnv(t)
	up := e.startUpstream()
	e.createNetwork("inside", network.CreateRequest{Internal: true})
	e.createNetwork("outside", network.CreateRequest{})
	_, i1 := e.setup("i1", SandboxRequest{NetworkMode: "inside", PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{}}}})
	_, i2 := e.setup("i2", SandboxRequest{NetworkMode: "inside"})
	_, o1 := e.setup("o1", SandboxRequest{NetworkMode: "outside"})

	routes, _ := handle(t, i1.NetNSPath).RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil {
			t.Fatalf("internal network has a default route: %v", r)
		}
	}
	if len(i1.Ports[network.MustParsePort("80/tcp")]) != 0 {
		t.Fatalf("a port was published from an internal network: %v", i1.Ports)
	}
	nettest.Listen(t, i1.NetNSPath, ":80", "i1")
	nettest.Listen(t, o1.NetNSPath, ":80", "o1")
	ip1 := i1.Networks["inside"].IPAddress
	if got, err := nettest.Fetch(i2.NetNSPath, hostPort(ip1, "80"), 5*time.Second); err != nil || got != "i1" {
		t.Fatalf("inside the internal network: %q, %v", got, err)
	}
	if got, err := nettest.Fetch(o1.NetNSPath, hostPort(ip1, "80"), blocked); err == nil {
		t.Fatalf("reached the internal network from outside: %q", got)
	}
	if got, _ := resolve(t, i2.NetNSPath, "i1", dns.TypeA); !slices.Equal(got, []netip.Addr{ip1}) {
		t.Fatalf("i2 resolves i1 = %v", got)
	}
	// No way out, so no forwarding either.
	if _, rc := resolve(t, i2.NetNSPath, "external.test", dns.TypeA); rc != dns.RcodeServerFailure || up.WasAsked("external.test.") {
		t.Fatalf("internal network forwarded a query (%s)", dns.RcodeToString[rc])
	}
}

func TestIPv6Network(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	six := e.createNetwork("six", network.CreateRequest{EnableIPv6: ptr(true)})
	if !six.EnableIPv6 || len(six.IPAM.Config) != 2 || !six.IPAM.Config[1].Subnet.Addr().Is6() || six.IPAM.Config[1].Subnet.Bits() != 64 {
		t.Fatalf("six = %+v", six.IPAM)
	}
	sub6 := six.IPAM.Config[1].Subnet
	p80 := network.MustParsePort("80/tcp")
	_, v1 := e.setup("v1", SandboxRequest{NetworkMode: "six", PortBindings: network.PortMap{p80: {{}}}})
	_, v2 := e.setup("v2", SandboxRequest{NetworkMode: "six"})
	ip6 := v1.Networks["six"].GlobalIPv6Address
	if !sub6.Contains(ip6) || v1.Networks["six"].GlobalIPv6PrefixLen != 64 || v1.Networks["six"].IPv6Gateway != sub6.Addr().Next() {
		t.Fatalf("v1 endpoint = %+v", v1.Networks["six"])
	}
	addrs, _ := handle(t, v1.NetNSPath).AddrList(links(t, v1.NetNSPath)["eth0"], netlink.FAMILY_V6)
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(ip6.AsSlice()) }) {
		t.Fatalf("eth0 lacks %s: %v", ip6, addrs)
	}
	routes, _ := handle(t, v1.NetNSPath).RouteList(nil, netlink.FAMILY_V6)
	if !hasDefaultRoute(routes, sub6.Addr().Next()) {
		t.Fatalf("no IPv6 default route: %v", routes)
	}
	// Both families published on the same host port.
	bs := v1.Ports[p80]
	if len(bs) != 2 || bs[0].HostIP != netip.IPv4Unspecified() || bs[1].HostIP != netip.IPv6Unspecified() || bs[0].HostPort != bs[1].HostPort {
		t.Fatalf("ports = %v", bs)
	}
	nettest.Listen(t, v1.NetNSPath, "[::]:80", "v1")
	if got, err := nettest.Fetch(v2.NetNSPath, netip.AddrPortFrom(ip6, 80).String(), 5*time.Second); err != nil || got != "v1" {
		t.Fatalf("v2 -> v1 over IPv6 = %q, %v", got, err)
	}
	// The published port on the host's IPv6 address (the bridge's).
	if got, err := nettest.Fetch("", hostPort(sub6.Addr().Next(), bs[1].HostPort), 5*time.Second); err != nil || got != "v1" {
		t.Fatalf("host -> [%s]:%s = %q, %v", sub6.Addr().Next(), bs[1].HostPort, got, err)
	}
	if got, _ := resolve(t, v2.NetNSPath, "v1", dns.TypeAAAA); !slices.Equal(got, []netip.Addr{ip6}) {
		t.Fatalf("AAAA v1 = %v", got)
	}
	if !strings.Contains(readFile(t, v1.HostsPath), ip6.String()+"\t") {
		t.Fatalf("hosts lacks %s:\n%s", ip6, readFile(t, v1.HostsPath))
	}
	// A static IPv6 address on a picked subnet is refused like IPv4.
	if _, _, err := e.trySetup("v3", SandboxRequest{NetworkMode: "six", Endpoints: map[string]*network.EndpointSettings{
		"six": {IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: sub6.Addr().Next().Next().Next()}}}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("static IPv6 on a picked subnet: %v", err)
	}
	// An IPv6-only network.
	only6 := e.createNetwork("only6", network.CreateRequest{EnableIPv4: ptr(false), EnableIPv6: ptr(true)})
	if only6.EnableIPv4 || len(only6.IPAM.Config) != 1 || !only6.IPAM.Config[0].Subnet.Addr().Is6() {
		t.Fatalf("only6 = %+v", only6.IPAM)
	}
	_, w := e.setup("w", SandboxRequest{NetworkMode: "only6"})
	if es := w.Networks["only6"]; es.IPAddress.IsValid() || !es.GlobalIPv6Address.IsValid() {
		t.Fatalf("IPv6-only endpoint = %+v", es)
	}
	if _, err := e.m.Inspect(ctx, "only6"); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestConcurrentSandboxes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createNetwork("par", network.CreateRequest{})
	const n = 6
	type result struct {
		id  string
		sb  *Sandbox
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			sb, id, err := e.trySetup("c"+strconv.Itoa(i), SandboxRequest{NetworkMode: "par",
				PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{}}}})
			results <- result{id, sb, err}
		}()
	}
	// Networks come and go meanwhile.
	for i := range 3 {
		id, _, err := e.m.Create(ctx, "tmp"+strconv.Itoa(i), network.CreateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.m.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	ips, ports := map[netip.Addr]bool{}, map[string]bool{}
	var all []result
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("setup: %v", r.err)
		}
		e.record(r.sb)
		all = append(all, r)
		ips[r.sb.Networks["par"].IPAddress] = true
		ports[r.sb.Ports[network.MustParsePort("80/tcp")][0].HostPort] = true
	}
	if len(ips) != n || len(ports) != n {
		t.Fatalf("addresses %v and host ports %v are not all distinct", ips, ports)
	}
	// Everyone resolves everyone.
	for _, r := range all[1:] {
		if got, _ := resolve(t, all[0].sb.NetNSPath, r.sb.Networks["par"].DNSNames[0], dns.TypeA); !slices.Equal(got, []netip.Addr{r.sb.Networks["par"].IPAddress}) {
			t.Fatalf("resolve %s = %v", r.sb.Networks["par"].DNSNames[0], got)
		}
	}
	// Rename: the new name resolves, the old one no longer.
	if err := e.m.Rename(all[1].id, "/renamed"); err != nil {
		t.Fatal(err)
	}
	if got, _ := resolve(t, all[0].sb.NetNSPath, "renamed", dns.TypeA); !slices.Equal(got, []netip.Addr{all[1].sb.Networks["par"].IPAddress}) {
		t.Fatalf("renamed = %v", got)
	}
	if got, _ := resolve(t, all[0].sb.NetNSPath, all[1].sb.Networks["par"].DNSNames[0], dns.TypeA); len(got) != 0 {
		t.Fatalf("old name still resolves: %v", got)
	}
	errs := make(chan error, n)
	for _, r := range all {
		go func() { errs <- e.m.Teardown(ctx, r.id) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range all {
		e.assertGone(r.sb)
	}
}

// TestContainerOwnsPort53 checks a container on a user-defined network can
// run its own DNS server on port 53 while 127.0.0.11:53 still reaches the
// embedded one.
func TestContainerOwnsPort53(t *testing.T) {
	e := newEnv(t)
	e.createNetwork("dnsnet", network.CreateRequest{})
	_, a := e.setup("a", SandboxRequest{NetworkMode: "dnsnet"})
	_, b := e.setup("b", SandboxRequest{NetworkMode: "dnsnet"})
	var pc net.PacketConn
	var l net.Listener
	if err := nettest.Do(a.NetNSPath, func() (err error) {
		if pc, err = net.ListenPacket("udp", "0.0.0.0:53"); err != nil {
			return err
		}
		l, err = net.Listen("tcp", "0.0.0.0:53")
		return err
	}); err != nil {
		t.Fatalf("the container's own server on port 53: %v", err)
	}
	defer pc.Close()
	defer l.Close()
	if got, _ := resolve(t, a.NetNSPath, "b", dns.TypeA); !slices.Equal(got, []netip.Addr{b.Networks["dnsnet"].IPAddress}) {
		t.Fatalf("a resolves b = %v", got)
	}
}
