// Package firewall keeps berth's packet filtering and NAT in nftables, in
// one table of the inet family that berth owns (named "berth" unless told
// otherwise). It never adds, changes or removes anything outside that
// table, and every change is one netlink batch, so the kernel applies it
// whole or not at all.
//
// The table holds:
//
//	set bridges            the bridges of berth's networks
//	chain raw-prerouting   drop packets from a bridge to 127.0.0.0/8 (so
//	                       route_localnet on a bridge opens nothing), and
//	                       packets to a network's subnet that do not come
//	                       from its bridge (no direct routing from outside)
//	chain forward          internal networks: nothing in or out of the
//	                       bridge; other networks: no traffic between
//	                       bridges unless it was DNATed to a published port
//	chain forward-guard    when the daemon asks (SetForwardGuard): drop
//	                       forwarded packets that neither enter nor leave
//	                       a bridge
//	chain prerouting,      packets for a local address go to chain ports
//	chain output
//	chain ports            one DNAT rule per published port
//	chain postrouting      masquerade a network's traffic leaving through
//	                       another interface, hairpin traffic, and traffic
//	                       from 127.0.0.0/8 reaching a container
//
// Rules for a network or a port carry a comment naming it, so they are
// found again by listing the table, with no state kept on our side.
package firewall

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// DefaultTable is the name of berth's table.
const DefaultTable = "berth"

// Network is a bridge network as the firewall sees it.
type Network struct {
	// Bridge is the network's Linux bridge.
	Bridge string
	// Subnets are the network's IPv4 and IPv6 subnets.
	Subnets []netip.Prefix
	// Internal networks get no traffic in or out of their bridge and no
	// masquerading.
	Internal bool
}

// PortMapping is a published port.
type PortMapping struct {
	// Proto is "tcp", "udp" or "sctp"; "" means tcp.
	Proto string
	// HostIP restricts the mapping to one local address (e.g. 127.0.0.1);
	// the zero value or an unspecified address means every local address
	// of ContainerIP's family.
	HostIP        netip.Addr
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
}

func (p PortMapping) proto() string {
	if p.Proto == "" {
		return "tcp"
	}
	return p.Proto
}

func (p PortMapping) anyHost() bool { return !p.HostIP.IsValid() || p.HostIP.IsUnspecified() }

// key names the host side of the mapping: two mappings with equal keys
// cannot coexist.
func (p PortMapping) key() string {
	host := "*"
	if !p.anyHost() {
		host = p.HostIP.String()
	}
	fam := "4"
	if p.ContainerIP.Is6() {
		fam = "6"
	}
	return fmt.Sprintf("port %s%s %s %d", p.proto(), fam, host, p.HostPort)
}

func (p PortMapping) check() error {
	switch p.proto() {
	case "tcp", "udp", "sctp":
	default:
		return fmt.Errorf("port mapping: unknown protocol %q: %w", p.Proto, errdefs.ErrInvalidArgument)
	}
	if p.HostPort == 0 || p.ContainerPort == 0 {
		return fmt.Errorf("port mapping: ports must be 1-65535: %w", errdefs.ErrInvalidArgument)
	}
	if !p.ContainerIP.IsValid() || p.ContainerIP.IsUnspecified() || p.ContainerIP.Zone() != "" {
		return fmt.Errorf("port mapping: container address %q is not usable: %w", p.ContainerIP, errdefs.ErrInvalidArgument)
	}
	if p.ContainerIP.Is4In6() {
		return fmt.Errorf("port mapping: container address %s is IPv4-mapped: %w", p.ContainerIP, errdefs.ErrInvalidArgument)
	}
	if !p.anyHost() && p.HostIP.Is4() != p.ContainerIP.Is4() {
		return fmt.Errorf("port mapping: host address %s and container address %s differ in family: %w", p.HostIP, p.ContainerIP, errdefs.ErrInvalidArgument)
	}
	return nil
}

// conflicts reports whether two mappings claim the same host port: the
// same protocol and family and port, on the same address or on all.
func (p PortMapping) conflicts(q PortMapping) bool {
	if p.proto() != q.proto() || p.HostPort != q.HostPort || p.ContainerIP.Is4() != q.ContainerIP.Is4() {
		return false
	}
	return p.anyHost() || q.anyHost() || p.HostIP == q.HostIP
}

func (n Network) check() error {
	if n.Bridge == "" || len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, "/ \t\n") {
		return fmt.Errorf("firewall: invalid bridge name %q: %w", n.Bridge, errdefs.ErrInvalidArgument)
	}
	for _, s := range n.Subnets {
		if !s.IsValid() || s.Masked() != s || s.Addr().Is4In6() {
			return fmt.Errorf("firewall: network %s: invalid subnet %s: %w", n.Bridge, s, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func netComment(bridge string) string { return "net " + bridge }

// portComment is the comment on a port's rule: its key and its target.
func portComment(p PortMapping) string {
	return p.key() + " -> " + netip.AddrPortFrom(p.ContainerIP, p.ContainerPort).String()
}

// portFromComment parses a comment written by portComment.
func portFromComment(s string) (PortMapping, bool) {
	f := strings.Fields(s)
	if len(f) != 6 || f[0] != "port" || f[4] != "->" || len(f[1]) < 2 {
		return PortMapping{}, false
	}
	p := PortMapping{Proto: f[1][:len(f[1])-1]}
	if f[2] != "*" {
		ip, err := netip.ParseAddr(f[2])
		if err != nil {
			return PortMapping{}, false
		}
		p.HostIP = ip
	}
	var port uint16
	if _, err := fmt.Sscanf(f[3], "%d", &port); err != nil {
		return PortMapping{}, false
	}
	p.HostPort = port
	dst, err := netip.ParseAddrPort(f[5])
	if err != nil {
		return PortMapping{}, false
	}
	p.ContainerIP, p.ContainerPort = dst.Addr(), dst.Port()
	return p, true
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// netipPrefixOf returns the single-address prefix of a.
func netipPrefixOf(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// ConflictError is AddPorts' error for a mapping whose host port another
// published mapping holds. It is of class errdefs.ErrConflict.
type ConflictError struct {
	Mapping PortMapping
	// Published describes the mapping in the way, as its rule's comment.
	Published string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("firewall: host port %s/%d is already published (%s): %v", e.Mapping.proto(), e.Mapping.HostPort, e.Published, errdefs.ErrConflict)
}

// Unwrap makes the error of class errdefs.ErrConflict.
func (e *ConflictError) Unwrap() error { return errdefs.ErrConflict }
