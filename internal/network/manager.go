package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/network/ipam"
)

// Manager owns berth's networks and the containers' sandboxes. It is safe
// for concurrent use; the daemon serializes the calls for one container.
type Manager struct {
	cfg Config
	fw  *firewall.Firewall

	// mu guards the maps and the allocators; kernel work runs outside
	// it, on sandboxes that are not ready (so no other call touches them).
	mu        sync.RWMutex
	networks  map[string]*netState // by ID
	sandboxes map[string]*sandbox  // by container ID

	// reapers are the goroutines deleting veths that outlive their
	// namespace (see reap).
	reapers sync.WaitGroup
}

// netState is a network and its address allocators, one per subnet.
type netState struct {
	rec    netRecord
	allocs []*ipam.Allocator
}

// sandbox is a container's networking in memory.
type sandbox struct {
	rec sandboxRecord
	// ready is false while Setup, Teardown, Connect or Disconnect works
	// on the sandbox; gone is set once Teardown starts, which takes its
	// names out of DNS.
	ready, gone bool
	// dns is the embedded DNS server, when it runs.
	dns io.Closer
	// holds keep the published host ports bound, by mapping key.
	holds map[string]io.Closer
}

// New opens the manager: it loads the networks and sandboxes from the
// store, creates the predefined networks bridge, host and none when they do
// not exist yet, makes sure every bridge network's Linux bridge and
// firewall rules exist, and prepares <ExecRoot>/netns. Call Restore next.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.DB == nil || cfg.ExecRoot == "" {
		return nil, fmt.Errorf("network: a metadata store and an exec root are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if cfg.DefaultAddressPools == nil {
		cfg.DefaultAddressPools = ipam.DefaultPools()
	}
	if cfg.MTU == 0 {
		cfg.MTU = bridge.DefaultMTU
	}
	if cfg.MTU < 68 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("network: MTU %d out of range: %w", cfg.MTU, errdefs.ErrInvalidArgument)
	}
	if cfg.HostResolvConf == "" {
		cfg.HostResolvConf = "/etc/resolv.conf"
	}
	if cfg.HostHosts == "" {
		cfg.HostHosts = "/etc/hosts"
	}
	fw, err := firewall.New(cfg.FirewallTable)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	m := &Manager{cfg: cfg, fw: fw, networks: map[string]*netState{}, sandboxes: map[string]*sandbox{}}
	if err := m.load(); err != nil {
		return nil, err
	}
	if err := fw.Init(); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if err := m.ensurePredefined(ctx); err != nil {
		return nil, err
	}
	for _, n := range m.sortedNetworks() {
		if n.rec.Driver != DriverBridge {
			continue
		}
		if err := m.bringUp(n); err != nil {
			return nil, fmt.Errorf("network %s: %w", n.rec.Name, err)
		}
	}
	if err := prepareNetNSDir(m.netnsDir()); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	ipv6 := false
	for _, n := range m.networks {
		ipv6 = ipv6 || n.rec.EnableIPv6
	}
	if err := m.forwarding(ctx, ipv6); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return m, nil
}

// Close stops the embedded DNS servers and releases the port reservations
// held in this process. It deletes nothing: the containers keep their
// networking, and the next daemon's Restore takes it over.
func (m *Manager) Close() error {
	m.mu.Lock()
	var sbs []*sandbox
	for _, sb := range m.sandboxes {
		sbs = append(sbs, sb)
	}
	m.mu.Unlock()
	// Outside mu: a DNS query in flight needs it to finish.
	for _, sb := range sbs {
		sb.stop()
	}
	m.reapers.Wait()
	return nil
}

// stop closes the sandbox's in-process parts: DNS server and port holds.
func (sb *sandbox) stop() {
	if sb.dns != nil {
		_ = sb.dns.Close()
		sb.dns = nil
	}
	for k, h := range sb.holds {
		_ = h.Close()
		delete(sb.holds, k)
	}
}

func (m *Manager) netnsDir() string { return filepath.Join(m.cfg.ExecRoot, "netns") }

