// Package resolvconf builds a container's /etc/resolv.conf from the host's:
// nameservers on loopback addresses are dropped (the container cannot reach
// the host's loopback), IPv6 nameservers too when the container has no
// IPv6, and --dns, --dns-search and --dns-option replace the host's values.
// When no nameserver is left it falls back to public resolvers, as Docker
// does. The functions are pure; WriteFile puts the result in place
// atomically.
package resolvconf

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// HostPath is where the host's resolver configuration is read from.
const HostPath = "/etc/resolv.conf"

// Fallback nameservers used when the host offers none the container can
// reach.
var (
	FallbackIPv4 = []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}
	FallbackIPv6 = []netip.Addr{netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("2001:4860:4860::8844")}
)

// File is the content of a resolv.conf that matters here.
type File struct {
	Nameservers []netip.Addr
	Search      []string
	Options     []string
}

// Parse reads resolv.conf content. Comments, unknown keywords and
// nameservers that are not IP addresses are skipped, as the C resolver
// does; a later search or options line replaces an earlier one.
func Parse(data []byte) File {
	var f File
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) > 1 {
				if ip, err := netip.ParseAddr(fields[1]); err == nil {
					f.Nameservers = append(f.Nameservers, ip)
				}
			}
		case "search", "domain":
			f.Search = append([]string(nil), fields[1:]...)
		case "options":
			f.Options = append(f.Options, fields[1:]...)
		}
	}
	return f
}

// Config holds the container's DNS settings.
type Config struct {
	// Nameservers (--dns) replace the host's, loopback ones included.
	Nameservers []netip.Addr
	// Search (--dns-search) replaces the host's search domains; a single
	// "." means none.
	Search []string
	// Options (--dns-option) replace the host's options.
	Options []string
	// IPv6 tells whether the container has IPv6 connectivity; without it
	// the host's IPv6 nameservers are dropped.
	IPv6 bool
}

// Build returns the container's resolv.conf for the host's content and
// the container's settings.
func Build(host []byte, cfg Config) ([]byte, error) {
	for _, s := range cfg.Search {
		if s == "" || strings.ContainsAny(s, " \t\n#;") {
			return nil, fmt.Errorf("dns search domain %q is not valid: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	for _, o := range cfg.Options {
		if o == "" || strings.ContainsAny(o, " \t\n#;") {
			return nil, fmt.Errorf("dns option %q is not valid: %w", o, errdefs.ErrInvalidArgument)
		}
	}
	for _, ns := range cfg.Nameservers {
		if !ns.IsValid() {
			return nil, fmt.Errorf("dns server: no address: %w", errdefs.ErrInvalidArgument)
		}
	}
	h := Parse(host)
	out := File{Nameservers: cfg.Nameservers, Search: h.Search, Options: h.Options}
	if len(out.Nameservers) == 0 {
		out.Nameservers = filter(h.Nameservers, cfg.IPv6)
		if len(out.Nameservers) == 0 {
			out.Nameservers = append(out.Nameservers, FallbackIPv4...)
			if cfg.IPv6 {
				out.Nameservers = append(out.Nameservers, FallbackIPv6...)
			}
		}
	}
	if len(cfg.Search) > 0 {
		out.Search = cfg.Search
		if len(cfg.Search) == 1 && cfg.Search[0] == "." {
			out.Search = nil
		}
	}
	if len(cfg.Options) > 0 {
		out.Options = cfg.Options
	}
	return out.Bytes(), nil
}

// filter drops nameservers the container cannot use: loopback ones, and
// IPv6 ones when it has no IPv6.
func filter(in []netip.Addr, ipv6 bool) []netip.Addr {
	var out []netip.Addr
	for _, ip := range in {
		if ip.Unmap().IsLoopback() || (!ipv6 && ip.Unmap().Is6()) {
			continue
		}
		out = append(out, ip)
	}
	return out
}

// Bytes renders the file.
func (f File) Bytes() []byte {
	var b bytes.Buffer
	if len(f.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(f.Search, " "))
	}
	for _, ns := range f.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(f.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(f.Options, " "))
	}
	return b.Bytes()
}

// WriteFile replaces path with data (mode 0644) so that a reader sees the
// old or the new content, never part of it: write a temporary file in the
// same directory, fsync, rename. It serves /etc/hosts and /etc/hostname
// too.
func WriteFile(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
