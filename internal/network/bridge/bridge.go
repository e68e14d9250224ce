// Package bridge manages the kernel side of berth's bridge networks: a Linux
// bridge carrying the network's gateway address, and per container a veth
// pair whose host end is a port of the bridge and whose other end becomes
// the container's interface (usually eth0) inside its network namespace,
// with its address, MAC, MTU and default route.
//
// All of it goes through netlink in process; nothing shells out. Every
// operation is idempotent, so the daemon can run it again after a restart
// (live restore) and find what it made before by name.
package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
)

// DefaultMTU is the MTU used when none is configured.
const DefaultMTU = 1500

// Config describes a Linux bridge.
type Config struct {
	// Name is the bridge's interface name, at most 15 bytes.
	Name string
	// MTU of the bridge; 0 means DefaultMTU.
	MTU int
	// Addrs are the gateway addresses with the subnet's prefix length,
	// e.g. 172.17.0.1/16. An internal network may have none.
	Addrs []netip.Prefix
	// RouteLocalnet lets packets addressed from 127.0.0.0/8 leave through
	// the bridge, which ports published on 127.0.0.1 need (nftables DNAT
	// from the host's loopback). Pair it with the firewall, which drops
	// packets to 127.0.0.0/8 arriving from a bridge.
	RouteLocalnet bool
}

// Endpoint describes a container's interface on a bridge.
type Endpoint struct {
	// HostIfName names the host end of the veth pair; see HostIfName.
	HostIfName string
	// NetNS is the path of the container's network namespace, e.g.
	// /proc/<pid>/ns/net or a bind mount of it.
	NetNS string
	// IfName is the interface's name inside the container; "" means eth0.
	IfName string
	// Addrs are the container's addresses with the subnet's prefix length.
	Addrs []netip.Prefix
	// Gateways get a default route each (one per family). Leave it empty
	// for an internal network.
	Gateways []netip.Addr
	// MAC of the container's interface; nil means MACFromIP of the first
	// IPv4 address, or a random one.
	MAC net.HardwareAddr
	// MTU of both ends; 0 means the bridge's.
	MTU int
}

// HostIfPrefix begins the name of every host end of a veth pair berth
// makes (see HostIfName), so that berth's veths are told apart from other
// software's, in `ip link` and when leftovers are cleaned up.
const HostIfPrefix = "berth"

// HostIfName derives the host-side veth name from an endpoint's ID, so the
// daemon finds the same interface again after a restart: HostIfPrefix and
// 10 hex digits of the ID's SHA-256 (15 bytes, the most a name can have).
func HostIfName(endpointID string) string {
	sum := sha256.Sum256([]byte(endpointID))
	return HostIfPrefix + hex.EncodeToString(sum[:])[:10]
}

// IsHostIfName reports whether name has the form HostIfName gives.
func IsHostIfName(name string) bool {
	rest, ok := strings.CutPrefix(name, HostIfPrefix)
	if !ok || len(rest) != 10 {
		return false
	}
	for _, r := range rest {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// MACFromIP derives a locally administered MAC from an IPv4 address the
// way Docker does: 02:42 followed by the address's four bytes. For any
// other address it returns nil.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	if !ip.Is4() {
		return nil
	}
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