// load reads the networks and sandboxes records and rebuilds the
// allocators from the endpoints' addresses.
func (m *Manager) load() error {
	err := m.cfg.DB.View(func(tx *metadata.Tx) error {
		if err := tx.ForEachJSON(kindNetworks, func(key string, raw []byte) error {
			var rec netRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("network record %s: %w: %w", key, errdefs.ErrDataLoss, err)
			}
			n, err := newNetState(rec)
			if err != nil {
				return fmt.Errorf("network record %s: %w", key, err)
			}
			m.networks[rec.ID] = n
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEachJSON(kindSandboxes, func(key string, raw []byte) error {
			var rec sandboxRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("sandbox record %s: %w: %w", key, errdefs.ErrDataLoss, err)
			}
			m.sandboxes[rec.ContainerID] = &sandbox{rec: rec, ready: true, holds: map[string]io.Closer{}}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("network: load: %w", err)
	}
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			n := m.networks[ep.NetworkID]
			if n == nil {
				continue // Restore tears it down
			}
			for _, a := range ep.Addrs {
				if al := n.allocFor(a.Addr()); al != nil {
					_ = al.Request(a.Addr())
				}
			}
		}
	}
	return nil
}

// newNetState makes the allocators of a network record.
func newNetState(rec netRecord) (*netState, error) {
	n := &netState{rec: rec}
	for _, s := range rec.Subnets {
		a, err := ipam.New(ipam.Config{Subnet: s.Subnet, Gateway: s.Gateway, IPRange: s.IPRange})
		if err != nil {
			return nil, err
		}
		for _, ip := range s.Aux {
			_ = a.Request(ip) // checked when the network was created
		}
		n.allocs = append(n.allocs, a)
	}
	return n, nil
}

// allocFor returns the allocator whose subnet holds ip.
func (n *netState) allocFor(ip netip.Addr) *ipam.Allocator {
	for _, a := range n.allocs {
		if a.Subnet().Contains(ip) {
			return a
		}
	}
	return nil
}

// subnet returns the network's subnet of the family (4 or 6).
func (n *netState) subnet(fam int) (subnetRecord, *ipam.Allocator, bool) {
	for i, s := range n.rec.Subnets {
		if (fam == 4) == s.Subnet.Addr().Is4() {
			return s, n.allocs[i], true
		}
	}
	return subnetRecord{}, nil, false
}

func (n *netState) mtu(def int) int {
	if n.rec.MTU > 0 {
		return n.rec.MTU
	}
	return def
}

// ensurePredefined creates the bridge, host and none networks when they
// are missing and applies --bip to the default bridge.
func (m *Manager) ensurePredefined(ctx context.Context) error {
	var def *netState
	have := map[string]bool{}
	for _, n := range m.networks {
		have[n.rec.Name] = true
		if n.rec.Default {
			def = n
		}
	}
	for _, p := range []struct{ name, driver string }{{NameHost, DriverHost}, {NameNone, DriverNull}} {
		if have[p.name] {
			continue
		}
		rec := netRecord{ID: newID(), Name: p.name, Driver: p.driver, Created: time.Now().UTC(), EnableIPv4: true,
			Options: map[string]string{}, Labels: map[string]string{}}
		if err := m.putNetwork(rec); err != nil {
			return err
		}
		m.networks[rec.ID] = &netState{rec: rec}
	}

	subnet, gw, err := m.defaultBridgeAddr(ctx, def)
	if err != nil {
		return err
	}
	if def != nil && def.rec.Subnets[0].Subnet == subnet && def.rec.Subnets[0].Gateway == gw && def.rec.Bridge == m.cfg.BridgeName {
		return nil
	}
	rec := netRecord{ID: newID(), Name: NameBridge, Driver: DriverBridge, Created: time.Now().UTC(), EnableIPv4: true, Default: true}
	if def != nil {
		rec = def.rec
	}
	rec.Bridge = m.cfg.BridgeName
	rec.MTU = m.cfg.MTU
	rec.Subnets = []subnetRecord{{Subnet: subnet, Gateway: gw, User: m.cfg.BIP != ""}}
	rec.Options = map[string]string{
		OptDefaultBridge:    "true",
		OptEnableICC:        "true",
		OptEnableMasquerade: "true",
		OptHostBindingIPv4:  "0.0.0.0",
		OptBridgeName:       m.cfg.BridgeName,
		OptMTU:              strconv.Itoa(m.cfg.MTU),
	}
	if rec.Labels == nil {
		rec.Labels = map[string]string{}
	}
	n, err := newNetState(rec)
	if err != nil {
		return fmt.Errorf("network: default bridge: %w", err)
	}
	if err := m.putNetwork(rec); err != nil {
		return err
	}
	if def != nil && def.rec.Bridge != rec.Bridge {
		_ = m.fw.RemoveNetwork(def.rec.Bridge)
	}
	m.networks[rec.ID] = n
	return nil
}

// defaultBridgeAddr decides the default bridge's subnet and gateway: --bip
// when given; else the existing record's, as long as containers use it or
// no --bip asks otherwise; else the address the Linux bridge already has;
// else the first subnet of the pools that overlaps no host route and no
// other network.
func (m *Manager) defaultBridgeAddr(ctx context.Context, def *netState) (netip.Prefix, netip.Addr, error) {
	if m.cfg.BIP != "" {
		p, err := netip.ParsePrefix(m.cfg.BIP)
		if err != nil || !p.Addr().Is4() || p.Addr() == p.Masked().Addr() || p.Bits() > 30 {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("network: --bip %q must be an IPv4 gateway address with a prefix length, e.g. 172.18.0.1/16: %w", m.cfg.BIP, errdefs.ErrInvalidArgument)
		}
		if def != nil && (def.rec.Subnets[0].Gateway != p.Addr() || def.rec.Subnets[0].Subnet != p.Masked()) && m.inUse(def.rec.ID) {
			log.G(ctx).Warn("network: containers use the default bridge; --bip applies once they are gone", "bip", m.cfg.BIP)
			return def.rec.Subnets[0].Subnet, def.rec.Subnets[0].Gateway, nil
		}
		return p.Masked(), p.Addr(), nil
	}
	if def != nil && len(def.rec.Subnets) > 0 {
		return def.rec.Subnets[0].Subnet, def.rec.Subnets[0].Gateway, nil
	}
	if addrs, err := bridge.Addrs(m.cfg.BridgeName); err == nil {
		for _, a := range addrs {
			if a.Addr().Is4() && a.Bits() <= 30 {
				return a.Masked(), a.Addr(), nil
			}
		}
	}
	subnet, err := m.pickSubnet()
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("network: default bridge: %w", err)
	}
	return subnet, subnet.Addr().Next(), nil
}

