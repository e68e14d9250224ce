package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/firewall"
)

// attachment is the kernel side of one endpoint, captured under mu so
// the kernel work can run without it.
type attachment struct {
	bridge string
	ep     bridge.Endpoint
}

// plannedEndpoint is a network a new sandbox joins and its settings.
type plannedEndpoint struct {
	n        *netState
	settings *network.EndpointSettings
}

// Setup gives a container its networking for NetworkMode and the other
// networks of req.Endpoints: a network namespace (none for host mode), an
// endpoint per network, published ports, the hosts, hostname and
// resolv.conf files in req.Dir, and the embedded DNS server on
// user-defined networks. On error nothing is left behind. A host port that
// is taken, by another container or by a host process, is an ErrConflict
// error in Docker's words.
func (m *Manager) Setup(ctx context.Context, req SandboxRequest) (*Sandbox, error) {
	if err := checkContainerID(req.ContainerID); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(req.Dir) {
		return nil, fmt.Errorf("container directory %q must be an absolute path: %w", req.Dir, errdefs.ErrInvalidArgument)
	}
	if st, err := os.Stat(req.Dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("container directory %s is not a directory: %w", req.Dir, errdefs.ErrInvalidArgument)
	}
	sb := &sandbox{holds: map[string]io.Closer{}, rec: sandboxRecord{
		ContainerID:    req.ContainerID,
		Name:           strings.TrimPrefix(req.Name, "/"),
		Hostname:       req.Hostname,
		Domainname:     req.Domainname,
		HostsPath:      filepath.Join(req.Dir, "hosts"),
		HostnamePath:   filepath.Join(req.Dir, "hostname"),
		ResolvConfPath: filepath.Join(req.Dir, "resolv.conf"),
		DNS:            req.DNS,
		DNSSearch:      req.DNSSearch,
		DNSOptions:     req.DNSOptions,
		ExtraHosts:     req.ExtraHosts,
		LinkHosts:      req.LinkHosts,
	}}
	portReqs, exposed, err := expandPorts(req.PortBindings, req.PublishAllPorts, req.ExposedPorts)
	if err != nil {
		return nil, err
	}

	m.mu.Lock()
	if _, ok := m.sandboxes[req.ContainerID]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("container %s already has its network set up: %w", req.ContainerID, errdefs.ErrAlreadyExists)
	}
	plan, err := m.plan(req)
	if err == nil {
		m.sandboxes[req.ContainerID] = sb
		err = m.reserve(sb, plan, portReqs, exposed)
	}
	var fs fileSet
	if err == nil {
		fs, err = m.buildFiles(&sb.rec)
	}
	var atts []attachment
	if err == nil {
		atts = m.attachments(sb)
	}
	if err != nil {
		m.releaseLocked(sb)
		m.mu.Unlock()
		return nil, err
	}
	m.mu.Unlock()

	if err := m.realize(ctx, sb, atts, fs); err != nil {
		m.undo(ctx, sb)
		return nil, err
	}
	// Nobody else touches a sandbox that is not ready: no lock needed.
	if err := m.putSandbox(&sb.rec); err != nil {
		m.undo(ctx, sb)
		return nil, fmt.Errorf("record network of container %s: %w", req.ContainerID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sb.ready = true
	return m.view(sb), nil
}

// plan resolves the networks a new sandbox joins, the NetworkMode one
// first. Callers hold mu.
func (m *Manager) plan(req SandboxRequest) ([]plannedEndpoint, error) {
	mode := req.NetworkMode
	var primary *netState
	var err error
	switch {
	case mode == "" || mode == network.NetworkDefault || mode == NameBridge:
		primary, err = m.defaultNetwork()
	case strings.HasPrefix(mode, "container:"):
		return nil, fmt.Errorf("network mode %s: the daemon shares the other container's sandbox itself: %w", mode, errdefs.ErrInvalidArgument)
	default:
		primary, err = m.lookupNetwork(mode)
	}
	if err != nil {
		return nil, err
	}
	settings := func(n *netState, keys ...string) *network.EndpointSettings {
		for _, k := range keys {
			if s := req.Endpoints[k]; s != nil {
				return s
			}
		}
		return nil
	}
	skip := req.SkipPrimary && primary.rec.Driver == DriverBridge
	var plan []plannedEndpoint
	if !skip {
		plan = append(plan, plannedEndpoint{n: primary, settings: settings(primary, primary.rec.Name, primary.rec.ID, mode, network.NetworkDefault)})
	}
	seen := map[string]string{primary.rec.ID: mode}
	var others []plannedEndpoint
	for key, s := range req.Endpoints {
		if key == mode || key == network.NetworkDefault && primary.rec.Default {
			// The CLI names the primary network as the mode does
			// ("default" for the default bridge).
			continue
		}
		n, err := m.lookupNetwork(key)
		if err != nil {
			return nil, err
		}
		if n == primary {
			continue
		}
		if prev, dup := seen[n.rec.ID]; dup {
			return nil, fmt.Errorf("network %s is named twice (%s and %s): %w", n.rec.Name, prev, key, errdefs.ErrInvalidArgument)
		}
		seen[n.rec.ID] = key
		others = append(others, plannedEndpoint{n: n, settings: s})
	}
	if (len(others) > 0 && primary.rec.Driver != DriverBridge && !skip) || slices.ContainsFunc(others, func(p plannedEndpoint) bool { return p.n.rec.Driver != DriverBridge }) {
		names := []string{primary.rec.Name}
		for _, o := range others {
			names = append(names, o.n.rec.Name)
		}
		//lint:ignore ST1005 Docker's wording
		return nil, fmt.Errorf("Container cannot be connected to network endpoints: %s: %w", strings.Join(names, ", "), errdefs.ErrInvalidArgument)
	}
	slices.SortFunc(others, func(a, b plannedEndpoint) int { return strings.Compare(a.n.rec.Name, b.n.rec.Name) })
	return append(plan, others...), nil
}

// defaultNetwork returns the default bridge. Callers hold mu.
func (m *Manager) defaultNetwork() (*netState, error) {
	for _, n := range m.networks {
		if n.rec.Default {
			return n, nil
		}
	}
	return nil, fmt.Errorf("network %s not found: %w", NameBridge, errdefs.ErrNotFound)
}

// reserve makes the sandbox's endpoints with their addresses, and the
// published ports on the gateway endpoint. Callers hold mu; on error the
// caller releases what was reserved (releaseLocked).
func (m *Manager) reserve(sb *sandbox, plan []plannedEndpoint, portReqs []portReq, exposed []network.Port) error {
	rec := &sb.rec
	var gw *endpointRecord
	for _, p := range plan {
		ep, err := m.newEndpoint(rec, p.n, p.settings)
		if err != nil {
			return err
		}
		if gw == nil && p.n.rec.Driver == DriverBridge && !p.n.rec.Internal {
			ep.Gateway, gw = true, ep
		}
	}
	if len(plan) == 0 || plan[0].n.rec.Driver == DriverBridge {
		rec.NetNS = filepath.Join(m.netnsDir(), rec.ContainerID)
		rec.Exposed = exposed
	} else if plan[0].n.rec.Driver == DriverNull {
		rec.NetNS = filepath.Join(m.netnsDir(), rec.ContainerID)
	}
	if gw != nil {
		ports, err := m.allocPorts(gw, m.networks[gw.NetworkID], portReqs, sb.holds)
		gw.Ports = ports
		if err != nil {
			return fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", rec.Name, gw.ID, err)
		}
	}
	return nil
}

// newEndpoint adds an endpoint on n to the sandbox record, with its
// addresses allocated. Callers hold mu; the record keeps the endpoint
// even on error, so releaseLocked frees what it got.
func (m *Manager) newEndpoint(rec *sandboxRecord, n *netState, s *network.EndpointSettings) (*endpointRecord, error) {
	if s == nil {
		s = &network.EndpointSettings{}
	}
	ep := &endpointRecord{ID: newID(), NetworkID: n.rec.ID, Aliases: slices.Clone(s.Aliases), Links: slices.Clone(s.Links),
		IPAMConfig: s.IPAMConfig.Copy(), GwPriority: s.GwPriority}
	if len(s.DriverOpts) > 0 {
		ep.DriverOpts = s.DriverOpts
	}
	if n.rec.Driver != DriverBridge {
		rec.Endpoints = append(rec.Endpoints, ep)
		return ep, nil
	}
	static := s.IPAMConfig != nil && (s.IPAMConfig.IPv4Address.IsValid() || s.IPAMConfig.IPv6Address.IsValid())
	switch {
	case len(s.Aliases) > 0 && !n.rec.userDefined():
		return nil, fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
	case static && !n.rec.userDefined():
		return nil, fmt.Errorf("user specified IP address is supported on user defined networks only: %w", errdefs.ErrInvalidArgument)
	}
	var mac net.HardwareAddr
	if len(s.MacAddress) > 0 {
		mac = net.HardwareAddr(s.MacAddress)
		if len(mac) != 6 || mac[0]&1 != 0 {
			return nil, fmt.Errorf("invalid MAC address %s: it must be a unicast Ethernet address: %w", mac, errdefs.ErrInvalidArgument)
		}
	}
	rec.Endpoints = append(rec.Endpoints, ep)
	for _, fam := range []int{4, 6} {
		var want netip.Addr
		if s.IPAMConfig != nil {
			want = s.IPAMConfig.IPv4Address
			if fam == 6 {
				want = s.IPAMConfig.IPv6Address
			}
		}
		sub, alloc, ok := n.subnet(fam)
		if !ok {
			if want.IsValid() {
				return nil, fmt.Errorf("network %s has no IPv%d subnet for address %s: %w", n.rec.Name, fam, want, errdefs.ErrInvalidArgument)
			}
			continue
		}
		ip := want
		if want.IsValid() {
			if !sub.User {
				return nil, fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
			}
			if err := alloc.Request(want); err != nil {
				if errdefs.IsConflict(err) {
					//lint:ignore ST1005 Docker's wording
					return nil, fmt.Errorf("Address already in use: %s on network %s: %w", want, n.rec.Name, errdefs.ErrConflict)
				}
				return nil, fmt.Errorf("network %s: %w", n.rec.Name, err)
			}
		} else {
			var err error
			if ip, err = alloc.Allocate(); err != nil {
				return nil, fmt.Errorf("network %s: %w", n.rec.Name, err)
			}
		}
		ep.Addrs = append(ep.Addrs, netip.PrefixFrom(ip, sub.Subnet.Bits()))
	}
	if mac == nil {
		if a, ok := ep.addr(4); ok {
			mac = bridge.MACFromIP(a.Addr())
		} else {
			mac = randomMAC()
		}
	}
	ep.MAC = mac.String()
	ep.IfName = fmt.Sprintf("eth%d", rec.NextIf)
	rec.NextIf++
	ep.HostIf = bridge.HostIfName(ep.ID)
	if n.rec.userDefined() {
		ep.DNSNames = dnsNames(rec, ep)
		rec.EmbeddedDNS = true
	}
	return ep, nil
}

// dnsNames are the names an endpoint answers to on a user-defined
// network: the container's name, its aliases and its short ID.
func dnsNames(rec *sandboxRecord, ep *endpointRecord) []string {
	var out []string
	if rec.Name != "" {
		out = append(out, rec.Name)
	}
	for _, a := range ep.Aliases {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if id := shortID(rec.ContainerID); !slices.Contains(out, id) {
		out = append(out, id)
	}
	return out
}

// randomMAC returns a random unicast, locally administered MAC.
func randomMAC() net.HardwareAddr {
	b := make(net.HardwareAddr, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&0xfe | 0x02
	return b
}

// releaseLocked frees the sandbox's addresses and port holds and forgets
// it. Callers hold mu.
func (m *Manager) releaseLocked(sb *sandbox) {
	for _, ep := range sb.rec.Endpoints {
		m.releaseEndpoint(ep)
	}
	sb.stop()
	if m.sandboxes[sb.rec.ContainerID] == sb {
		delete(m.sandboxes, sb.rec.ContainerID)
	}
}

// releaseEndpoint frees an endpoint's addresses. Callers hold mu.
func (m *Manager) releaseEndpoint(ep *endpointRecord) {
	n := m.networks[ep.NetworkID]
	if n == nil {
		return
	}
	for _, a := range ep.Addrs {
		if al := n.allocFor(a.Addr()); al != nil {
			_ = al.Release(a.Addr())
		}
	}
}

// attachments returns the kernel side of the sandbox's bridge endpoints.
// Callers hold mu.
func (m *Manager) attachments(sb *sandbox) []attachment {
	var out []attachment
	for _, ep := range sb.rec.Endpoints {
		if a, ok := m.attachment(&sb.rec, ep); ok {
			out = append(out, a)
		}
	}
	return out
}

func (m *Manager) attachment(rec *sandboxRecord, ep *endpointRecord) (attachment, bool) {
	n := m.networks[ep.NetworkID]
	if n == nil || n.rec.Driver != DriverBridge {
		return attachment{}, false
	}
	mac, _ := net.ParseMAC(ep.MAC)
	be := bridge.Endpoint{HostIfName: ep.HostIf, NetNS: rec.NetNS, IfName: ep.IfName, Addrs: ep.Addrs, MAC: mac, MTU: n.mtu(m.cfg.MTU)}
	if ep.Gateway && !n.rec.Internal {
		for _, s := range n.rec.Subnets {
			fam := 4
			if s.Subnet.Addr().Is6() {
				fam = 6
			}
			if _, ok := ep.addr(fam); ok {
				be.Gateways = append(be.Gateways, s.Gateway)
			}
		}
	}
	return attachment{bridge: n.rec.Bridge, ep: be}, true
}

// realize does the kernel work of a new sandbox: namespace, veths, DNAT
// rules, files, DNS server.
func (m *Manager) realize(ctx context.Context, sb *sandbox, atts []attachment, fs fileSet) error {
	rec := &sb.rec
	if rec.NetNS != "" {
		if err := newNetNS(rec.NetNS); err != nil {
			if errdefs.IsAlreadyExists(err) {
				// A leftover of a container that no longer exists.
				if err := removeNetNS(rec.NetNS); err != nil {
					return err
				}
				err = newNetNS(rec.NetNS)
			}
			if err != nil {
				return fmt.Errorf("network namespace of container %s: %w", rec.ContainerID, err)
			}
		}
	}
	for _, a := range atts {
		if err := bridge.Attach(a.bridge, a.ep); err != nil {
			return fmt.Errorf("connect container %s to bridge %s: %w", rec.ContainerID, a.bridge, err)
		}
	}
	for _, ep := range rec.Endpoints {
		if len(ep.Ports) == 0 {
			continue
		}
		if err := m.fw.AddPorts(mappings(ep.Ports)...); err != nil {
			// Only a rule no sandbox explains (Restore removes them)
			// can be in the way.
			var ce *firewall.ConflictError
			if errors.As(err, &ce) {
				err = bindError(ce.Mapping, portReq{}, "port is already allocated", errdefs.ErrConflict)
			}
			return fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", rec.Name, ep.ID, err)
		}
	}
	if err := writeFiles(rec, fs, false); err != nil {
		return err
	}
	if rec.EmbeddedDNS {
		if err := m.startDNS(ctx, sb); err != nil {
			return err
		}
	}
	return nil
}

// unrealize removes a sandbox's kernel side; every step is idempotent.
// With lazy set, the host ends of the veths are left to the kernel, which
// destroys both ends with the namespace once its file is unmounted: that
// takes tens of milliseconds (RCU grace periods) that Teardown need not
// wait for. A reaper deletes any that outlive the namespace.
func (m *Manager) unrealize(sb *sandbox, lazy bool) error {
	rec := &sb.rec
	var errs []error
	if sb.dns != nil {
		_ = sb.dns.Close()
		sb.dns = nil
	}
	var hostIfs []string
	var ports []portRecord
	for _, ep := range rec.Endpoints {
		ports = append(ports, ep.Ports...)
		if ep.HostIf != "" {
			hostIfs = append(hostIfs, ep.HostIf)
		}
	}
	if err := m.fw.RemovePorts(mappings(ports)...); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, err)
	}
	if rec.NetNS != "" {
		if err := removeNetNS(rec.NetNS); err != nil {
			errs = append(errs, err)
			lazy = false
		}
	}
	if lazy && rec.NetNS != "" {
		m.reap(hostIfs)
		return errors.Join(errs...)
	}
	for _, name := range hostIfs {
		if err := bridge.Detach(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reapTimeout is how long the kernel is given to destroy the veths of a
// namespace whose file was unmounted before they are deleted explicitly
// (something else still holds the namespace).
const reapTimeout = 3 * time.Second

// reap waits in the background for the host ends to disappear and deletes
// those still there after reapTimeout. Close waits for reapers.
func (m *Manager) reap(hostIfs []string) {
	if len(hostIfs) == 0 {
		return
	}
	m.reapers.Add(1)
	go func() {
		defer m.reapers.Done()
		deadline := time.Now().Add(reapTimeout)
		for len(hostIfs) > 0 {
			hostIfs = slices.DeleteFunc(hostIfs, func(name string) bool { return !linkExists(name) })
			if len(hostIfs) == 0 {
				return
			}
			if time.Now().After(deadline) {
				for _, name := range hostIfs {
					if err := bridge.Detach(name); err != nil {
						log.G(context.Background()).Warn("network: delete veth", "interface", name, "error", err)
					}
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

// undo removes what a failed Setup made and forgets the sandbox.
func (m *Manager) undo(ctx context.Context, sb *sandbox) {
	if err := m.unrealize(sb, false); err != nil {
		log.G(ctx).Warn("network: clean up after a failed setup", "container", sb.rec.ContainerID, "error", err)
	}
	for _, p := range []string{sb.rec.HostsPath, sb.rec.HostnamePath, sb.rec.ResolvConfPath} {
		_ = os.Remove(p)
	}
	m.mu.Lock()
	m.releaseLocked(sb)
	m.mu.Unlock()
}

// Teardown removes a container's networking: DNS server, DNAT rules and
// port reservations, veths, addresses, namespace file and record. The
// files in the container's directory stay. A container without networking
// is not an error; after a failure Teardown can be called again.
func (m *Manager) Teardown(ctx context.Context, containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	m.mu.Lock()
	sb := m.sandboxes[containerID]
	if sb == nil {
		m.mu.Unlock()
		// A namespace file left by a crash between its creation and the
		// record.
		return removeNetNS(filepath.Join(m.netnsDir(), containerID))
	}
	if !sb.ready {
		m.mu.Unlock()
		return fmt.Errorf("network of container %s is being changed: %w", containerID, errdefs.ErrUnavailable)
	}
	sb.ready, sb.gone = false, true
	m.mu.Unlock()

	err := m.unrealize(sb, true)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		sb.ready, sb.gone = true, false
		return fmt.Errorf("tear down network of container %s: %w", containerID, err)
	}
	if err := m.deleteRecord(kindSandboxes, containerID); err != nil {
		sb.ready, sb.gone = true, false
		return fmt.Errorf("tear down network of container %s: %w", containerID, err)
	}
	m.releaseLocked(sb)
	return nil
}

// Sandbox returns a container's networking as set up, for inspect.
func (m *Manager) Sandbox(containerID string) (*Sandbox, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sb := m.sandboxes[containerID]
	if sb == nil || !sb.ready {
		return nil, false
	}
	return m.view(sb), true
}

// view renders a sandbox. Callers hold mu.
func (m *Manager) view(sb *sandbox) *Sandbox {
	rec := &sb.rec
	out := &Sandbox{NetNSPath: rec.NetNS, HostsPath: rec.HostsPath, ResolvConfPath: rec.ResolvConfPath,
		HostnamePath: rec.HostnamePath, Networks: map[string]*network.EndpointSettings{}, Ports: portMap(rec)}
	for _, ep := range rec.Endpoints {
		if n := m.networks[ep.NetworkID]; n != nil {
			out.Networks[n.rec.Name] = m.endpointSettings(n, ep)
		}
	}
	return out
}

// endpointSettings renders an endpoint as Docker's inspect does.
func (m *Manager) endpointSettings(n *netState, ep *endpointRecord) *network.EndpointSettings {
	es := &network.EndpointSettings{
		IPAMConfig: ep.IPAMConfig.Copy(),
		Aliases:    slices.Clone(ep.Aliases),
		Links:      slices.Clone(ep.Links),
		DriverOpts: ep.DriverOpts,
		GwPriority: ep.GwPriority,
		NetworkID:  n.rec.ID,
		EndpointID: ep.ID,
		DNSNames:   slices.Clone(ep.DNSNames),
	}
	if mac, err := net.ParseMAC(ep.MAC); err == nil {
		es.MacAddress = network.HardwareAddr(mac)
	}
	for _, a := range ep.Addrs {
		var gw netip.Addr
		for _, s := range n.rec.Subnets {
			if s.Subnet.Contains(a.Addr()) {
				gw = s.Gateway
			}
		}
		if a.Addr().Is4() {
			es.IPAddress, es.IPPrefixLen, es.Gateway = a.Addr(), a.Bits(), gw
		} else {
			es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = a.Addr(), a.Bits(), gw
		}
	}
	return es
}
