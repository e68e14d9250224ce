// Package ipam allocates addresses inside one network's subnet: the gateway,
// addresses handed out from an optional narrower ip-range, static requests and
// releases. An Allocator's whole state is a JSON-serializable State, so the
// daemon can persist it and restore it after a restart. IPv4 and IPv6 alike.
package ipam

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"

	"github.com/berth-project/berth/internal/errdefs"
)

// Config describes one network's address space.
type Config struct {
	// Subnet is the network's prefix, e.g. 172.18.0.0/16 or fd00:1::/64.
	// Host bits must be zero.
	Subnet netip.Prefix
	// Gateway is the address kept for the bridge. Zero means the first
	// usable address of Subnet.
	Gateway netip.Addr
	// IPRange narrows dynamic allocation to a sub-prefix of Subnet. Zero
	// means all of Subnet. Static requests may use any address of Subnet.
	IPRange netip.Prefix
}

// State is an Allocator's persistent form.
type State struct {
	Subnet    netip.Prefix `json:"subnet"`
	Gateway   netip.Addr   `json:"gateway"`
	IPRange   netip.Prefix `json:"ipRange,omitzero"`
	Allocated []netip.Addr `json:"allocated,omitempty"`
	// Last is the address handed out last; the next dynamic allocation
	// starts after it, so a released address is not reused at once.
	Last netip.Addr `json:"last,omitzero"`
}

// Allocator hands out the addresses of one network. It is safe for
// concurrent use.
type Allocator struct {
	mu        sync.Mutex
	subnet    netip.Prefix
	gateway   netip.Addr
	iprange   netip.Prefix
	allocated map[netip.Addr]struct{}
	last      netip.Addr
	// rangeSize is the number of usable addresses in iprange, saturated at
	// math.MaxUint64 (an IPv6 /64 never runs out in practice).
	rangeSize uint64
}

// New checks cfg and returns an allocator with only the gateway in use.
func New(cfg Config) (*Allocator, error) {
	if !cfg.Subnet.IsValid() {
		return nil, fmt.Errorf("ipam: subnet is required: %w", errdefs.ErrInvalidArgument)
	}
	subnet := cfg.Subnet
	if subnet.Masked() != subnet {
		return nil, fmt.Errorf("ipam: subnet %s has host bits set (did you mean %s?): %w", subnet, subnet.Masked(), errdefs.ErrInvalidArgument)
	}
	if subnet.Addr().Is4In6() {
		return nil, fmt.Errorf("ipam: subnet %s: IPv4-mapped IPv6 is not supported: %w", subnet, errdefs.ErrInvalidArgument)
	}
	hostBits := subnet.Addr().BitLen() - subnet.Bits()
	if hostBits < 2 {
		return nil, fmt.Errorf("ipam: subnet %s is too small: it needs room for a gateway and at least one container: %w", subnet, errdefs.ErrInvalidArgument)
	}
	a := &Allocator{subnet: subnet, allocated: map[netip.Addr]struct{}{}}

	a.iprange = subnet
	if cfg.IPRange.IsValid() {
		r := cfg.IPRange
		if r.Masked() != r {
			return nil, fmt.Errorf("ipam: ip-range %s has host bits set: %w", r, errdefs.ErrInvalidArgument)
		}
		if r.Addr().BitLen() != subnet.Addr().BitLen() || r.Bits() < subnet.Bits() || !subnet.Contains(r.Addr()) {
			return nil, fmt.Errorf("ipam: ip-range %s is not inside subnet %s: %w", r, subnet, errdefs.ErrInvalidArgument)
		}
		a.iprange = r
	}

	gw := cfg.Gateway
	if !gw.IsValid() {
		gw = subnet.Addr().Next()
	}
	if err := a.checkInSubnet(gw); err != nil {
		return nil, fmt.Errorf("ipam: gateway: %w", err)
	}
	a.gateway = gw
	a.allocated[gw] = struct{}{}
	a.rangeSize = a.usable(a.iprange)
	return a, nil
}

// Restore rebuilds an allocator from a State saved by State.
func Restore(s State) (*Allocator, error) {
	a, err := New(Config{Subnet: s.Subnet, Gateway: s.Gateway, IPRange: s.IPRange})
	if err != nil {
		return nil, fmt.Errorf("ipam: restore: %w", err)
	}
	for _, ip := range s.Allocated {
		if ip == a.gateway {
			continue
		}
		if err := a.checkInSubnet(ip); err != nil {
			return nil, fmt.Errorf("ipam: restore: %w", err)
		}
		a.allocated[ip] = struct{}{}
	}
	if s.Last.IsValid() && a.iprange.Contains(s.Last) {
		a.last = s.Last
	}
	return a, nil
}

