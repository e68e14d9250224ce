package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/network/dns"
	"github.com/berth-project/berth/internal/network/firewall"
)

// startDNS starts the sandbox's embedded DNS server in its namespace. The
// caller owns the sandbox (it is not ready, or mu is held).
func (m *Manager) startDNS(ctx context.Context, sb *sandbox) error {
	id := sb.rec.ContainerID
	// Random ports, reached through 127.0.0.11:53 by a DNAT rule in the
	// namespace: port 53 stays the container's.
	srv, err := dns.Start(dns.Config{
		NetNS:    sb.rec.NetNS,
		Addr:     netip.AddrPortFrom(DNSAddr, 0),
		Resolver: &peerResolver{m: m, containerID: id},
		Upstream: func() []netip.AddrPort { return m.forwardTo(id) },
	})
	if err != nil {
		return fmt.Errorf("embedded DNS of container %s: %w", id, err)
	}
	udp, tcp := srv.Ports()
	if err := firewall.RedirectDNS(sb.rec.NetNS, DNSAddr, udp, tcp); err != nil {
		srv.Close()
		return fmt.Errorf("embedded DNS of container %s: %w", id, err)
	}
	sb.dns = srv
	return nil
}

// forwardTo returns the upstream servers of a container's DNS server:
// none when it is only on internal networks, which have no way out.
func (m *Manager) forwardTo(containerID string) []netip.AddrPort {
	m.mu.RLock()
	sb := m.sandboxes[containerID]
	if sb == nil {
		m.mu.RUnlock()
		return nil
	}
	external := slices.ContainsFunc(sb.rec.Endpoints, func(ep *endpointRecord) bool {
		n := m.networks[ep.NetworkID]
		return n != nil && !n.rec.Internal
	})
	rec := sb.rec
	m.mu.RUnlock()
	if !external {
		return nil
	}
	return m.upstreams(&rec)
}

// peerResolver answers one container's DNS queries about the containers
// that share a user-defined network with it (itself included): their
// names, aliases and ID prefixes (at least 12 digits), also qualified
// with the network's name ("web.mynet").
type peerResolver struct {
	m           *Manager
	containerID string
}

// LookupName implements dns.Resolver.
func (r *peerResolver) LookupName(name string) ([]netip.Addr, bool) {
	m := r.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []netip.Addr
	found := false
	for _, n := range r.sharedNetworks() {
		short, qualified := name, false
		if s, ok := strings.CutSuffix(name, "."+strings.ToLower(n.rec.Name)); ok {
			short, qualified = s, true
		}
		if target := r.linked(n, name); target != "" {
			name, short, qualified = target, target, false
		}
		for _, sb := range m.sandboxes {
			for _, ep := range sb.rec.Endpoints {
				if ep.NetworkID != n.rec.ID || !answersTo(sb, ep, name) && !(qualified && answersTo(sb, ep, short)) {
					continue
				}
				found = true
				for _, a := range ep.Addrs {
					out = append(out, a.Addr())
				}
			}
		}
	}
	return out, found
}

// LookupAddr implements dns.Resolver: "name.network" of the container with
// that address on a shared network.
func (r *peerResolver) LookupAddr(ip netip.Addr) ([]string, bool) {
	m := r.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, n := range r.sharedNetworks() {
		for _, sb := range m.sandboxes {
			for _, ep := range sb.rec.Endpoints {
				if ep.NetworkID != n.rec.ID || !slices.ContainsFunc(ep.Addrs, func(a netip.Prefix) bool { return a.Addr() == ip }) {
					continue
				}
				name := sb.rec.Name
				if name == "" {
					name = shortID(sb.rec.ContainerID)
				}
				out = append(out, name+"."+n.rec.Name)
			}
		}
	}
	return out, len(out) > 0
}

// linked returns the container the asking container's legacy link on n
// names alias ("" if none does). Callers hold mu.
func (r *peerResolver) linked(n *netState, alias string) string {
	sb := r.m.sandboxes[r.containerID]
	if sb == nil {
		return ""
	}
	for _, ep := range sb.rec.Endpoints {
		if ep.NetworkID != n.rec.ID {
			continue
		}
		for _, l := range ep.Links {
			target, a, ok := strings.Cut(l, ":")
			if !ok {
				a = target
			}
			if strings.EqualFold(a, alias) {
				return strings.TrimPrefix(target, "/")
			}
		}
	}
	return ""
}

// sharedNetworks returns the user-defined networks of the asking
// container. Callers hold mu.
func (r *peerResolver) sharedNetworks() []*netState {
	sb := r.m.sandboxes[r.containerID]
	if sb == nil {
		return nil
	}
	var out []*netState
	for _, ep := range sb.rec.Endpoints {
		if n := r.m.networks[ep.NetworkID]; n != nil && n.rec.userDefined() {
			out = append(out, n)
		}
	}
	return out
}

// answersTo reports whether an endpoint answers to name: one of its DNS
// names, or a prefix of the container's ID of at least 12 digits.
func answersTo(sb *sandbox, ep *endpointRecord, name string) bool {
	if sb.gone {
		return false
	}
	for _, n := range ep.DNSNames {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return len(name) >= 12 && strings.HasPrefix(sb.rec.ContainerID, name)
}
