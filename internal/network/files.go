package network

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/network/etchosts"
	"github.com/berth-project/berth/internal/network/resolvconf"
)

// This file writes a sandbox's /etc/hosts, /etc/hostname and
// /etc/resolv.conf into the container's directory.

// fileSet is the content of a sandbox's three files.
type fileSet struct {
	hosts, hostname, resolv []byte
}

// hostMode reports whether the sandbox uses the host's network stack.
func (m *Manager) hostMode(rec *sandboxRecord) bool {
	for _, ep := range rec.Endpoints {
		if n := m.networks[ep.NetworkID]; n != nil && n.rec.Driver == DriverHost {
			return true
		}
	}
	return false
}

// hostGateway is the address "host-gateway" stands for in --add-host: the
// default bridge's gateway. Callers hold mu.
func (m *Manager) hostGateway() netip.Addr {
	for _, n := range m.networks {
		if n.rec.Default && len(n.rec.Subnets) > 0 {
			return n.rec.Subnets[0].Gateway
		}
	}
	return netip.Addr{}
}

// buildFiles renders the sandbox's files. Callers hold mu (read).
func (m *Manager) buildFiles(rec *sandboxRecord) (fileSet, error) {
	var fs fileSet
	var extra []etchosts.Entry
	for _, h := range rec.ExtraHosts {
		e, err := etchosts.ParseAddHost(h, m.hostGateway())
		if err != nil {
			return fs, err
		}
		extra = append(extra, e)
	}
	extra = append(extra, rec.LinkHosts...)
	host := m.hostMode(rec)

	name := rec.Hostname
	if name == "" {
		name = shortID(rec.ContainerID)
		if host {
			if h, err := os.Hostname(); err == nil {
				name = h
			}
		}
	}
	var err error
	if fs.hostname, err = etchosts.Hostname(name); err != nil {
		return fs, err
	}

	var addrs []netip.Addr
	ipv6 := false
	for _, ep := range rec.Endpoints {
		for _, a := range ep.Addrs {
			addrs = append(addrs, a.Addr())
			ipv6 = ipv6 || a.Addr().Is6()
		}
	}
	if host {
		hostsFile, err := os.ReadFile(m.cfg.HostHosts)
		if err != nil && !os.IsNotExist(err) {
			return fs, fmt.Errorf("read host's hosts file: %w", err)
		}
		var b bytes.Buffer
		b.Write(hostsFile)
		if len(hostsFile) > 0 && hostsFile[len(hostsFile)-1] != '\n' {
			b.WriteByte('\n')
		}
		for _, e := range extra {
			fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
		}
		fs.hosts = b.Bytes()
	} else {
		fs.hosts, err = etchosts.Hosts(etchosts.Config{Hostname: name, Domainname: rec.Domainname, Addrs: addrs, Extra: extra})
		if err != nil {
			return fs, err
		}
	}

	hostResolv, err := os.ReadFile(m.cfg.HostResolvConf)
	if err != nil && !os.IsNotExist(err) {
		return fs, fmt.Errorf("read host's resolv.conf: %w", err)
	}
	// Build checks --dns-search and --dns-option whichever file is used.
	built, err := resolvconf.Build(hostResolv, resolvconf.Config{Nameservers: rec.DNS, Search: rec.DNSSearch, Options: rec.DNSOptions, IPv6: ipv6})
	if err != nil {
		return fs, err
	}
	switch {
	case host && len(rec.DNS) == 0 && len(rec.DNSSearch) == 0 && len(rec.DNSOptions) == 0:
		fs.resolv = hostResolv
	case host:
		// The host's own resolvers, loopback ones included, work here.
		f := override(resolvconf.Parse(hostResolv), rec)
		if len(rec.DNS) > 0 {
			f.Nameservers = rec.DNS
		}
		fs.resolv = f.Bytes()
	case rec.EmbeddedDNS:
		f := override(resolvconf.Parse(hostResolv), rec)
		f.Nameservers = []netip.Addr{DNSAddr}
		if !slices.ContainsFunc(f.Options, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
			f.Options = append(f.Options, "ndots:0")
		}
		fs.resolv = f.Bytes()
	default:
		fs.resolv = built
	}
	return fs, nil
}

// override applies --dns-search and --dns-option to a parsed file.
func override(f resolvconf.File, rec *sandboxRecord) resolvconf.File {
	if len(rec.DNSSearch) > 0 {
		f.Search = rec.DNSSearch
		if len(f.Search) == 1 && f.Search[0] == "." {
			f.Search = nil
		}
	}
	if len(rec.DNSOptions) > 0 {
		f.Options = rec.DNSOptions
	}
	return f
}

// upstreams are the servers the embedded DNS forwards to: --dns, else the
// host's nameservers, loopback ones included (the forwarder runs in the
// host's namespace).
func (m *Manager) upstreams(rec *sandboxRecord) []netip.AddrPort {
	servers := rec.DNS
	if len(servers) == 0 {
		hostResolv, _ := os.ReadFile(m.cfg.HostResolvConf)
		servers = resolvconf.Parse(hostResolv).Nameservers
	}
	var out []netip.AddrPort
	for _, s := range servers {
		out = append(out, netip.AddrPortFrom(s, 53))
	}
	return out
}

// writeFiles writes the files. The first time each is written to a
// temporary file and renamed into place; later (connect, disconnect) it is
// rewritten in place, because the running container has the file itself
// bind-mounted and would not see a new one. Nothing is fsynced: the files
// are made anew at every start, so a crash can lose nothing that matters.
func writeFiles(rec *sandboxRecord, fs fileSet, inPlace bool) error {
	write := replaceFile
	if inPlace {
		write = func(path string, data []byte) error {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return fmt.Errorf("rewrite %s: %w", path, err)
			}
			return nil
		}
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{rec.HostnamePath, fs.hostname}, {rec.HostsPath, fs.hosts}, {rec.ResolvConfPath, fs.resolv}} {
		if err := write(f.path, f.data); err != nil {
			return err
		}
	}
	return nil
}

// replaceFile writes data to a temporary file beside path and renames it
// over path (mode 0644), so readers see the old or the new content.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Chmod(0o644)
	if err := errors.Join(werr, cerr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
