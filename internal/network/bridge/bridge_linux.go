package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// Create makes the bridge, or brings an existing one to cfg: MTU, gateway
// addresses, up, IPv4 forwarding on the bridge (and route_localnet when
// asked). Forwarding is switched on for the bridge only, never host-wide.
// An existing interface of that name that is not a bridge is a conflict.
func Create(cfg Config) error {
	if err := checkName(cfg.Name); err != nil {
		return err
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("bridge %s: MTU %d out of range: %w", cfg.Name, mtu, errdefs.ErrInvalidArgument)
	}
	for _, a := range cfg.Addrs {
		if !a.IsValid() || a.Addr() == a.Masked().Addr() {
			return fmt.Errorf("bridge %s: gateway address %s must be a host address with the subnet's length: %w", cfg.Name, a, errdefs.ErrInvalidArgument)
		}
	}

	link, err := netlink.LinkByName(cfg.Name)
	created := false
	switch {
	case err == nil:
		if link.Type() != "bridge" {
			return fmt.Errorf("bridge %s: an interface of that name exists and is a %s: %w", cfg.Name, link.Type(), errdefs.ErrConflict)
		}
	case isNotFound(err):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = cfg.Name
		attrs.MTU = mtu
		// A fixed MAC keeps the bridge's address from following its
		// lowest-numbered port as containers come and go.
		attrs.HardwareAddr = randomMAC()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("create bridge %s: %w", cfg.Name, classify(err))
		}
		created = true
		if link, err = netlink.LinkByName(cfg.Name); err != nil {
			return fmt.Errorf("bridge %s: %w", cfg.Name, classify(err))
		}
	default:
		return fmt.Errorf("bridge %s: %w", cfg.Name, classify(err))
	}
	if err := configure(link, cfg, mtu); err != nil {
		if created {
			_ = netlink.LinkDel(link)
		}
		return fmt.Errorf("bridge %s: %w", cfg.Name, err)
	}
	return nil
}

func configure(link netlink.Link, cfg Config, mtu int) error {
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, classify(err))
		}
	}
	for _, a := range cfg.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("add address %s: %w", a, classify(err))
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", classify(err))
	}
	if err := setSysctl("ipv4", cfg.Name, "forwarding", "1"); err != nil {
		return err
	}
	if cfg.RouteLocalnet {
		if err := setSysctl("ipv4", cfg.Name, "route_localnet", "1"); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the bridge and with it its addresses and routes. Deleting
// a bridge that does not exist is not an error; an interface of that name
// that is not a bridge is left alone and reported as a conflict.
func Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, classify(err))
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("delete bridge %s: the interface is a %s: %w", name, link.Type(), errdefs.ErrConflict)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete bridge %s: %w", name, classify(err))
	}
	return nil
}

