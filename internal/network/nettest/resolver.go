package nettest

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Resolver is a DNS server for tests, standing for a host's resolver on a
// loopback address: it answers one name with one IPv4 address, every
// other name with NXDOMAIN, and records the names it was asked. Tests use
// it so that no query ever leaves the machine.
type Resolver struct {
	// Addr is where it listens (UDP).
	Addr  netip.AddrPort
	mu    sync.Mutex
	asked []string
}

// StartResolver serves on the UDP address listen ("127.0.0.1:0" for any
// port), answering name (fully qualified, e.g. "external.test.") with
// addr, until the test ends. It returns the listen error, so a caller
// trying free addresses can try another.
func StartResolver(t testing.TB, listen, name string, addr netip.Addr) (*Resolver, error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return nil, err
	}
	r := &Resolver{Addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg).SetReply(q)
		if len(q.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			_ = w.WriteMsg(m)
			return
		}
		asked := q.Question[0]
		r.mu.Lock()
		r.asked = append(r.asked, asked.Name)
		r.mu.Unlock()
		switch {
		case !strings.EqualFold(asked.Name, name):
			m.Rcode = dns.RcodeNameError
		case asked.Qtype == dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: asked.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: addr.AsSlice()}}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return r, nil
}

// WasAsked reports whether name (fully qualified) was asked.
func (r *Resolver) WasAsked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.asked, name)
}