// Subnet returns the network's prefix.
func (a *Allocator) Subnet() netip.Prefix { return a.subnet }

// Gateway returns the gateway address.
func (a *Allocator) Gateway() netip.Addr { return a.gateway }

// IPRange returns the prefix dynamic allocation draws from.
func (a *Allocator) IPRange() netip.Prefix { return a.iprange }

// State returns a copy of the allocator's state for persistence.
func (a *Allocator) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := State{Subnet: a.subnet, Gateway: a.gateway, Last: a.last}
	if a.iprange != a.subnet {
		s.IPRange = a.iprange
	}
	for ip := range a.allocated {
		if ip != a.gateway {
			s.Allocated = append(s.Allocated, ip)
		}
	}
	slices.SortFunc(s.Allocated, netip.Addr.Compare)
	return s
}

// Allocate hands out the next free address of the ip-range, searching after
// the last one handed out and wrapping around. It fails with
// errdefs.ErrUnavailable when the range is full.
func (a *Allocator) Allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	inRange := uint64(0)
	for ip := range a.allocated {
		if ip != a.gateway && a.iprange.Contains(ip) && !a.reserved(ip) {
			inRange++
		}
	}
	if inRange >= a.rangeSize {
		return netip.Addr{}, fmt.Errorf("ipam: no free address in %s: %w", a.iprange, errdefs.ErrUnavailable)
	}
	first := a.iprange.Addr()
	ip := a.last
	if !ip.IsValid() {
		ip = first
	} else {
		ip = ip.Next()
	}
	// At most len(allocated)+1 steps find a free address because the
	// range has one (checked above); the loop also walks reserved ones.
	for {
		if !ip.IsValid() || !a.iprange.Contains(ip) {
			ip = first
		}
		if _, used := a.allocated[ip]; !used && !a.reserved(ip) {
			a.allocated[ip] = struct{}{}
			a.last = ip
			return ip, nil
		}
		ip = ip.Next()
	}
}

// Request reserves a specific address (a static IP). It must lie in the
// subnet, not be the network or broadcast address, and be free; a taken
// address fails with errdefs.ErrConflict.
func (a *Allocator) Request(ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkInSubnet(ip); err != nil {
		return err
	}
	if _, used := a.allocated[ip]; used {
		what := "in use"
		if ip == a.gateway {
			what = "the gateway"
		}
		return fmt.Errorf("ipam: address %s is %s: %w", ip, what, errdefs.ErrConflict)
	}
	a.allocated[ip] = struct{}{}
	return nil
}

// Release frees an address. Releasing a free address is a no-op; the gateway
// cannot be released.
func (a *Allocator) Release(ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip == a.gateway {
		return fmt.Errorf("ipam: cannot release gateway %s: %w", ip, errdefs.ErrInvalidArgument)
	}
	if !a.subnet.Contains(ip) {
		return fmt.Errorf("ipam: address %s is not in subnet %s: %w", ip, a.subnet, errdefs.ErrInvalidArgument)
	}
	delete(a.allocated, ip)
	return nil
}

// InUse reports whether ip is allocated (the gateway counts).
func (a *Allocator) InUse(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.allocated[ip]
	return ok
}

// checkInSubnet accepts addresses of the subnet that are not reserved.
func (a *Allocator) checkInSubnet(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("ipam: no address given: %w", errdefs.ErrInvalidArgument)
	}
	if ip.Zone() != "" || !a.subnet.Contains(ip) {
		return fmt.Errorf("ipam: address %s is not in subnet %s: %w", ip, a.subnet, errdefs.ErrInvalidArgument)
	}
	if a.reserved(ip) {
		return fmt.Errorf("ipam: address %s is reserved in subnet %s: %w", ip, a.subnet, errdefs.ErrInvalidArgument)
	}
	return nil
}

// reserved reports the subnet's network address, and for IPv4 its
// broadcast address.
func (a *Allocator) reserved(ip netip.Addr) bool {
	if ip == a.subnet.Addr() {
		return true
	}
	return ip.Is4() && ip == lastAddr(a.subnet)
}

// usable counts the addresses of p that may be handed out: all of p minus
// the subnet's reserved addresses and the gateway when they fall inside p.
func (a *Allocator) usable(p netip.Prefix) uint64 {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= 64 {
		return math.MaxUint64
	}
	n := uint64(1) << hostBits
	if p.Contains(a.subnet.Addr()) {
		n--
	}
	if a.subnet.Addr().Is4() && p.Contains(lastAddr(a.subnet)) {
		n--
	}
	if p.Contains(a.gateway) && !a.reserved(a.gateway) {
		n--
	}
	return n
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip
}
