package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/ipam"
)

// Create makes a user-defined bridge network from Docker's create
// request: its subnets (given, or picked from the address pools; an IPv6
// one is a random unique local /64 when --ipv6 names none), gateway,
// ip-range and auxiliary addresses, internal, attachable, labels, and the
// options bridge name, MTU and default host binding address. It returns
// the new network's ID and a warning ("" when none).
func (m *Manager) Create(ctx context.Context, name string, req network.CreateRequest) (id string, warning string, err error) {
	if name == "" {
		name = req.Name
	}
	if name == "" {
		return "", "", fmt.Errorf("network name is required: %w", errdefs.ErrInvalidArgument)
	}
	if !validName.MatchString(name) {
		return "", "", fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	switch req.Driver {
	case "", DriverBridge:
	case DriverHost, DriverNull:
		return "", "", fmt.Errorf("only one instance of %q network is allowed: %w", req.Driver, errdefs.ErrPermission)
	default:
		return "", "", fmt.Errorf("plugin %q not found: %w", req.Driver, errdefs.ErrNotFound)
	}
	if req.Scope != "" && req.Scope != "local" {
		return "", "", fmt.Errorf("network scope %q: only local networks are supported: %w", req.Scope, errdefs.ErrNotImplemented)
	}
	if req.Ingress || req.ConfigOnly || req.ConfigFrom != nil {
		return "", "", fmt.Errorf("ingress and config-only networks are not supported: %w", errdefs.ErrNotImplemented)
	}
	rec := netRecord{ID: newID(), Name: name, Driver: DriverBridge, Created: time.Now().UTC(),
		EnableIPv4: req.EnableIPv4 == nil || *req.EnableIPv4, EnableIPv6: req.EnableIPv6 != nil && *req.EnableIPv6,
		Internal: req.Internal, Attachable: req.Attachable,
		Options: maps.Clone(req.Options), Labels: maps.Clone(req.Labels)}
	if rec.Options == nil {
		rec.Options = map[string]string{}
	}
	if rec.Labels == nil {
		rec.Labels = map[string]string{}
	}
	if err := applyOptions(&rec); err != nil {
		return "", "", err
	}
	if err := parseIPAM(&rec, req); err != nil {
		return "", "", err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.networks {
		if n.rec.Name == name {
			return "", "", fmt.Errorf("network with name %s already exists: %w", name, errdefs.ErrConflict)
		}
		if n.rec.Bridge != "" && n.rec.Bridge == rec.Bridge {
			return "", "", fmt.Errorf("bridge name %s is used by network %s: %w", rec.Bridge, n.rec.Name, errdefs.ErrConflict)
		}
	}
	if rec.Bridge == "" {
		rec.Bridge = "br-" + shortID(rec.ID)
	}
	// Removing the network deletes its bridge: it must be berth's own.
	if linkExists(rec.Bridge) {
		return "", "", fmt.Errorf("bridge name %s: an interface of that name already exists: %w", rec.Bridge, errdefs.ErrConflict)
	}
	if err := m.completeSubnets(&rec); err != nil {
		return "", "", err
	}
	n, err := newNetState(rec)
	if err != nil {
		return "", "", fmt.Errorf("network %s: %w", name, err)
	}
	if m.cfg.IPForward && rec.EnableIPv6 {
		if err := m.forwarding(ctx, true); err != nil {
			return "", "", fmt.Errorf("create network %s: %w", name, err)
		}
	}
	if err := m.bringUp(n); err != nil {
		m.bringDown(ctx, n)
		return "", "", fmt.Errorf("create network %s: %w", name, err)
	}
	if err := m.putNetwork(rec); err != nil {
		m.bringDown(ctx, n)
		return "", "", fmt.Errorf("create network %s: %w", name, err)
	}
	m.networks[rec.ID] = n
	return rec.ID, "", nil
}

// applyOptions checks the driver options berth acts on.
func applyOptions(rec *netRecord) error {
	if b, ok := rec.Options[OptBridgeName]; ok {
		if b == "" || len(b) > 15 || !validName.MatchString(b) {
			return fmt.Errorf("invalid bridge name %q (at most 15 of [a-zA-Z0-9_.-]): %w", b, errdefs.ErrInvalidArgument)
		}
		rec.Bridge = b
	}
	if s, ok := rec.Options[OptMTU]; ok {
		mtu, err := strconv.Atoi(s)
		if err != nil || mtu < 68 || mtu > 65535 {
			return fmt.Errorf("invalid MTU %q (68-65535): %w", s, errdefs.ErrInvalidArgument)
		}
		rec.MTU = mtu
	}
	if s, ok := rec.Options[OptHostBindingIPv4]; ok {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("invalid host binding address %q: %w", s, errdefs.ErrInvalidArgument)
		}
		rec.HostBinding = ip
	}
	return nil
}

// parseIPAM takes the subnets of the request's IPAM configuration.
func parseIPAM(rec *netRecord, req network.CreateRequest) error {
	if req.IPAM == nil {
		return nil
	}
	if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
		return fmt.Errorf("plugin %q not found: %w", req.IPAM.Driver, errdefs.ErrNotFound)
	}
	if len(req.IPAM.Options) > 0 {
		rec.IPAMOptions = maps.Clone(req.IPAM.Options)
	}
	for _, c := range req.IPAM.Config {
		if !c.Subnet.IsValid() {
			if c.Gateway.IsValid() || c.IPRange.IsValid() || len(c.AuxAddress) > 0 {
				return fmt.Errorf("a gateway, ip-range or aux-address needs a subnet: %w", errdefs.ErrInvalidArgument)
			}
			continue
		}
		fam, enabled := 4, rec.EnableIPv4
		if c.Subnet.Addr().Is6() {
			fam = 6
			if req.EnableIPv6 == nil {
				rec.EnableIPv6 = true
			}
			enabled = rec.EnableIPv6
		}
		if !enabled {
			return fmt.Errorf("subnet %s is IPv%d, which the network does not enable: %w", c.Subnet, fam, errdefs.ErrInvalidArgument)
		}
		if slices.ContainsFunc(rec.Subnets, func(s subnetRecord) bool { return s.Subnet.Addr().Is4() == (fam == 4) }) {
			return fmt.Errorf("more than one IPv%d subnet per network is not supported: %w", fam, errdefs.ErrNotImplemented)
		}
		a, err := ipam.New(ipam.Config{Subnet: c.Subnet, Gateway: c.Gateway, IPRange: c.IPRange})
		if err != nil {
			return err
		}
		s := subnetRecord{Subnet: c.Subnet, Gateway: a.Gateway(), IPRange: c.IPRange, User: true}
		for k, ip := range c.AuxAddress {
			if err := a.Request(ip); err != nil {
				return fmt.Errorf("aux-address %s=%s: %w", k, ip, err)
			}
		}
		if len(c.AuxAddress) > 0 {
			s.Aux = maps.Clone(c.AuxAddress)
		}
		rec.Subnets = append(rec.Subnets, s)
	}
	if !rec.EnableIPv4 && !rec.EnableIPv6 {
		return fmt.Errorf("a network needs IPv4 or IPv6 enabled: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// completeSubnets picks the subnets the request left out and refuses one
// that overlaps another network's. Callers hold mu.
func (m *Manager) completeSubnets(rec *netRecord) error {
	for _, s := range rec.Subnets {
		for _, n := range m.networks {
			for _, o := range n.rec.Subnets {
				if o.Subnet.Overlaps(s.Subnet) {
					return fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space: %w", errdefs.ErrPermission)
				}
			}
		}
	}
	has := func(fam int) bool {
		return slices.ContainsFunc(rec.Subnets, func(s subnetRecord) bool { return s.Subnet.Addr().Is4() == (fam == 4) })
	}
	if rec.EnableIPv4 && !has(4) {
		p, err := m.pickSubnet()
		if err != nil {
			return fmt.Errorf("create network %s: %w", rec.Name, err)
		}
		rec.Subnets = append([]subnetRecord{{Subnet: p, Gateway: p.Addr().Next()}}, rec.Subnets...)
	}
	if rec.EnableIPv6 && !has(6) {
		p := randomULA()
		rec.Subnets = append(rec.Subnets, subnetRecord{Subnet: p, Gateway: p.Addr().Next()})
	}
	slices.SortStableFunc(rec.Subnets, func(a, b subnetRecord) int {
		if a.Subnet.Addr().Is4() == b.Subnet.Addr().Is4() {
			return 0
		}
		if a.Subnet.Addr().Is4() {
			return -1
		}
		return 1
	})
	return nil
}

// randomULA returns a random /64 of fd00::/8 (RFC 4193).
func randomULA() netip.Prefix {
	var b [16]byte
	_, _ = rand.Read(b[1:8])
	b[0] = 0xfd
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// bringDown removes a network's bridge and firewall rules.
func (m *Manager) bringDown(ctx context.Context, n *netState) {
	if err := m.fw.RemoveNetwork(n.rec.Bridge); err != nil {
		log.G(ctx).Warn("network: remove firewall rules", "network", n.rec.Name, "error", err)
	}
	if err := bridge.Delete(n.rec.Bridge); err != nil {
		log.G(ctx).Warn("network: delete bridge", "network", n.rec.Name, "error", err)
	}
}

// Inspect returns a network as Docker's inspect shows it, with the
// containers attached to it.
func (m *Manager) Inspect(ctx context.Context, idOrName string) (network.Inspect, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookupNetwork(idOrName)
	if err != nil {
		return network.Inspect{}, err
	}
	out := network.Inspect{Network: n.view(), Containers: map[string]network.EndpointResource{}}
	for id, sb := range m.sandboxes {
		if !sb.ready {
			continue
		}
		for _, ep := range sb.rec.Endpoints {
			if ep.NetworkID != n.rec.ID {
				continue
			}
			es := m.endpointSettings(n, ep)
			r := network.EndpointResource{Name: sb.rec.Name, EndpointID: ep.ID, MacAddress: es.MacAddress}
			if a, ok := ep.addr(4); ok {
				r.IPv4Address = a
			}
			if a, ok := ep.addr(6); ok {
				r.IPv6Address = a
			}
			out.Containers[id] = r
		}
	}
	return out, nil
}

// view renders the network's own fields.
func (n *netState) view() network.Network {
	r := &n.rec
	out := network.Network{Name: r.Name, ID: r.ID, Created: r.Created, Scope: "local", Driver: r.Driver,
		EnableIPv4: r.EnableIPv4, EnableIPv6: r.EnableIPv6, Internal: r.Internal, Attachable: r.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: maps.Clone(r.IPAMOptions), Config: []network.IPAMConfig{}},
		Options: maps.Clone(r.Options), Labels: maps.Clone(r.Labels)}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, s := range r.Subnets {
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: s.Subnet, IPRange: s.IPRange, Gateway: s.Gateway, AuxAddress: maps.Clone(s.Aux)})
	}
	return out
}

// Remove deletes a user-defined network that no container uses: its
// bridge, firewall rules and record.
func (m *Manager) Remove(ctx context.Context, idOrName string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupNetwork(idOrName)
	if err != nil {
		return err
	}
	return m.removeLocked(ctx, n)
}

func (m *Manager) removeLocked(ctx context.Context, n *netState) error {
	if n.rec.predefined() {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.rec.Name, errdefs.ErrPermission)
	}
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			if ep.NetworkID == n.rec.ID {
				return fmt.Errorf("error while removing network: network %s has active endpoints (name:%q id:%q): %w",
					n.rec.Name, sb.rec.Name, shortID(sb.rec.ContainerID), errdefs.ErrPermission)
			}
		}
	}
	var errs []error
	if err := m.fw.RemoveNetwork(n.rec.Bridge); err != nil {
		errs = append(errs, err)
	}
	if err := bridge.Delete(n.rec.Bridge); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove network %s: %w", n.rec.Name, err)
	}
	if err := m.deleteRecord(kindNetworks, n.rec.ID); err != nil {
		return fmt.Errorf("remove network %s: %w", n.rec.Name, err)
	}
	delete(m.networks, n.rec.ID)
	return nil
}

// List returns the networks that pass Docker's filters (dangling, driver,
// id, label, name, scope, type), sorted by name.
func (m *Manager) List(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	f, err := parseListFilters(filters)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []network.Summary{}
	for _, n := range m.sortedNetworks() {
		if f.match(n, m.inUse(n.rec.ID)) {
			out = append(out, network.Summary{Network: n.view()})
		}
	}
	return out, nil
}

// Prune removes the user-defined networks no container uses that pass the
// filters (until, label, label!) and returns their names.
func (m *Manager) Prune(ctx context.Context, filters map[string][]string) ([]string, error) {
	f, err := parsePruneFilters(filters)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var removed []string
	var errs []error
	for _, n := range m.sortedNetworks() {
		if n.rec.predefined() || m.inUse(n.rec.ID) || !f.match(n) {
			continue
		}
		if err := m.removeLocked(ctx, n); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n.rec.Name)
	}
	return removed, errors.Join(errs...)
}
