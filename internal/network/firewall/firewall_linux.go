package firewall

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

const (
	setBridges   = "bridges"
	chainRaw     = "raw-prerouting"
	chainForward = "forward"
	chainPre     = "prerouting"
	chainOutput  = "output"
	chainPorts   = "ports"
	chainPost    = "postrouting"
	chainGuard   = "forward-guard"

	commentStatic = "static"
	commentGuard  = "forward guard"
)

// Firewall edits berth's nftables table. It is safe for concurrent use.
type Firewall struct {
	mu    sync.Mutex
	table *nftables.Table
	// guard4 and guard6 tell which families the forward guard covers
	// (SetForwardGuard); Sync keeps it.
	guard4, guard6 bool
}

// New returns a Firewall for the table of that name ("" means
// DefaultTable). It changes nothing until a method is called.
func New(table string) (*Firewall, error) {
	if table == "" {
		table = DefaultTable
	}
	if len(table) > 255 || strings.ContainsAny(table, " \t\n/") {
		return nil, fmt.Errorf("firewall: invalid table name %q: %w", table, errdefs.ErrInvalidArgument)
	}
	return &Firewall{table: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}}, nil
}

// Table returns the name of the table.
func (f *Firewall) Table() string { return f.table.Name }

// Init creates the table with its set, chains and fixed rules when it does
// not exist yet. An existing table is left as it is, rules included, so
// the daemon can call Init on every start; Sync rebuilds it.
func (f *Firewall) Init() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("firewall: %w", classify(err))
	}
	defer c.CloseLasting()
	if _, err := c.ListTableOfFamily(f.table.Name, f.table.Family); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("firewall: look for table %s: %w", f.table.Name, classify(err))
	}
	if err := f.build(c, nil, nil); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: create table %s: %w", f.table.Name, classify(err))
	}
	return nil
}

// Sync replaces the whole table with one holding exactly these networks
// and ports, in one transaction: there is no moment without rules. The
// daemon calls it after a restart with what it restored.
func (f *Firewall) Sync(networks []Network, ports []PortMapping) error {
	for _, n := range networks {
		if err := n.check(); err != nil {
			return err
		}
	}
	for i, p := range ports {
		if err := p.check(); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
		for _, q := range ports[:i] {
			if p.conflicts(q) {
				return fmt.Errorf("firewall: %s conflicts with %s: %w", p.key(), q.key(), errdefs.ErrConflict)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("firewall: %w", classify(err))
	}
	defer c.CloseLasting()
	// Adding first makes the delete valid whether or not it existed.
	c.AddTable(f.table)
	c.DelTable(f.table)
	if err := f.build(c, networks, ports); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: sync table %s: %w", f.table.Name, classify(err))
	}
	return nil
}

// Cleanup deletes berth's table and everything in it; nothing else is
// touched. A missing table is not an error.
func (f *Firewall) Cleanup() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("firewall: %w", classify(err))
	}
	defer c.CloseLasting()
	c.AddTable(f.table)
	c.DelTable(f.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: delete table %s: %w", f.table.Name, classify(err))
	}
	return nil
}

// SetForwardGuard makes the forward guard cover IPv4 and IPv6 forwarding
// as asked, in one transaction; the table must exist (Init). The guard
// drops forwarded packets that neither enter nor leave a bridge: the
// daemon asks for it for the families whose forwarding it turned on
// itself, so that the host, which forwarded nothing before, forwards only
// containers' traffic and not, say, between two uplinks. It is a drop in
// berth's own table and so final for every table; any bridge counts (not
// only berth's) so that the containers of other engines and of other berth
// daemons, whose bridged traffic passes the forward hook too when
// br_netfilter is loaded, keep working. Sync keeps the guard.
func (f *Firewall) SetForwardGuard(ipv4, ipv6 bool) error {
	f.mu.Lock()
	f.guard4, f.guard6 = ipv4, ipv6
	f.mu.Unlock()
	return f.edit("set the forward guard", func(c *nftables.Conn) error {
		if err := f.delRules(c, chainForward, func(s string) bool { return s == commentGuard }); err != nil {
			return err
		}
		guard := c.AddChain(&nftables.Chain{Name: chainGuard, Table: f.table})
		c.FlushChain(guard)
		f.guardRules(c, guard)
		return nil
	})
}

