package ipam

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostRoutes lists the destination prefixes of the host's routes in every
// routing table, for both address families, for use with PickSubnet.
// Default routes are left out.
func HostRoutes() ([]netip.Prefix, error) {
	var routes []netlink.Route
	var err error
	// A dump interrupted by a concurrent change may be incomplete: again.
	for range 10 {
		routes, err = netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: list host routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if p.IsValid() && p.Bits() > 0 {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}