// Ports lists the names of the interfaces attached to the bridge, so the
// daemon can find veths left by containers it no longer knows.
func Ports(name string) ([]string, error) {
	br, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, classify(err))
	}
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: list links: %w", name, classify(err))
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// Addrs lists the bridge's global IPv4 and IPv6 addresses with their
// prefix lengths, so the daemon can adopt the address of an existing bridge.
func Addrs(name string) ([]netip.Prefix, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, classify(err))
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("bridge %s: list addresses: %w", name, classify(err))
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// Attach connects a container to the bridge: a veth pair whose host end
// (ep.HostIfName) joins the bridge and whose peer is created inside the
// namespace ep.NetNS as ep.IfName with ep's MAC, MTU and addresses, set up,
// with a default route through each gateway. Loopback in the namespace is
// set up too.
//
// When the host end already exists on this bridge and the container side
// is in place, Attach only reapplies the settings (live restore). A stale
// host end (its peer gone, or on another bridge) is deleted and made anew.
// On failure Attach removes what it created.
func Attach(bridgeName string, ep Endpoint) error {
	if err := checkName(ep.HostIfName); err != nil {
		return err
	}
	if ep.IfName == "" {
		ep.IfName = "eth0"
	}
	if err := checkName(ep.IfName); err != nil {
		return err
	}
	if len(ep.Addrs) == 0 {
		return fmt.Errorf("attach %s: no address: %w", ep.HostIfName, errdefs.ErrInvalidArgument)
	}
	for _, gw := range ep.Gateways {
		ok := false
		for _, a := range ep.Addrs {
			ok = ok || (a.Addr().BitLen() == gw.BitLen() && a.Masked().Contains(gw))
		}
		if !ok {
			return fmt.Errorf("attach %s: gateway %s is in none of the endpoint's subnets: %w", ep.HostIfName, gw, errdefs.ErrInvalidArgument)
		}
	}
	br, err := netlink.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("attach %s: bridge %s: %w", ep.HostIfName, bridgeName, classify(err))
	}
	if br.Type() != "bridge" {
		return fmt.Errorf("attach %s: %s is not a bridge: %w", ep.HostIfName, bridgeName, errdefs.ErrInvalidArgument)
	}
	if ep.MTU == 0 {
		ep.MTU = br.Attrs().MTU
	}
	if ep.MAC == nil {
		for _, a := range ep.Addrs {
			if ep.MAC = MACFromIP(a.Addr()); ep.MAC != nil {
				break
			}
		}
		if ep.MAC == nil {
			ep.MAC = randomMAC()
		}
	}

	ns, err := netns.GetFromPath(ep.NetNS)
	if err != nil {
		return fmt.Errorf("attach %s: open netns %s: %w", ep.HostIfName, ep.NetNS, classify(err))
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("attach %s: netlink in %s: %w", ep.HostIfName, ep.NetNS, classify(err))
	}
	defer h.Close()

	host, err := reuse(h, br, ep)
	if err != nil {
		return fmt.Errorf("attach %s: %w", ep.HostIfName, err)
	}
	created := false
	if host == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = ep.HostIfName
		attrs.MTU = ep.MTU
		veth := &netlink.Veth{
			LinkAttrs:        attrs,
			PeerName:         ep.IfName,
			PeerHardwareAddr: ep.MAC,
			PeerMTU:          uint32(ep.MTU),
			PeerNamespace:    netlink.NsFd(int(ns)),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("attach %s: create veth pair: %w", ep.HostIfName, classify(err))
		}
		created = true
		if host, err = netlink.LinkByName(ep.HostIfName); err != nil {
			_ = netlink.LinkDel(veth)
			return fmt.Errorf("attach %s: %w", ep.HostIfName, classify(err))
		}
	}
	if err := setup(h, br, host, ep); err != nil {
		if created {
			_ = netlink.LinkDel(host)
		}
		return fmt.Errorf("attach %s to %s: %w", ep.HostIfName, bridgeName, err)
	}
	return nil
}

// reuse returns the existing host end when it is a veth whose peer is
// ep.IfName in the container's namespace and which is on br or on no bridge.
// It deletes a stale host end and returns nil when there is nothing to reuse.
func reuse(h *netlink.Handle, br netlink.Link, ep Endpoint) (netlink.Link, error) {
	host, err := netlink.LinkByName(ep.HostIfName)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	veth, ok := host.(*netlink.Veth)
	if !ok {
		return nil, fmt.Errorf("an interface named %s exists and is a %s: %w", ep.HostIfName, host.Type(), errdefs.ErrConflict)
	}
	master := host.Attrs().MasterIndex
	if master == 0 || master == br.Attrs().Index {
		peerIndex, err := netlink.VethPeerIndex(veth)
		if err == nil {
			peer, err := h.LinkByName(ep.IfName)
			if err == nil && peer.Attrs().Index == peerIndex {
				return host, nil
			}
		}
	}
	if err := netlink.LinkDel(host); err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("delete stale veth %s: %w", ep.HostIfName, classify(err))
	}
	return nil, nil
}