// guardRules queues the guard chain's rules and the forward chain's jumps
// to it, for the families f.guard4 and f.guard6 name:
//
//	chain forward-guard { meta iifkind "bridge" return
//	                      meta oifkind "bridge" return
//	                      drop }
//	chain forward       { meta nfproto ipv4 jump forward-guard }
//
// An interface without a kind (a physical NIC) fails the kind match, so
// its packets reach the drop.
func (f *Firewall) guardRules(c *nftables.Conn, guard *nftables.Chain) {
	t := f.table
	tag := comment(commentGuard)
	for _, key := range []expr.MetaKey{metaKeyIIFKIND, metaKeyOIFKIND} {
		c.AddRule(&nftables.Rule{Table: t, Chain: guard, UserData: tag, Exprs: []expr.Any{
			&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("bridge")},
			verdict(expr.VerdictReturn)}})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: guard, UserData: tag, Exprs: []expr.Any{verdict(expr.VerdictDrop)}})
	fwd := &nftables.Chain{Name: chainForward, Table: t}
	for _, fam := range []struct {
		on    bool
		proto byte
	}{{f.guard4, unix.NFPROTO_IPV4}, {f.guard6, unix.NFPROTO_IPV6}} {
		if !fam.on {
			continue
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, UserData: tag, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.proto}},
			jump(chainGuard)}})
	}
}

// AddNetwork installs a network's rules, replacing any it had, in one
// transaction. The table must exist (Init).
func (f *Firewall) AddNetwork(n Network) error {
	if err := n.check(); err != nil {
		return err
	}
	return f.edit("add network "+n.Bridge, func(c *nftables.Conn) error {
		if err := f.delNetwork(c, n.Bridge); err != nil {
			return err
		}
		set := &nftables.Set{Table: f.table, Name: setBridges, KeyType: nftables.TypeIFName}
		if err := c.SetAddElements(set, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
			return fmt.Errorf("firewall: network %s: %w", n.Bridge, err)
		}
		f.networkRules(c, n, 0)
		return nil
	})
}

// RemoveNetwork removes a network's rules in one transaction. A network
// without rules is not an error.
func (f *Firewall) RemoveNetwork(bridge string) error {
	if err := (Network{Bridge: bridge}).check(); err != nil {
		return err
	}
	return f.edit("remove network "+bridge, func(c *nftables.Conn) error {
		return f.delNetwork(c, bridge)
	})
}

// AddPort publishes a port. A mapping that claims a host port already
// published (same protocol and port, on the same or on every address)
// fails with errdefs.ErrConflict; publishing the same mapping again is a
// no-op.
func (f *Firewall) AddPort(p PortMapping) error { return f.AddPorts(p) }

// AddPorts publishes ports in one transaction: all of them or, on a
// conflict (with a published port or among ps), none. Mappings already
// published as they are are skipped.
func (f *Firewall) AddPorts(ps ...PortMapping) error {
	for i, p := range ps {
		if err := p.check(); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
		for _, q := range ps[:i] {
			if p.conflicts(q) && portComment(p) != portComment(q) {
				return fmt.Errorf("firewall: %s conflicts with %s: %w", p.key(), q.key(), errdefs.ErrConflict)
			}
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return f.edit("publish "+ps[0].key(), func(c *nftables.Conn) error {
		rules, err := c.GetRules(f.table, &nftables.Chain{Name: chainPorts, Table: f.table})
		if err != nil {
			return fmt.Errorf("firewall: list published ports: %w", classify(err))
		}
		var published []string
		for _, r := range rules {
			key, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			published = append(published, key)
		}
		queued := map[string]bool{}
		for _, p := range ps {
			want := portComment(p)
			if queued[want] {
				continue
			}
			have := false
			for _, key := range published {
				q, ok := portFromComment(key)
				if !ok || !p.conflicts(q) {
					continue
				}
				if key != want {
					return &ConflictError{Mapping: p, Published: key}
				}
				have = true
			}
			if !have {
				f.portRule(c, p)
				queued[want] = true
			}
		}
		return nil
	})
}

// RemovePort withdraws a published port; one that is not published is not
// an error.
func (f *Firewall) RemovePort(p PortMapping) error { return f.RemovePorts(p) }

// RemovePorts withdraws ports in one transaction (the kernel makes every
// commit that deletes rules wait for a grace period, so one is cheaper
// than many).
func (f *Firewall) RemovePorts(ps ...PortMapping) error {
	want := map[string]bool{}
	for _, p := range ps {
		if err := p.check(); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
		want[portComment(p)] = true
	}
	if len(ps) == 0 {
		return nil
	}
	return f.edit("unpublish "+ps[0].key(), func(c *nftables.Conn) error {
		return f.delRules(c, chainPorts, func(comment string) bool { return want[comment] })
	})
}

// edit runs fn on a connection to our existing table (Init made it) and
// commits what fn queued as one transaction; what names the change in errors.
func (f *Firewall) edit(what string, fn func(c *nftables.Conn) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("firewall: %w", classify(err))
	}
	defer c.CloseLasting()
	if err := f.requireTable(c); err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: %s: %w", what, classify(err))
	}
	return nil
}

