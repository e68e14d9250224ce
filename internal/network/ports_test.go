package network

import (
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/firewall"
)

func TestExpandPorts(t *testing.T) {
	p80, p53 := network.MustParsePort("80/tcp"), network.MustParsePort("53/udp")
	p9, p7 := network.MustParsePort("9/tcp"), network.MustParsePort("7/sctp")
	lo := netip.MustParseAddr("127.0.0.1")
	reqs, ports, err := expandPorts(network.PortMap{
		p80: {{HostPort: "8080"}, {HostIP: lo, HostPort: "8000-8010"}},
		p53: nil,
	}, true, network.PortSet{p9: {}, p80: {}, p7: {}})
	if err != nil {
		t.Fatal(err)
	}
	want := []portReq{
		{port: p7},
		{port: p9},
		{port: p53},
		{port: p80, lo: 8080, hi: 8080},
		{port: p80, hostIP: lo, lo: 8000, hi: 8010},
	}
	if len(reqs) != len(want) {
		t.Fatalf("reqs = %+v", reqs)
	}
	for i := range want {
		if reqs[i] != want[i] {
			t.Errorf("req %d = %+v, want %+v", i, reqs[i], want[i])
		}
	}
	if len(ports) != 4 || ports[0] != p7 || ports[3] != p80 {
		t.Errorf("ports = %v", ports)
	}
	// Without -P an exposed port is only listed.
	reqs, ports, err = expandPorts(nil, false, network.PortSet{p9: {}})
	if err != nil || len(reqs) != 0 || len(ports) != 1 {
		t.Errorf("expose only: %v %v %v", reqs, ports, err)
	}
	for _, bad := range []network.PortMap{
		{p80: {{HostPort: "x"}}},
		{p80: {{HostPort: "10-9"}}},
		{p80: {{HostPort: "70000"}}},
		{p80: {{HostPort: "0-5"}}},
		{network.MustParsePort("80/icmp"): nil},
		{p80: {{HostIP: netip.MustParseAddr("fe80::1%eth0")}}},
	} {
		if _, _, err := expandPorts(bad, false, nil); !errdefs.IsInvalidArgument(err) {
			t.Errorf("expandPorts(%v) = %v, want invalid argument", bad, err)
		}
	}
}

func TestConflicts(t *testing.T) {
	c4 := netip.MustParseAddr("10.0.0.2")
	c6 := netip.MustParseAddr("fd00::2")
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	lo := netip.MustParseAddr("127.0.0.1")
	m := func(proto string, host netip.Addr, port uint16, c netip.Addr) firewall.PortMapping {
		return firewall.PortMapping{Proto: proto, HostIP: host, HostPort: port, ContainerIP: c, ContainerPort: 80}
	}
	for _, tc := range []struct {
		a, b firewall.PortMapping
		want bool
	}{
		{m("tcp", any4, 80, c4), m("tcp", any4, 80, c4), true},
		{m("tcp", any4, 80, c4), m("tcp", lo, 80, c4), true},
		{m("tcp", lo, 80, c4), m("tcp", netip.MustParseAddr("127.0.0.2"), 80, c4), false},
		{m("tcp", any4, 80, c4), m("udp", any4, 80, c4), false},
		{m("tcp", any4, 80, c4), m("tcp", any4, 81, c4), false},
		{m("tcp", any4, 80, c4), m("tcp", any6, 80, c6), false},
	} {
		if got := conflicts(tc.a, tc.b); got != tc.want {
			t.Errorf("conflicts(%s, %s) = %v", mappingKey(tc.a), mappingKey(tc.b), got)
		}
	}
}

func TestBindErrorWording(t *testing.T) {
	mp := firewall.PortMapping{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080}
	err := bindError(mp, portReq{lo: 8080, hi: 8080}, "port is already allocated", errdefs.ErrConflict)
	if got := err.Error(); got != "Bind for 0.0.0.0:8080 failed: port is already allocated: conflict" || !errdefs.IsConflict(err) {
		t.Errorf("message = %q", got)
	}
	mp.HostIP = netip.IPv6Unspecified()
	if got := bindError(mp, portReq{lo: 8000, hi: 8010}, "port is already allocated", errdefs.ErrConflict).Error(); got != "Bind for [::]:8000-8010 failed: port is already allocated: conflict" {
		t.Errorf("message = %q", got)
	}
	mp = firewall.PortMapping{Proto: "udp", HostIP: netip.IPv4Unspecified(), HostPort: 53, ContainerIP: netip.MustParseAddr("172.18.0.2"), ContainerPort: 5353}
	if got := hostBindError(mp, "address already in use", errdefs.ErrConflict).Error(); got != "failed to bind host port for 0.0.0.0:53:172.18.0.2:5353/udp: address already in use: conflict" {
		t.Errorf("message = %q", got)
	}
}

func TestFilters(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2h":                   now.Add(-2 * time.Hour),
		"1717243200":           time.Unix(1717243200, 0),
		"1717243200.5":         time.Unix(1717243200, 500000000),
		"2024-06-01":           time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		"2024-06-01T10:00:00Z": time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := parseUntil(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseUntil(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseUntil("yesterday", now); !errdefs.IsInvalidArgument(err) {
		t.Errorf("parseUntil(yesterday) = %v", err)
	}
	labels := map[string]string{"a": "1", "b": ""}
	for f, want := range map[string]bool{"a": true, "a=1": true, "a=2": false, "b=": true, "c": false} {
		if got := matchLabel(labels, f); got != want {
			t.Errorf("matchLabel(%q) = %v", f, got)
		}
	}
	if _, err := parsePruneFilters(map[string][]string{"dangling": {"true"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("prune with dangling: %v", err)
	}
	if !matchPattern("^web", "web1") || matchPattern("^web", "myweb") || !matchPattern("[", "a[b") {
		t.Error("matchPattern")
	}
}
