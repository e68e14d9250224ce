package network

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/firewall"
)

// portReq is one host binding a container asks for: its container port,
// the host address (zero: the network's default) and the host port range
// (0-0: a random one).
type portReq struct {
	port   network.Port
	hostIP netip.Addr
	lo, hi uint16
}

// expandPorts turns -p bindings, -P and EXPOSE into binding requests, in
// port order, and lists every port inspect shows (exposed or published).
func expandPorts(bindings network.PortMap, publishAll bool, exposed network.PortSet) ([]portReq, []network.Port, error) {
	all := map[network.Port]bool{}
	for p := range exposed {
		all[p] = true
	}
	for p := range bindings {
		all[p] = true
	}
	ports := make([]network.Port, 0, len(all))
	for p := range all {
		if !p.IsValid() || p.Num() == 0 {
			return nil, nil, fmt.Errorf("invalid container port %q: %w", p.String(), errdefs.ErrInvalidArgument)
		}
		switch p.Proto() {
		case network.TCP, network.UDP, network.SCTP:
		default:
			return nil, nil, fmt.Errorf("invalid proto %q in port %s: %w", p.Proto(), p.String(), errdefs.ErrInvalidArgument)
		}
		ports = append(ports, p)
	}
	slices.SortFunc(ports, comparePorts)
	var reqs []portReq
	for _, p := range ports {
		bs, bound := bindings[p]
		if len(bs) == 0 {
			if publishAll {
				reqs = append(reqs, portReq{port: p})
			} else if bound {
				// "-p 80" with no host part comes as one empty binding;
				// a nil list still publishes on a random port, as Docker.
				reqs = append(reqs, portReq{port: p})
			}
			continue
		}
		for _, b := range bs {
			lo, hi, err := parseHostPort(b.HostPort)
			if err != nil {
				return nil, nil, err
			}
			if b.HostIP.IsValid() && (b.HostIP.Zone() != "" || b.HostIP.Is4In6()) {
				return nil, nil, fmt.Errorf("invalid host IP %s for port %s: %w", b.HostIP, p.String(), errdefs.ErrInvalidArgument)
			}
			reqs = append(reqs, portReq{port: p, hostIP: b.HostIP, lo: lo, hi: hi})
		}
	}
	return reqs, ports, nil
}

func comparePorts(a, b network.Port) int {
	if c := cmp.Compare(a.Num(), b.Num()); c != 0 {
		return c
	}
	return cmp.Compare(a.Proto(), b.Proto())
}

// parseHostPort parses "", "0", "8080" or "8000-8010".
func parseHostPort(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(a, 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || h < l || (l == 0 && h != 0) {
		return 0, 0, fmt.Errorf("invalid host port %q: %w", s, errdefs.ErrInvalidArgument)
	}
	return uint16(l), uint16(h), nil
}

// ephemeralRange is where random host ports come from: the kernel's
// local port range, as Docker does.
func ephemeralRange() (uint16, uint16) {
	lo, hi := uint16(32768), uint16(60999)
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return lo, hi
	}
	return uint16(l), uint16(h)
}

// conflicts reports whether two mappings claim the same host port: same
// protocol, port and family, on the same address or on every address.
func conflicts(p, q firewall.PortMapping) bool {
	if p.Proto != q.Proto || p.HostPort != q.HostPort || p.ContainerIP.Is4() != q.ContainerIP.Is4() {
		return false
	}
	return p.HostIP.IsUnspecified() || q.HostIP.IsUnspecified() || p.HostIP == q.HostIP
}

// mappingKey names a mapping's host side, for the port holds.
func mappingKey(p firewall.PortMapping) string {
	return fmt.Sprintf("%s %s", p.Proto, netip.AddrPortFrom(p.HostIP, p.HostPort))
}

// portTaken reports whether a sandbox's published port already claims the
// host side of p. Callers hold mu.
func (m *Manager) portTaken(p firewall.PortMapping, extra []portRecord) bool {
	for _, q := range extra {
		if conflicts(p, q.Mapping) {
			return true
		}
	}
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			for _, q := range ep.Ports {
				if conflicts(p, q.Mapping) {
					return true
				}
			}
		}
	}
	return false
}