// pickSubnet returns a subnet of the address pools that overlaps neither a
// host route nor another network.
func (m *Manager) pickSubnet() (netip.Prefix, error) {
	used, err := ipam.HostRoutes()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, n := range m.networks {
		for _, s := range n.rec.Subnets {
			used = append(used, s.Subnet)
		}
	}
	return ipam.PickSubnet(m.cfg.DefaultAddressPools, used)
}

// bringUp makes the network's Linux bridge and firewall rules exist.
func (m *Manager) bringUp(n *netState) error {
	cfg := bridge.Config{Name: n.rec.Bridge, MTU: n.mtu(m.cfg.MTU), RouteLocalnet: true}
	fwn := firewall.Network{Bridge: n.rec.Bridge, Internal: n.rec.Internal}
	for _, s := range n.rec.Subnets {
		cfg.Addrs = append(cfg.Addrs, netip.PrefixFrom(s.Gateway, s.Subnet.Bits()))
		fwn.Subnets = append(fwn.Subnets, s.Subnet)
	}
	if err := bridge.Create(cfg); err != nil {
		return err
	}
	return m.fw.AddNetwork(fwn)
}

// firewallNetworks returns every bridge network as the firewall sees it.
func (m *Manager) firewallNetworks() []firewall.Network {
	var out []firewall.Network
	for _, n := range m.sortedNetworks() {
		if n.rec.Driver != DriverBridge {
			continue
		}
		fwn := firewall.Network{Bridge: n.rec.Bridge, Internal: n.rec.Internal}
		for _, s := range n.rec.Subnets {
			fwn.Subnets = append(fwn.Subnets, s.Subnet)
		}
		out = append(out, fwn)
	}
	return out
}

// inUse reports whether an endpoint is on the network. Callers hold mu.
func (m *Manager) inUse(networkID string) bool {
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			if ep.NetworkID == networkID {
				return true
			}
		}
	}
	return false
}

// sortedNetworks lists the networks by name. Callers hold mu (or own m
// alone, in New).
func (m *Manager) sortedNetworks() []*netState {
	out := make([]*netState, 0, len(m.networks))
	for _, n := range m.networks {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *netState) int {
		if a.rec.Name != b.rec.Name {
			if a.rec.Name < b.rec.Name {
				return -1
			}
			return 1
		}
		if a.rec.ID < b.rec.ID {
			return -1
		}
		return 1
	})
	return out
}

// lookupNetwork finds a network by full ID, name or unique ID prefix, as
// Docker does. Callers hold mu.
func (m *Manager) lookupNetwork(idOrName string) (*netState, error) {
	if idOrName == "" {
		return nil, fmt.Errorf("network name or ID is empty: %w", errdefs.ErrInvalidArgument)
	}
	if n, ok := m.networks[idOrName]; ok {
		return n, nil
	}
	for _, n := range m.networks {
		if n.rec.Name == idOrName {
			return n, nil
		}
	}
	var found []*netState
	if isHexPrefix(idOrName) {
		for _, n := range m.networks {
			if len(n.rec.ID) >= len(idOrName) && n.rec.ID[:len(idOrName)] == idOrName {
				found = append(found, n)
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("network %s not found: %w", idOrName, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix): %w", idOrName, len(found), errdefs.ErrInvalidArgument)
}

// Resolve returns the ID and name of the network with that ID, name or
// unique ID prefix, for the daemon to record a stopped container's
// networks.
func (m *Manager) Resolve(idOrName string) (id, name string, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookupNetwork(idOrName)
	if err != nil {
		return "", "", err
	}
	return n.rec.ID, n.rec.Name, nil
}

func (m *Manager) putNetwork(rec netRecord) error {
	return m.cfg.DB.Update(func(tx *metadata.Tx) error { return tx.PutJSON(kindNetworks, rec.ID, rec) })
}

// putSandbox saves a container's sandbox record. It goes through Group, as
// the daemon's container records do: containers starting at once share
// their commits.
func (m *Manager) putSandbox(rec *sandboxRecord) error {
	return m.cfg.DB.Group(func(tx *metadata.Tx) error { return tx.PutJSON(kindSandboxes, rec.ContainerID, rec) })
}

func (m *Manager) deleteRecord(kind, key string) error {
	err := m.cfg.DB.Group(func(tx *metadata.Tx) error { return tx.DeleteJSON(kind, key) })
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return nil
}
