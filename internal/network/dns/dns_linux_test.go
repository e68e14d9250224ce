package dns

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-project/berth/internal/network/nettest"
)

// fakeResolver knows a fixed set of names.
type fakeResolver struct {
	names map[string][]netip.Addr
}

func (f *fakeResolver) LookupName(name string) ([]netip.Addr, bool) {
	a, ok := f.names[name]
	return a, ok
}

func (f *fakeResolver) LookupAddr(ip netip.Addr) ([]string, bool) {
	var out []string
	for n, addrs := range f.names {
		for _, a := range addrs {
			if a == ip {
				out = append(out, n+".net")
			}
		}
	}
	return out, len(out) > 0
}

// newUpstream is a resolver on the host's loopback that answers
// "external.test." with 192.0.2.123 and anything else with NXDOMAIN.
func newUpstream(t *testing.T) *nettest.Resolver {
	t.Helper()
	r, err := nettest.StartResolver(t, "127.0.0.1:0", "external.test.", netip.MustParseAddr("192.0.2.123"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newNS returns a fresh namespace with lo up, where 127.0.0.11 exists.
func newNS(t *testing.T) string {
	t.Helper()
	nettest.RequireRoot(t)
	p := nettest.NewNS(t)
	ns, err := netns.GetFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return p
}

// query asks the server in the namespace at path.
func query(t *testing.T, path, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	var resp *dns.Msg
	err := nettest.Do(path, func() error {
		m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
		var err error
		resp, _, err = (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, DefaultAddr.String())
		return err
	})
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func addrsOf(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		case *dns.PTR:
			out = append(out, r.Ptr)
		}
	}
	return out
}

func TestServer(t *testing.T) {
	path := newNS(t)
	up := newUpstream(t)
	many := &fakeResolver{names: map[string][]netip.Addr{
		"web": {netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::3")},
		"v4":  {netip.MustParseAddr("10.1.2.4")},
	}}
	for i := range 100 {
		many.names["many"] = append(many.names["many"], netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}))
	}
	s, err := Start(Config{NetNS: path, Resolver: many, Upstream: func() []netip.AddrPort { return []netip.AddrPort{up.Addr} }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, network := range []string{"udp", "tcp"} {
		r := query(t, path, network, "WEB", dns.TypeA)
		if got := addrsOf(r); r.Rcode != dns.RcodeSuccess || len(got) != 1 || got[0] != "10.1.2.3" || r.Answer[0].Header().Ttl != TTL {
			t.Fatalf("%s: A web = %v (%s)", network, got, dns.RcodeToString[r.Rcode])
		}
	}
	if got := addrsOf(query(t, path, "udp", "web", dns.TypeAAAA)); len(got) != 1 || got[0] != "fd00::3" {
		t.Fatalf("AAAA web = %v", got)
	}
	// A known name without an address of the type, or asked another
	// type: an empty success, not NXDOMAIN, and not forwarded.
	for _, qt := range []uint16{dns.TypeAAAA, dns.TypeMX} {
		r := query(t, path, "udp", "v4", qt)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Fatalf("%s v4 = %v (%s)", dns.TypeToString[qt], addrsOf(r), dns.RcodeToString[r.Rcode])
		}
	}
	if up.WasAsked("v4.") {
		t.Fatal("a container's name was forwarded")
	}
	// Reverse lookups, IPv4 and IPv6.
	if got := addrsOf(query(t, path, "udp", "3.2.1.10.in-addr.arpa", dns.TypePTR)); len(got) != 1 || got[0] != "web.net." {
		t.Fatalf("PTR 10.1.2.3 = %v", got)
	}
	rev, _ := dns.ReverseAddr("fd00::3")
	if got := addrsOf(query(t, path, "udp", rev, dns.TypePTR)); len(got) != 1 || got[0] != "web.net." {
		t.Fatalf("PTR fd00::3 = %v", got)
	}
	// Other names go upstream, over UDP and TCP alike; the upstream's
	// NXDOMAIN comes back as it is.
	if got := addrsOf(query(t, path, "udp", "external.test", dns.TypeA)); len(got) != 1 || got[0] != "192.0.2.123" {
		t.Fatalf("forwarded A = %v", got)
	}
	if r := query(t, path, "udp", "nosuch.test", dns.TypeA); r.Rcode != dns.RcodeNameError || !up.WasAsked("nosuch.test.") {
		t.Fatalf("unknown name: %s", dns.RcodeToString[r.Rcode])
	}
	// A reverse lookup of an unknown address is forwarded too.
	if query(t, path, "udp", "9.9.9.10.in-addr.arpa", dns.TypePTR); !up.WasAsked("9.9.9.10.in-addr.arpa.") {
		t.Fatal("unknown PTR not forwarded")
	}
	// Too many answers for 512 bytes: truncated over UDP, whole over TCP.
	if r := query(t, path, "udp", "many", dns.TypeA); !r.Truncated || len(r.Answer) >= 100 {
		t.Fatalf("udp: truncated %v with %d answers", r.Truncated, len(r.Answer))
	}
	if r := query(t, path, "tcp", "many", dns.TypeA); r.Truncated || len(r.Answer) != 100 {
		t.Fatalf("tcp: truncated %v with %d answers", r.Truncated, len(r.Answer))
	}

	// The sockets are in the namespace, not the host's.
	if c, err := net.DialTimeout("tcp", DefaultAddr.String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the server answers in the host's namespace")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: the address is free again in the namespace.
	if err := nettest.Do(path, func() error {
		pc, l, err := listenHere(DefaultAddr)
		if err == nil {
			pc.Close()
			l.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("sockets still open after Close: %v", err)
	}
}

func TestNoUpstream(t *testing.T) {
	path := newNS(t)
	s, err := Start(Config{NetNS: path, Resolver: &fakeResolver{names: map[string][]netip.Addr{"peer": {netip.MustParseAddr("10.1.2.5")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := addrsOf(query(t, path, "udp", "peer", dns.TypeA)); len(got) != 1 {
		t.Fatalf("peer = %v", got)
	}
	if r := query(t, path, "udp", "external.test", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("without upstream: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	// A second server on the same address fails cleanly.
	if _, err := Start(Config{NetNS: path, Resolver: &fakeResolver{}}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second server: %v", err)
	}
	if _, err := Start(Config{NetNS: "/nonexistent", Resolver: &fakeResolver{}}); err == nil {
		t.Fatal("start in a missing namespace succeeded")
	}
}

func TestParseReverse(t *testing.T) {
	for in, want := range map[string]string{
		"4.3.2.1.in-addr.arpa": "1.2.3.4",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa": "fd00::1",
		"3.2.1.in-addr.arpa":   "",
		"x.3.2.1.in-addr.arpa": "",
		"1.0.ip6.arpa":         "",
		"example.com":          "",
	} {
		ip, ok := parseReverse(in)
		if (want == "") == ok || (ok && ip.String() != want) {
			t.Errorf("parseReverse(%q) = %s, %v; want %q", in, ip, ok, want)
		}
	}
}

func TestRandomPorts(t *testing.T) {
	path := newNS(t)
	s, err := Start(Config{NetNS: path, Addr: netip.AddrPortFrom(DefaultAddr.Addr(), 0),
		Resolver: &fakeResolver{names: map[string][]netip.Addr{"peer": {netip.MustParseAddr("10.1.2.5")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	udp, tcp := s.Ports()
	if udp == 0 || tcp == 0 {
		t.Fatalf("ports %d/%d", udp, tcp)
	}
	for network, port := range map[string]uint16{"udp": udp, "tcp": tcp} {
		err := nettest.Do(path, func() error {
			m := new(dns.Msg).SetQuestion("peer.", dns.TypeA)
			r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, netip.AddrPortFrom(DefaultAddr.Addr(), port).String())
			if err == nil && len(r.Answer) != 1 {
				t.Errorf("%s: answers %v", network, r.Answer)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s on port %d: %v", network, port, err)
		}
	}
}