// allocPorts picks the host ports of reqs for the endpoint, reserving each
// (see reservePort) into holds, and returns the mappings. Callers hold mu;
// on error the holds made so far stay in holds for the caller to close.
func (m *Manager) allocPorts(ep *endpointRecord, n *netState, reqs []portReq, holds map[string]io.Closer) ([]portRecord, error) {
	var out []portRecord
	for _, r := range reqs {
		// The host addresses to bind: the one asked for, or every
		// address of each family the container has.
		var hostIPs []netip.Addr
		switch {
		case r.hostIP.IsValid():
			hostIPs = []netip.Addr{r.hostIP}
		case n.rec.HostBinding.IsValid():
			hostIPs = []netip.Addr{n.rec.HostBinding}
		default:
			if _, ok := ep.addr(4); ok {
				hostIPs = append(hostIPs, netip.IPv4Unspecified())
			}
			if _, ok := ep.addr(6); ok {
				hostIPs = append(hostIPs, netip.IPv6Unspecified())
			}
		}
		var maps []firewall.PortMapping
		for _, h := range hostIPs {
			fam := 4
			if h.Is6() {
				fam = 6
			}
			cip, ok := ep.addr(fam)
			if !ok {
				return out, fmt.Errorf("cannot publish port %s on %s: the container has no IPv%d address: %w", r.port.String(), h, fam, errdefs.ErrInvalidArgument)
			}
			maps = append(maps, firewall.PortMapping{Proto: string(r.port.Proto()), HostIP: h, ContainerIP: cip.Addr(), ContainerPort: r.port.Num()})
		}
		got, err := m.pickHostPort(r, maps, out, holds)
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// pickHostPort finds a host port for all of maps (one per host address)
// in r's range or, for none, in the ephemeral range starting at a random
// point, and reserves it.
func (m *Manager) pickHostPort(r portReq, maps []firewall.PortMapping, pending []portRecord, holds map[string]io.Closer) ([]portRecord, error) {
	lo, hi, random := r.lo, r.hi, false
	if lo == 0 {
		lo, hi = ephemeralRange()
		random = true
	}
	size := int(hi) - int(lo) + 1
	start := 0
	if random {
		start = rand.IntN(size)
	}
	var lastErr error
	for i := range size {
		port := uint16(int(lo) + (start+i)%size)
		var got []portRecord
		var opened []string
		ok := true
		for _, mp := range maps {
			mp.HostPort = port
			if m.portTaken(mp, append(pending, got...)) {
				lastErr = bindError(mp, r, "port is already allocated", errdefs.ErrConflict)
				ok = false
				break
			}
			h, err := reservePort(mp.Proto, mp.HostIP, port)
			if err != nil {
				if errors.Is(err, errAddrInUse) {
					lastErr = hostBindError(mp, "address already in use", errdefs.ErrConflict)
				} else {
					// Not a busy port: another port would fail alike.
					lastErr = hostBindError(mp, err.Error(), errdefs.ErrInvalidArgument)
				}
				ok = false
				break
			}
			key := mappingKey(mp)
			holds[key] = h
			opened = append(opened, key)
			got = append(got, portRecord{Port: r.port, Mapping: mp})
		}
		if ok {
			return got, nil
		}
		for _, k := range opened {
			_ = holds[k].Close()
			delete(holds, k)
		}
		if !errdefs.IsConflict(lastErr) {
			break
		}
	}
	if random && errdefs.IsConflict(lastErr) {
		return nil, fmt.Errorf("no free host port in %d-%d for %s: %w", lo, hi, r.port.String(), errdefs.ErrUnavailable)
	}
	return nil, lastErr
}

// bindError is Docker's message for a host port that cannot be had.
func bindError(mp firewall.PortMapping, r portReq, why string, class error) error {
	port := strconv.Itoa(int(mp.HostPort))
	if r.hi > r.lo {
		port = fmt.Sprintf("%d-%d", r.lo, r.hi)
	}
	host := mp.HostIP.String()
	if mp.HostIP.Is6() {
		host = "[" + host + "]"
	}
	//lint:ignore ST1005 Docker's wording, which scripts match
	return fmt.Errorf("Bind for %s:%s failed: %s: %w", host, port, why, class)
}

// hostBindError is Docker's message (since 28) for a host port that a
// host process holds: the mapping as host:port:container:port/proto.
func hostBindError(mp firewall.PortMapping, why string, class error) error {
	return fmt.Errorf("failed to bind host port for %s:%s/%s: %s: %w", netip.AddrPortFrom(mp.HostIP, mp.HostPort),
		netip.AddrPortFrom(mp.ContainerIP, mp.ContainerPort), mp.Proto, why, class)
}

// portMap renders a sandbox's ports as inspect shows them.
func portMap(rec *sandboxRecord) network.PortMap {
	out := network.PortMap{}
	for _, p := range rec.Exposed {
		out[p] = nil
	}
	for _, ep := range rec.Endpoints {
		for _, pr := range ep.Ports {
			out[pr.Port] = append(out[pr.Port], network.PortBinding{HostIP: pr.Mapping.HostIP, HostPort: strconv.Itoa(int(pr.Mapping.HostPort))})
		}
	}
	return out
}

// mappings returns the firewall's side of port records.
func mappings(ps []portRecord) []firewall.PortMapping {
	out := make([]firewall.PortMapping, len(ps))
	for i, p := range ps {
		out[i] = p.Mapping
	}
	return out
}