// setup brings both ends of the pair to ep's settings; every step is
// idempotent.
func setup(h *netlink.Handle, br, host netlink.Link, ep Endpoint) error {
	if host.Attrs().MTU != ep.MTU {
		if err := netlink.LinkSetMTU(host, ep.MTU); err != nil {
			return fmt.Errorf("set MTU of %s: %w", ep.HostIfName, classify(err))
		}
	}
	if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(host, br); err != nil {
			return fmt.Errorf("put %s on the bridge: %w", ep.HostIfName, classify(err))
		}
	}
	// Hairpin mode lets a container reach itself through a published
	// port: the DNATed packet must leave by the port it came in on.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", ep.HostIfName, classify(err))
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", ep.HostIfName, classify(err))
	}

	peer, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", ep.IfName, ep.NetNS, classify(err))
	}
	if peer.Attrs().MTU != ep.MTU {
		if err := h.LinkSetMTU(peer, ep.MTU); err != nil {
			return fmt.Errorf("set MTU of %s: %w", ep.IfName, classify(err))
		}
	}
	if peer.Attrs().HardwareAddr.String() != ep.MAC.String() {
		if err := h.LinkSetDown(peer); err != nil {
			return fmt.Errorf("set %s down: %w", ep.IfName, classify(err))
		}
		if err := h.LinkSetHardwareAddr(peer, ep.MAC); err != nil {
			return fmt.Errorf("set MAC %s of %s: %w", ep.MAC, ep.IfName, classify(err))
		}
	}
	for _, a := range ep.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(peer, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", a, ep.IfName, classify(err))
		}
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set %s up: %w", ep.IfName, classify(err))
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", ep.NetNS, classify(err))
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", classify(err))
	}
	for _, gw := range ep.Gateways {
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw.AsSlice(), Family: family(gw)}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("add default route via %s: %w", gw, classify(err))
		}
	}
	return nil
}

// Detach deletes the host end of a container's veth pair; the kernel
// removes the peer in the container with it. A missing interface is not an
// error; an interface of that name that is not a veth is left alone.
func Detach(hostIfName string) error {
	if err := checkName(hostIfName); err != nil {
		return err
	}
	link, err := netlink.LinkByName(hostIfName)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", hostIfName, classify(err))
	}
	if link.Type() != "veth" {
		return fmt.Errorf("detach %s: the interface is a %s, not a veth: %w", hostIfName, link.Type(), errdefs.ErrConflict)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("detach %s: %w", hostIfName, classify(err))
	}
	return nil
}

// RemoveStrayPairs deletes the veth pairs of the calling thread's
// namespace whose one end has a name of HostIfName's form and whose peer is
// in the same namespace. Attach creates the container's end directly in
// the container's namespace, so berth never has such a pair in use: it is
// a leftover (of a test, or of a berth that made the pair in two steps)
// and no container's. It returns the names of the ends deleted.
func RemoveStrayPairs() ([]string, error) {
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", classify(err))
	}
	var removed []string
	var errs []error
	for _, l := range links {
		veth, ok := l.(*netlink.Veth)
		if !ok || !IsHostIfName(veth.Name) || veth.NetNsID >= 0 || veth.ParentIndex == 0 {
			// Not berth's, or its peer is in another namespace.
			continue
		}
		if err := netlink.LinkDel(veth); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete stray veth pair %s: %w", veth.Name, classify(err)))
			continue
		}
		removed = append(removed, veth.Name)
	}
	return removed, errors.Join(errs...)
}

// retryDump runs a netlink dump again while the kernel says it was
// interrupted by a concurrent change (its result may then be incomplete),
// which happens on a host where interfaces come and go.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var out T
	var err error
	for range 10 {
		if out, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

func checkName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("invalid interface name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// classify gives a netlink or syscall error its errdefs class.
func classify(err error) error {
	switch {
	case isNotFound(err):
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: %w", err, errdefs.ErrAlreadyExists)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermission)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE):
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// randomMAC returns a random unicast, locally administered MAC.
func randomMAC() net.HardwareAddr {
	b := make(net.HardwareAddr, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&0xfe | 0x02
	return b
}

func setSysctl(fam, ifname, key, value string) error {
	p := filepath.Join("/proc/sys/net", fam, "conf", ifname, key)
	if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s: %w", p, classify(err))
	}
	return nil
}
