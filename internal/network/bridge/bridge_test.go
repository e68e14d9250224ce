package bridge

import (
	"net/netip"
	"testing"
)

func TestMACFromIP(t *testing.T) {
	if got := MACFromIP(netip.MustParseAddr("172.17.0.2")).String(); got != "02:42:ac:11:00:02" {
		t.Fatalf("MACFromIP(172.17.0.2) = %s", got)
	}
	if got := MACFromIP(netip.MustParseAddr("fd00::2")); got != nil {
		t.Fatalf("MACFromIP(fd00::2) = %s, want nil", got)
	}
}

func TestHostIfName(t *testing.T) {
	a, b := HostIfName("abc"), HostIfName("abd")
	if len(a) != 15 || a[:5] != "berth" || a == b || a != HostIfName("abc") {
		t.Fatalf("HostIfName: %q %q", a, b)
	}
	if !IsHostIfName(a) {
		t.Fatalf("IsHostIfName(%q) = false", a)
	}
	for _, name := range []string{"berth0", "berth", "veth0123456789a", "berth0123456789a", "berth012345678g", "Berth0123456789", "br-0123456789ab"} {
		if IsHostIfName(name) {
			t.Errorf("IsHostIfName(%q) = true", name)
		}
	}
}