// build queues the table, its set, chains and fixed rules, then the rules
// of networks and ports.
func (f *Firewall) build(c *nftables.Conn, networks []Network, ports []PortMapping) error {
	t := c.AddTable(f.table)
	// Names are strings in host byte order, which nft needs told to
	// print them.
	set := &nftables.Set{Table: t, Name: setBridges, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	var elems []nftables.SetElement
	for _, n := range networks {
		elems = append(elems, nftables.SetElement{Key: ifname(n.Bridge)})
	}
	if err := c.AddSet(set, elems); err != nil {
		return fmt.Errorf("firewall: add set: %w", err)
	}
	accept := nftables.ChainPolicyAccept
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	raw := base(chainRaw, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	base(chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	pre := base(chainPre, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := base(chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := base(chainPost, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	c.AddChain(&nftables.Chain{Name: chainPorts, Table: t})
	f.guardRules(c, c.AddChain(&nftables.Chain{Name: chainGuard, Table: t}))

	static := comment(commentStatic)
	loop := mustPrefix("127.0.0.0/8")
	// iifname @bridges ip daddr 127.0.0.0/8 drop
	c.AddRule(&nftables.Rule{Table: t, Chain: raw, UserData: static, Exprs: concat(
		ifnameInSet(expr.MetaKeyIIFNAME, setBridges, set.ID), matchPrefix(loop, false), []expr.Any{verdict(expr.VerdictDrop)})})
	// fib daddr type local jump ports (prerouting and output)
	for _, ch := range []*nftables.Chain{pre, out} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, UserData: static, Exprs: concat(daddrLocal(), []expr.Any{jump(chainPorts)})})
	}
	// oifname @bridges ip saddr 127.0.0.0/8 masquerade
	c.AddRule(&nftables.Rule{Table: t, Chain: post, UserData: static, Exprs: concat(
		ifnameInSet(expr.MetaKeyOIFNAME, setBridges, set.ID), matchPrefix(loop, true), []expr.Any{&expr.Masq{}})})

	for _, n := range networks {
		f.networkRules(c, n, set.ID)
	}
	for _, p := range ports {
		f.portRule(c, p)
	}
	return nil
}

// networkRules queues a network's rules. setID is the bridges set's ID
// when the set is created in the same batch, else 0.
func (f *Firewall) networkRules(c *nftables.Conn, n Network, setID uint32) {
	t := f.table
	fwd := &nftables.Chain{Name: chainForward, Table: t}
	post := &nftables.Chain{Name: chainPost, Table: t}
	raw := &nftables.Chain{Name: chainRaw, Table: t}
	tag := comment(netComment(n.Bridge))
	drop := []expr.Any{verdict(expr.VerdictDrop)}
	for _, s := range n.Subnets {
		// No direct routing to the containers from elsewhere, as Docker
		// 28: what is not published is not reachable from the network.
		// Published ports are DNATed later (raw comes first) and replies
		// to masqueraded traffic are addressed to the host then.
		// iifname != BR ip daddr SUBNET drop
		c.AddRule(&nftables.Rule{Table: t, Chain: raw, UserData: tag, Exprs: concat(
			matchIfname(expr.MetaKeyIIFNAME, n.Bridge, false), matchPrefix(s, false), drop)})
	}
	if n.Internal {
		// Inserted at the head so no later accept can let them through.
		// iifname BR oifname != BR drop; oifname BR iifname != BR drop
		c.InsertRule(&nftables.Rule{Table: t, Chain: fwd, UserData: tag, Exprs: concat(
			matchIfname(expr.MetaKeyIIFNAME, n.Bridge, true), matchIfname(expr.MetaKeyOIFNAME, n.Bridge, false), drop)})
		c.InsertRule(&nftables.Rule{Table: t, Chain: fwd, UserData: tag, Exprs: concat(
			matchIfname(expr.MetaKeyOIFNAME, n.Bridge, true), matchIfname(expr.MetaKeyIIFNAME, n.Bridge, false), drop)})
		return
	}
	// iifname BR oifname @bridges oifname != BR ct status != dnat drop
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, UserData: tag, Exprs: concat(
		matchIfname(expr.MetaKeyIIFNAME, n.Bridge, true),
		ifnameInSet(expr.MetaKeyOIFNAME, setBridges, setID),
		matchIfname(expr.MetaKeyOIFNAME, n.Bridge, false),
		ctDNAT(false), drop)})
	for _, s := range n.Subnets {
		// ip saddr SUBNET oifname != BR masquerade
		c.AddRule(&nftables.Rule{Table: t, Chain: post, UserData: tag, Exprs: concat(
			matchPrefix(s, true), matchIfname(expr.MetaKeyOIFNAME, n.Bridge, false), []expr.Any{&expr.Masq{}})})
		// ip saddr SUBNET oifname BR ct status dnat masquerade (hairpin)
		c.AddRule(&nftables.Rule{Table: t, Chain: post, UserData: tag, Exprs: concat(
			matchPrefix(s, true), matchIfname(expr.MetaKeyOIFNAME, n.Bridge, true), ctDNAT(true), []expr.Any{&expr.Masq{}})})
	}
}

// portRule queues a published port's DNAT rule:
// [ip daddr HOSTIP] meta l4proto P th dport HOSTPORT dnat to CIP:CPORT
func (f *Firewall) portRule(c *nftables.Conn, p PortMapping) {
	var match []expr.Any
	if p.anyHost() {
		match = matchFamily(p.ContainerIP)
	} else {
		match = matchPrefix(netipPrefixOf(p.HostIP), false)
	}
	c.AddRule(&nftables.Rule{Table: f.table, Chain: &nftables.Chain{Name: chainPorts, Table: f.table},
		UserData: comment(portComment(p)),
		Exprs:    concat(match, matchDport(protoNumber(p.proto()), p.HostPort), dnat(p.ContainerIP, p.ContainerPort))})
}

// delNetwork queues the removal of a network's rules and set element.
func (f *Firewall) delNetwork(c *nftables.Conn, bridge string) error {
	want := netComment(bridge)
	match := func(comment string) bool { return comment == want }
	for _, ch := range []string{chainRaw, chainForward, chainPost} {
		if err := f.delRules(c, ch, match); err != nil {
			return err
		}
	}
	set := &nftables.Set{Table: f.table, Name: setBridges, KeyType: nftables.TypeIFName}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return fmt.Errorf("firewall: list bridges: %w", classify(err))
	}
	for _, e := range elems {
		if string(e.Key) == string(ifname(bridge)) {
			if err := c.SetDeleteElements(set, []nftables.SetElement{{Key: ifname(bridge)}}); err != nil {
				return fmt.Errorf("firewall: network %s: %w", bridge, err)
			}
		}
	}
	return nil
}

