package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/firewall"
)

// Restore takes over the networking the previous daemon left (live
// restore). The sandboxes of running containers are kept: their veths are
// checked and repaired, their host ports reserved again and their DNS
// servers restarted. Those of other containers are torn down, and so is
// what no record explains: namespace files in <ExecRoot>/netns and veths
// on berth's bridges, and berth's veth pairs left with both ends on the
// host. Finally berth's nftables table is rebuilt, in one
// transaction, with exactly the rules of the networks and kept ports. Call
// it once, right after New. Errors are collected; Restore does all it can.
func (m *Manager) Restore(ctx context.Context, running map[string]bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	keptIfs := map[string]bool{}
	keptNS := map[string]bool{}
	var ports []firewall.PortMapping

	ids := make([]string, 0, len(m.sandboxes))
	for id := range m.sandboxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		sb := m.sandboxes[id]
		if why := m.notRestorable(sb, running[id]); why != "" {
			log.G(ctx).Info("network: removing the network of a container that is gone", "container", id, "reason", why)
			if err := m.unrealize(sb, false); err != nil {
				errs = append(errs, fmt.Errorf("tear down network of container %s: %w", id, err))
				continue
			}
			if err := m.deleteRecord(kindSandboxes, id); err != nil {
				errs = append(errs, err)
				continue
			}
			m.releaseLocked(sb)
			continue
		}
		for _, a := range m.attachments(sb) {
			if err := bridge.Attach(a.bridge, a.ep); err != nil {
				errs = append(errs, fmt.Errorf("restore network of container %s: %w", id, err))
			}
			keptIfs[a.ep.HostIfName] = true
		}
		for _, ep := range sb.rec.Endpoints {
			for _, p := range ep.Ports {
				ports = append(ports, p.Mapping)
				key := mappingKey(p.Mapping)
				if sb.holds[key] != nil {
					continue
				}
				h, err := reservePort(p.Mapping.Proto, p.Mapping.HostIP, p.Mapping.HostPort)
				if err != nil {
					log.G(ctx).Warn("network: cannot reserve a published port again", "container", id, "port", key, "error", err)
					continue
				}
				sb.holds[key] = h
			}
		}
		if sb.rec.NetNS != "" {
			keptNS[sb.rec.NetNS] = true
		}
		if sb.rec.EmbeddedDNS && sb.dns == nil {
			if err := m.startDNS(ctx, sb); err != nil {
				errs = append(errs, fmt.Errorf("restore DNS of container %s: %w", id, err))
			}
		}
	}

	entries, err := os.ReadDir(m.netnsDir())
	if err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("list namespace files: %w", err))
	}
	for _, e := range entries {
		p := m.netnsDir() + "/" + e.Name()
		if !keptNS[p] {
			log.G(ctx).Info("network: removing a stray namespace file", "path", p)
			if err := removeNetNS(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, n := range m.sortedNetworks() {
		if n.rec.Driver != DriverBridge {
			continue
		}
		names, err := bridge.Ports(n.rec.Bridge)
		if err != nil {
			if !errdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		for _, name := range names {
			// Host ends are named by bridge.HostIfName, or "veth" and 11
			// hex digits by berths before it.
			if keptIfs[name] || !bridge.IsHostIfName(name) && !strings.HasPrefix(name, "veth") {
				continue
			}
			log.G(ctx).Info("network: removing a stray veth", "interface", name, "bridge", n.rec.Bridge)
			if err := bridge.Detach(name); err != nil && !errdefs.IsConflict(err) {
				errs = append(errs, err)
			}
		}
	}
	// Pairs with both ends on the host are no container's (see
	// bridge.RemoveStrayPairs), whichever daemon left them.
	removed, err := bridge.RemoveStrayPairs()
	for _, name := range removed {
		log.G(ctx).Info("network: removed a stray veth pair", "interface", name)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if err := m.fw.Sync(m.firewallNetworks(), ports); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: restore: %w", err)
	}
	return nil
}

// notRestorable says why a sandbox cannot be kept, or "" when it can.
// Callers hold mu.
func (m *Manager) notRestorable(sb *sandbox, running bool) string {
	if !running {
		return "not running"
	}
	if sb.rec.NetNS != "" && !isNetNS(sb.rec.NetNS) {
		return "namespace file gone"
	}
	for _, ep := range sb.rec.Endpoints {
		if m.networks[ep.NetworkID] == nil {
			return "network " + ep.NetworkID + " gone"
		}
	}
	return ""
}
