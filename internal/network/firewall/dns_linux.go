package firewall

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"

	"github.com/berth-project/berth/internal/errdefs"
)

// DNSTable is the table RedirectDNS keeps inside a container's namespace.
const DNSTable = "berth-dns"

// RedirectDNS makes the container whose network namespace is at netnsPath
// reach an embedded DNS server listening on addr at random ports through
// addr:53: its queries to addr:53 are DNATed to udpPort and tcpPort, and
// conntrack turns the replies back. Port 53 itself stays free for the
// container's own servers, as with Docker. The table lives in the
// container's namespace only and is replaced whole, so calling again after
// a daemon restart (new ports) is right.
func RedirectDNS(netnsPath string, addr netip.Addr, udpPort, tcpPort uint16) error {
	if !addr.Is4() || udpPort == 0 || tcpPort == 0 {
		return fmt.Errorf("firewall: DNS redirect to %s:%d/%d: an IPv4 address and two ports are required: %w", addr, udpPort, tcpPort, errdefs.ErrInvalidArgument)
	}
	f, err := os.Open(netnsPath)
	if err != nil {
		return fmt.Errorf("firewall: DNS redirect: open network namespace: %w", err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return fmt.Errorf("firewall: DNS redirect: %w", classify(err))
	}
	t := &nftables.Table{Name: DNSTable, Family: nftables.TableFamilyINet}
	// Adding first makes the delete valid whether or not it existed.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	out := c.AddChain(&nftables.Chain{Name: chainOutput, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	for _, r := range []struct {
		proto string
		port  uint16
	}{{"udp", udpPort}, {"tcp", tcpPort}} {
		// ip daddr ADDR meta l4proto P th dport 53 dnat to ADDR:PORT
		c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: concat(
			matchPrefix(netipPrefixOf(addr), false), matchDport(protoNumber(r.proto), 53), dnat(addr, r.port))})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: DNS redirect in %s: %w", netnsPath, classify(err))
	}
	return nil
}