// delRules queues the deletion of the chain's rules whose comment matches.
func (f *Firewall) delRules(c *nftables.Conn, chain string, match func(string) bool) error {
	rules, err := c.GetRules(f.table, &nftables.Chain{Name: chain, Table: f.table})
	if err != nil {
		return fmt.Errorf("firewall: list chain %s: %w", chain, classify(err))
	}
	for _, r := range rules {
		if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && match(s) {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("firewall: delete rule in %s: %w", chain, err)
			}
		}
	}
	return nil
}

// requireTable fails with errdefs.ErrNotFound when the table is missing.
func (f *Firewall) requireTable(c *nftables.Conn) error {
	_, err := c.ListTableOfFamily(f.table.Name, f.table.Family)
	if isNotFound(err) {
		return fmt.Errorf("firewall: table inet %s does not exist (call Init): %w", f.table.Name, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("firewall: look for table %s: %w", f.table.Name, classify(err))
	}
	return nil
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

func isNotFound(err error) bool { return errors.Is(err, unix.ENOENT) }

func classify(err error) error {
	switch {
	case isNotFound(err):
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: %w", err, errdefs.ErrAlreadyExists)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermission)
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("%w (kernel lacks an nftables feature): %w", err, errdefs.ErrNotImplemented)
	}
	return err
}
