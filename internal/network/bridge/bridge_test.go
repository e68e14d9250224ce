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
	if len(a) != 15 || a[:4] != "veth" || a == b || a != HostIfName("abc") {
		t.Fatalf("HostIfName: %q %q", a, b)
	}
}
