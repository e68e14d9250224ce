package ipam

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func mustNew(t *testing.T, cfg Config) *Allocator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return a
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestAllocateSequenceAndExhaustion(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("10.250.1.0/29")})
	if got := a.Gateway(); got != addr("10.250.1.1") {
		t.Fatalf("gateway = %s, want 10.250.1.1", got)
	}
	// .0 network, .1 gateway, .7 broadcast: .2 .. .6 remain.
	var got []netip.Addr
	for range 5 {
		ip, err := a.Allocate()
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		got = append(got, ip)
	}
	for i, want := range []string{"10.250.1.2", "10.250.1.3", "10.250.1.4", "10.250.1.5", "10.250.1.6"} {
		if got[i] != addr(want) {
			t.Fatalf("allocation %d = %s, want %s (all: %v)", i, got[i], want, got)
		}
	}
	if _, err := a.Allocate(); !errdefs.IsUnavailable(err) {
		t.Fatalf("allocate from a full subnet: err = %v, want unavailable", err)
	}
	// A released address comes back, and only it.
	if err := a.Release(addr("10.250.1.4")); err != nil {
		t.Fatal(err)
	}
	ip, err := a.Allocate()
	if err != nil || ip != addr("10.250.1.4") {
		t.Fatalf("allocate after release = %s, %v; want 10.250.1.4", ip, err)
	}
}

func TestAllocateDoesNotReuseAtOnce(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("10.250.2.0/24")})
	first, _ := a.Allocate()
	if err := a.Release(first); err != nil {
		t.Fatal(err)
	}
	second, _ := a.Allocate()
	if second == first {
		t.Fatalf("released %s was handed out again at once", first)
	}
}

func TestIPRangeAndGateway(t *testing.T) {
	a := mustNew(t, Config{
		Subnet:  prefix("10.250.0.0/16"),
		Gateway: addr("10.250.255.254"),
		IPRange: prefix("10.250.7.0/30"),
	})
	// The whole /30 range is usable: .0 and .3 are not the subnet's
	// network or broadcast address.
	for _, want := range []string{"10.250.7.0", "10.250.7.1", "10.250.7.2", "10.250.7.3"} {
		ip, err := a.Allocate()
		if err != nil || ip != addr(want) {
			t.Fatalf("allocate = %s, %v; want %s", ip, err, want)
		}
	}
	if _, err := a.Allocate(); !errdefs.IsUnavailable(err) {
		t.Fatalf("range exhausted: err = %v, want unavailable", err)
	}
	// Static addresses may lie outside the range but inside the subnet.
	if err := a.Request(addr("10.250.9.9")); err != nil {
		t.Fatalf("static outside range: %v", err)
	}
}

func TestGatewayInsideRangeIsSkipped(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("10.250.3.0/24"), Gateway: addr("10.250.3.2"), IPRange: prefix("10.250.3.0/30")})
	// Range .0-.3: .0 is the network address, .2 the gateway.
	for _, want := range []string{"10.250.3.1", "10.250.3.3"} {
		ip, err := a.Allocate()
		if err != nil || ip != addr(want) {
			t.Fatalf("allocate = %s, %v; want %s", ip, err, want)
		}
	}
	if _, err := a.Allocate(); !errdefs.IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestRequest(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("10.250.4.0/24")})
	if err := a.Request(addr("10.250.4.10")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip    string
		check func(error) bool
	}{
		{"10.250.4.10", errdefs.IsConflict},         // taken
		{"10.250.4.1", errdefs.IsConflict},          // gateway
		{"10.250.4.0", errdefs.IsInvalidArgument},   // network address
		{"10.250.4.255", errdefs.IsInvalidArgument}, // broadcast
		{"10.250.5.1", errdefs.IsInvalidArgument},   // outside
		{"fd00::1", errdefs.IsInvalidArgument},      // other family
	} {
		if err := a.Request(addr(tc.ip)); !tc.check(err) {
			t.Errorf("Request(%s) = %v", tc.ip, err)
		}
	}
	if !a.InUse(addr("10.250.4.10")) {
		t.Fatal("static address not in use")
	}
	// Dynamic allocation steps over the static address.
	for range 8 { // .2 .. .9
		if ip, err := a.Allocate(); err != nil || ip == addr("10.250.4.10") {
			t.Fatalf("allocate = %s, %v", ip, err)
		}
	}
	if ip, _ := a.Allocate(); ip != addr("10.250.4.11") {
		t.Fatalf("allocate after .9 = %s, want 10.250.4.11", ip)
	}
}

func TestRelease(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("10.250.5.0/24")})
	if err := a.Release(a.Gateway()); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("release gateway: %v", err)
	}
	if err := a.Release(addr("10.9.9.9")); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("release outside: %v", err)
	}
	if err := a.Release(addr("10.250.5.77")); err != nil {
		t.Fatalf("release free address: %v", err)
	}
}

