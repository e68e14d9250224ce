// Package etchosts builds a container's /etc/hosts and /etc/hostname:
// localhost and the IPv6 names first, then --add-host entries, then the
// container's own addresses under its hostname. The functions are pure;
// write the result with resolvconf.WriteFile.
package etchosts

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// HostGateway is the --add-host value that stands for the host's address
// as seen from the container (the bridge's gateway).
const HostGateway = "host-gateway"

// Entry is one line of /etc/hosts.
type Entry struct {
	IP    netip.Addr
	Names []string
}

// ParseAddHost parses a --add-host value, "NAME:IP" or "NAME=IP"; the IP
// may be in brackets and may be "host-gateway", replaced by hostGateway.
func ParseAddHost(s string, hostGateway netip.Addr) (Entry, error) {
	i := strings.IndexAny(s, ":=")
	if i <= 0 || i == len(s)-1 {
		return Entry{}, fmt.Errorf("add-host %q: want NAME:IP: %w", s, errdefs.ErrInvalidArgument)
	}
	name, val := s[:i], strings.TrimSuffix(strings.TrimPrefix(s[i+1:], "["), "]")
	if err := checkName(name); err != nil {
		return Entry{}, fmt.Errorf("add-host %q: %w", s, err)
	}
	if val == HostGateway {
		if !hostGateway.IsValid() {
			return Entry{}, fmt.Errorf("add-host %q: no host gateway address is known: %w", s, errdefs.ErrInvalidArgument)
		}
		return Entry{IP: hostGateway, Names: []string{name}}, nil
	}
	ip, err := netip.ParseAddr(val)
	if err != nil {
		return Entry{}, fmt.Errorf("add-host %q: invalid IP address %q: %w", s, val, errdefs.ErrInvalidArgument)
	}
	return Entry{IP: ip, Names: []string{name}}, nil
}

// Config is what goes into a container's /etc/hosts.
type Config struct {
	// Hostname and Domainname of the container.
	Hostname   string
	Domainname string
	// Addrs are the container's addresses; each is listed with the
	// hostname. With none (network none, or before an address is known)
	// the hostname is not listed.
	Addrs []netip.Addr
	// Extra holds --add-host entries, in order.
	Extra []Entry
	// NoIPv6 leaves out the IPv6 loopback names.
	NoIPv6 bool
}

// Hosts renders /etc/hosts.
func Hosts(cfg Config) ([]byte, error) {
	if err := checkName(cfg.Hostname); err != nil && cfg.Hostname != "" {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	if cfg.Domainname != "" {
		if err := checkName(cfg.Domainname); err != nil {
			return nil, fmt.Errorf("domainname: %w", err)
		}
	}
	var b bytes.Buffer
	line := func(ip string, names ...string) { fmt.Fprintf(&b, "%s\t%s\n", ip, strings.Join(names, " ")) }
	line("127.0.0.1", "localhost")
	if !cfg.NoIPv6 {
		line("::1", "localhost", "ip6-localhost", "ip6-loopback")
		line("fe00::", "ip6-localnet")
		line("ff00::", "ip6-mcastprefix")
		line("ff02::1", "ip6-allnodes")
		line("ff02::2", "ip6-allrouters")
	}
	for _, e := range cfg.Extra {
		if !e.IP.IsValid() || len(e.Names) == 0 {
			return nil, fmt.Errorf("hosts entry %v %v is incomplete: %w", e.IP, e.Names, errdefs.ErrInvalidArgument)
		}
		for _, n := range e.Names {
			if err := checkName(n); err != nil {
				return nil, fmt.Errorf("hosts entry for %s: %w", e.IP, err)
			}
		}
		line(e.IP.String(), e.Names...)
	}
	if cfg.Hostname != "" {
		names := []string{cfg.Hostname}
		if cfg.Domainname != "" {
			names = []string{cfg.Hostname + "." + cfg.Domainname, cfg.Hostname}
		}
		for _, ip := range cfg.Addrs {
			line(ip.String(), names...)
		}
	}
	return b.Bytes(), nil
}

// Hostname renders /etc/hostname.
func Hostname(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	return []byte(name + "\n"), nil
}

// checkName accepts a host name: 1-253 bytes of letters, digits, '-', '_'
// and '.', not starting with '-' or '.'.
func checkName(n string) error {
	if n == "" || len(n) > 253 || n[0] == '-' || n[0] == '.' {
		return fmt.Errorf("invalid host name %q: %w", n, errdefs.ErrInvalidArgument)
	}
	for _, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
		if !ok {
			return fmt.Errorf("invalid host name %q: %w", n, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
