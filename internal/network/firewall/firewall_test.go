package firewall

import (
	"net/netip"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestPortComment(t *testing.T) {
	for _, p := range []PortMapping{
		{HostPort: 8080, ContainerIP: netip.MustParseAddr("10.250.0.2"), ContainerPort: 80},
		{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, ContainerIP: netip.MustParseAddr("10.250.0.2"), ContainerPort: 5353},
		{Proto: "sctp", HostIP: netip.MustParseAddr("::1"), HostPort: 1, ContainerIP: netip.MustParseAddr("fd00::2"), ContainerPort: 65535},
	} {
		q, ok := portFromComment(portComment(p))
		if !ok || portComment(q) != portComment(p) || !p.conflicts(q) {
			t.Errorf("round trip of %q gave %+v, %v", portComment(p), q, ok)
		}
	}
	for _, s := range []string{"", "net br0", "port tcp4 * x -> 10.0.0.1:80", "port tcp4 * 80 -> nowhere", "port tcp4 nohost 80 -> 10.0.0.1:80"} {
		if _, ok := portFromComment(s); ok {
			t.Errorf("portFromComment(%q) accepted", s)
		}
	}
}

func TestConflicts(t *testing.T) {
	c := netip.MustParseAddr("10.250.0.2")
	lo := netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("192.0.2.9")
	all := PortMapping{HostPort: 80, ContainerIP: c, ContainerPort: 80}
	for _, tc := range []struct {
		a, b PortMapping
		want bool
	}{
		{all, all, true},
		{all, PortMapping{HostIP: lo, HostPort: 80, ContainerIP: c, ContainerPort: 81}, true},
		{PortMapping{HostIP: lo, HostPort: 80, ContainerIP: c, ContainerPort: 80}, PortMapping{HostIP: other, HostPort: 80, ContainerIP: c, ContainerPort: 80}, false},
		{all, PortMapping{Proto: "udp", HostPort: 80, ContainerIP: c, ContainerPort: 80}, false},
		{all, PortMapping{HostPort: 81, ContainerIP: c, ContainerPort: 80}, false},
		{all, PortMapping{HostPort: 80, ContainerIP: netip.MustParseAddr("fd00::2"), ContainerPort: 80}, false},
	} {
		if got := tc.a.conflicts(tc.b); got != tc.want {
			t.Errorf("%s vs %s: conflicts = %v", tc.a.key(), tc.b.key(), got)
		}
	}
}

func TestCheck(t *testing.T) {
	c := netip.MustParseAddr("10.250.0.2")
	for _, p := range []PortMapping{
		{Proto: "icmp", HostPort: 1, ContainerIP: c, ContainerPort: 1},
		{HostPort: 0, ContainerIP: c, ContainerPort: 1},
		{HostPort: 1, ContainerIP: c, ContainerPort: 0},
		{HostPort: 1, ContainerPort: 1},
		{HostPort: 1, ContainerIP: netip.MustParseAddr("0.0.0.0"), ContainerPort: 1},
		{HostIP: netip.MustParseAddr("::1"), HostPort: 1, ContainerIP: c, ContainerPort: 1},
		{HostPort: 1, ContainerIP: netip.MustParseAddr("::ffff:10.0.0.1"), ContainerPort: 1},
	} {
		if err := p.check(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("check(%+v) = %v", p, err)
		}
	}
	for _, n := range []Network{{}, {Bridge: "a/b"}, {Bridge: "abcdefghijklmnop"}, {Bridge: "br", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}} {
		if err := n.check(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("check(%+v) = %v", n, err)
		}
	}
}