func TestIPv6(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("fd00:be:1::/64")})
	if a.Gateway() != addr("fd00:be:1::1") {
		t.Fatalf("gateway = %s", a.Gateway())
	}
	ip, err := a.Allocate()
	if err != nil || ip != addr("fd00:be:1::2") {
		t.Fatalf("allocate = %s, %v", ip, err)
	}
	// No broadcast in IPv6: the last address is usable.
	if err := a.Request(addr("fd00:be:1::ffff:ffff:ffff:ffff")); err != nil {
		t.Fatal(err)
	}
	small := mustNew(t, Config{Subnet: prefix("fd00:be:2::/126")})
	// ::0 reserved, ::1 gateway, ::2 and ::3 usable.
	for _, want := range []string{"fd00:be:2::2", "fd00:be:2::3"} {
		if ip, err := small.Allocate(); err != nil || ip != addr(want) {
			t.Fatalf("allocate = %s, %v; want %s", ip, err, want)
		}
	}
	if _, err := small.Allocate(); !errdefs.IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Subnet: prefix("10.250.0.1/24")}, // host bits
		{Subnet: prefix("10.250.0.0/31")}, // too small
		{Subnet: prefix("10.250.0.0/24"), Gateway: addr("10.250.1.1")},      // gateway outside
		{Subnet: prefix("10.250.0.0/24"), Gateway: addr("10.250.0.255")},    // gateway = broadcast
		{Subnet: prefix("10.250.0.0/24"), IPRange: prefix("10.250.0.0/23")}, // range larger
		{Subnet: prefix("10.250.0.0/24"), IPRange: prefix("10.251.0.0/28")}, // range outside
		{Subnet: prefix("10.250.0.0/24"), IPRange: prefix("10.250.0.1/28")}, // range host bits
		{Subnet: prefix("10.250.0.0/24"), IPRange: prefix("fd00::/120")},    // range family
		{Subnet: prefix("::ffff:10.250.0.0/120")},                           // mapped
	} {
		if _, err := New(cfg); !errdefs.IsInvalidArgument(err) {
			t.Errorf("New(%+v) = %v, want invalid argument", cfg, err)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	a := mustNew(t, Config{Subnet: prefix("10.250.6.0/24"), IPRange: prefix("10.250.6.128/25")})
	ip1, _ := a.Allocate()
	ip2, _ := a.Allocate()
	if err := a.Request(addr("10.250.6.5")); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ip1); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(a.State())
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	b, err := Restore(s)
	if err != nil {
		t.Fatalf("restore %s: %v", raw, err)
	}
	if b.Subnet() != a.Subnet() || b.Gateway() != a.Gateway() || b.IPRange() != a.IPRange() {
		t.Fatalf("restored %s/%s/%s, want %s/%s/%s", b.Subnet(), b.Gateway(), b.IPRange(), a.Subnet(), a.Gateway(), a.IPRange())
	}
	if !b.InUse(ip2) || !b.InUse(addr("10.250.6.5")) || b.InUse(ip1) {
		t.Fatalf("restored allocations wrong: %s", raw)
	}
	// Allocation continues after the last one handed out before saving.
	next, err := b.Allocate()
	if err != nil || next != ip2.Next() {
		t.Fatalf("allocate after restore = %s, %v; want %s", next, err, ip2.Next())
	}
	// A state naming an address outside the subnet is refused.
	s.Allocated = append(s.Allocated, addr("10.1.1.1"))
	if _, err := Restore(s); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("restore with foreign address: %v", err)
	}
}

func TestPickSubnet(t *testing.T) {
	pools := []Pool{{Base: prefix("10.250.0.0/16"), Size: 24}}
	for _, tc := range []struct {
		used []string
		want string
	}{
		{nil, "10.250.0.0/24"},
		{[]string{"0.0.0.0/0", "10.250.0.0/24"}, "10.250.1.0/24"},
		{[]string{"10.250.0.0/23"}, "10.250.2.0/24"},                   // larger route covers two candidates
		{[]string{"10.250.0.77/32", "10.250.1.0/25"}, "10.250.2.0/24"}, // smaller routes inside candidates
		{[]string{"10.0.0.0/8"}, ""},                                   // everything taken
		{[]string{"fd00::/64", "10.250.0.0/24"}, "10.250.1.0/24"},      // other family ignored
	} {
		var used []netip.Prefix
		for _, u := range tc.used {
			used = append(used, prefix(u))
		}
		got, err := PickSubnet(pools, used)
		if tc.want == "" {
			if !errdefs.IsUnavailable(err) {
				t.Errorf("PickSubnet(%v) = %s, %v; want unavailable", tc.used, got, err)
			}
			continue
		}
		if err != nil || got != prefix(tc.want) {
			t.Errorf("PickSubnet(%v) = %s, %v; want %s", tc.used, got, err, tc.want)
		}
	}
	// Falls through to the next pool.
	got, err := PickSubnet([]Pool{{Base: prefix("10.250.0.0/23"), Size: 24}, {Base: prefix("10.251.0.0/16"), Size: 20}},
		[]netip.Prefix{prefix("10.250.0.0/24"), prefix("10.250.1.0/24")})
	if err != nil || got != prefix("10.251.0.0/20") {
		t.Fatalf("second pool: %s, %v", got, err)
	}
	// The defaults start at 172.17.0.0/16 and step past a host route.
	got, err = PickSubnet(DefaultPools(), []netip.Prefix{prefix("172.17.5.0/24")})
	if err != nil || got != prefix("172.18.0.0/16") {
		t.Fatalf("default pools: %s, %v", got, err)
	}
	if _, err := PickSubnet([]Pool{{Base: prefix("10.250.0.0/16"), Size: 8}}, nil); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad pool size: %v", err)
	}
	if _, err := ParsePool("10.0.0.1/8", 16); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("ParsePool host bits: %v", err)
	}
}

func TestHostRoutes(t *testing.T) {
	routes, err := HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	// The local table always holds loopback's 127.0.0.0/8.
	found := false
	for _, r := range routes {
		if r.Bits() == 0 {
			t.Fatalf("default route %s listed", r)
		}
		if r == prefix("127.0.0.0/8") {
			found = true
		}
	}
	if !found {
		t.Fatalf("127.0.0.0/8 missing from host routes %v", routes)
	}
	// Whatever the host has, the picked subnet overlaps none of it.
	got, err := PickSubnet(DefaultPools(), routes)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Overlaps(got) {
			t.Fatalf("picked %s overlaps host route %s", got, r)
		}
	}
}
