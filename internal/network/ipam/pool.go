package ipam

import (
	"fmt"
	"net/netip"

	"github.com/berth-project/berth/internal/errdefs"
)

// Pool is a range of address space that network subnets are carved from:
// Base split into subnets of Size prefix bits (Docker's
// "default-address-pools" entries).
type Pool struct {
	Base netip.Prefix `json:"base"`
	Size int          `json:"size"`
}

// DefaultPools returns the pools used when the configuration names none:
// 172.17.0.0/16 through 172.31.0.0/16, then 192.168.0.0/16 in /20s, as Docker
// does. The first free one becomes the default bridge's subnet.
func DefaultPools() []Pool {
	return []Pool{
		{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.18.0.0/15"), Size: 16},
		{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("172.24.0.0/13"), Size: 16},
		{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
	}
}

// ParsePool parses a pool's base prefix and checks its subnet size.
func ParsePool(base string, size int) (Pool, error) {
	p, err := netip.ParsePrefix(base)
	if err != nil {
		return Pool{}, fmt.Errorf("ipam: address pool base %q: %v: %w", base, err, errdefs.ErrInvalidArgument)
	}
	pool := Pool{Base: p, Size: size}
	if err := pool.check(); err != nil {
		return Pool{}, err
	}
	return pool, nil
}

func (p Pool) check() error {
	if !p.Base.IsValid() || p.Base.Masked() != p.Base {
		return fmt.Errorf("ipam: address pool base %s must be a network prefix: %w", p.Base, errdefs.ErrInvalidArgument)
	}
	if p.Size < p.Base.Bits() || p.Size > p.Base.Addr().BitLen()-2 {
		return fmt.Errorf("ipam: address pool %s: size /%d must be between /%d and /%d: %w",
			p.Base, p.Size, p.Base.Bits(), p.Base.Addr().BitLen()-2, errdefs.ErrInvalidArgument)
	}
	return nil
}

// PickSubnet returns the first subnet of the pools, in order, that overlaps
// none of the used prefixes (the host's routes and the subnets of existing
// networks). Default routes (prefix length 0) are ignored, since they
// overlap everything. It fails with errdefs.ErrUnavailable when every
// subnet is taken.
func PickSubnet(pools []Pool, used []netip.Prefix) (netip.Prefix, error) {
	var busy []netip.Prefix
	for _, u := range used {
		if u.IsValid() && u.Bits() > 0 {
			busy = append(busy, u.Masked())
		}
	}
	for _, pool := range pools {
		if err := pool.check(); err != nil {
			return netip.Prefix{}, err
		}
		cand := netip.PrefixFrom(pool.Base.Addr(), pool.Size)
		for pool.Base.Contains(cand.Addr()) {
			conflict := -1
			for i, u := range busy {
				if u.Overlaps(cand) {
					conflict = i
					break
				}
			}
			if conflict < 0 {
				return cand, nil
			}
			// Skip past whichever is larger: the candidate or the
			// busy prefix that covers it.
			end := lastAddr(cand)
			if b := busy[conflict]; b.Bits() < cand.Bits() {
				end = lastAddr(b)
			}
			next := end.Next()
			if !next.IsValid() {
				break
			}
			cand = netip.PrefixFrom(next, pool.Size)
		}
	}
	return netip.Prefix{}, fmt.Errorf("ipam: every subnet of the address pools overlaps a route or a network: %w", errdefs.ErrUnavailable)
}
