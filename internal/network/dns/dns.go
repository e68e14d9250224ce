// Package dns is the embedded DNS server berthd runs for each container on
// a user-defined network. Its sockets live in the container's network
// namespace, on 127.0.0.11:53 (UDP and TCP), while the server itself runs
// in berthd, so it is gone while berthd is down and is started again by
// the network manager's Restore.
//
// Listening on port 53 itself would take that port from the container's
// own processes, so the network manager listens on random ports and
// redirects 127.0.0.11:53 to them with nftables inside the namespace (see
// Config.Addr and Server.Ports), as Docker does.
//
// A query for A, AAAA or PTR that the Resolver knows (containers sharing a
// network with the asking one: names, aliases, ID prefixes) is answered
// here; a known name with another type gets an empty answer. Everything
// else is forwarded, from berthd's own namespace, to the upstream servers
// (the host's resolvers or the container's --dns), over the transport the
// query came on; with no upstream the answer is SERVFAIL.
//
//	container ── udp/tcp 127.0.0.11:53 ──▶ Server ──▶ Resolver (berth's containers)
//	                                          └──────▶ upstream servers (host namespace)
package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultAddr is where the server listens in the container's namespace.
var DefaultAddr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.11"), 53)

// TTL of the answers about containers, in seconds (Docker's value).
const TTL = 600

// Resolver answers for the containers the asking container can see.
type Resolver interface {
	// LookupName returns the addresses of a name (lower case, without
	// the trailing dot); ok is false when the name is not a container's.
	LookupName(name string) (addrs []netip.Addr, ok bool)
	// LookupAddr returns the names of a container address (for PTR),
	// fully qualified or not; ok is false when no container has it.
	LookupAddr(ip netip.Addr) (names []string, ok bool)
}

// Config configures a Server.
type Config struct {
	// NetNS is the path of the network namespace to listen in; "" means
	// the caller's.
	NetNS string
	// Addr to listen on; the zero value means DefaultAddr. With port 0,
	// UDP and TCP each get a random port (see Server.Ports).
	Addr netip.AddrPort
	// Resolver answers for containers. Required.
	Resolver Resolver
	// Upstream returns the servers to forward other queries to, in
	// order; nil or an empty list means no forwarding.
	Upstream func() []netip.AddrPort
	// Timeout bounds one forwarded exchange; 0 means 3 seconds.
	Timeout time.Duration
}

// Server is a running embedded DNS server.
type Server struct {
	cfg      Config
	udp, tcp uint16
	servers  []*dns.Server
	done     chan struct{}
	once     sync.Once
}

// Start opens the UDP and TCP sockets in the namespace and serves them
// until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Resolver == nil {
		return nil, errors.New("dns: a resolver is required")
	}
	if !cfg.Addr.IsValid() {
		cfg.Addr = DefaultAddr
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	pc, l, err := listen(cfg.NetNS, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns: listen on %s in %s: %w", cfg.Addr, cfg.NetNS, err)
	}
	s := &Server{cfg: cfg, done: make(chan struct{}),
		udp: uint16(pc.LocalAddr().(*net.UDPAddr).Port), tcp: uint16(l.Addr().(*net.TCPAddr).Port)}
	s.servers = []*dns.Server{
		{PacketConn: pc, Handler: s.handler("udp")},
		{Listener: l, Handler: s.handler("tcp")},
	}
	// Wait until both serve: a Shutdown before that would be ignored.
	var errs []error
	started := make([]chan error, len(s.servers))
	for i, srv := range s.servers {
		ch := make(chan error, 1)
		started[i] = ch
		srv.NotifyStartedFunc = func() { ch <- nil }
		go func() {
			err := srv.ActivateAndServe()
			select {
			case ch <- err: // failed before it started
			default:
			}
		}()
	}
	for _, ch := range started {
		if err := <-ch; err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, fmt.Errorf("dns: serve on %s: %w", cfg.Addr, err)
	}
	return s, nil
}

// Ports returns the UDP and TCP ports the server listens on.
func (s *Server) Ports() (udp, tcp uint16) { return s.udp, s.tcp }

// Close stops the server and closes its sockets, waiting a short while
// for queries in flight.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, srv := range s.servers {
			_ = srv.ShutdownContext(ctx)
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
	})
	return nil
}

func (s *Server) handler(network string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		resp := s.answer(r, network)
		if network == "udp" {
			size := dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
				size = int(opt.UDPSize())
			}
			resp.Truncate(size)
		}
		_ = w.WriteMsg(resp)
	}
}

// answer resolves one query.
func (s *Server) answer(r *dns.Msg, network string) *dns.Msg {
	resp := new(dns.Msg)
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return resp.SetRcode(r, dns.RcodeNotImplemented)
	}
	q := r.Question[0]
	if q.Qclass == dns.ClassINET {
		if rrs, ok := s.local(q); ok {
			resp.SetReply(r)
			resp.Authoritative = true
			resp.RecursionAvailable = true
			resp.Answer = rrs
			return resp
		}
	}
	return s.forward(r, network)
}

// local answers a question about berth's containers; ok is false when it
// is not about one.
func (s *Server) local(q dns.Question) ([]dns.RR, bool) {
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if q.Qtype == dns.TypePTR {
		ip, ok := parseReverse(name)
		if !ok {
			return nil, false
		}
		names, ok := s.cfg.Resolver.LookupAddr(ip)
		if !ok {
			return nil, false
		}
		var rrs []dns.RR
		for _, n := range names {
			rrs = append(rrs, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: dns.Fqdn(n)})
		}
		return rrs, true
	}
	addrs, ok := s.cfg.Resolver.LookupName(name)
	if !ok {
		return nil, false
	}
	var rrs []dns.RR
	for _, a := range addrs {
		switch {
		case q.Qtype == dns.TypeA && a.Is4():
			rrs = append(rrs, &dns.A{Hdr: header(q.Name, dns.TypeA), A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6():
			rrs = append(rrs, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	// Several containers under one alias: spread the load.
	rand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
	return rrs, true
}

func header(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: TTL}
}

// forward asks the upstream servers in turn.
func (s *Server) forward(r *dns.Msg, network string) *dns.Msg {
	var servers []netip.AddrPort
	if s.cfg.Upstream != nil {
		servers = s.cfg.Upstream()
	}
	c := &dns.Client{Net: network, Timeout: s.cfg.Timeout}
	for _, srv := range servers {
		resp, _, err := c.Exchange(r, srv.String())
		if err == nil && resp != nil {
			resp.Id = r.Id
			return resp
		}
	}
	return new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
}

// parseReverse turns an in-addr.arpa or ip6.arpa name into its address.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		parts := strings.Split(rest, ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		ip, err := netip.ParseAddr(strings.Join(parts, "."))
		return ip, err == nil && ip.Is4()
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		nibbles := strings.Split(rest, ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for i := len(nibbles) - 1; i >= 0; i-- {
			if len(nibbles[i]) != 1 {
				return netip.Addr{}, false
			}
			b.WriteString(nibbles[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		ip, err := netip.ParseAddr(b.String())
		return ip, err == nil && ip.Is6()
	}
	return netip.Addr{}, false
}

// listenHere opens the sockets in the calling thread's namespace.
func listenHere(addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	return pc, l, nil
}
