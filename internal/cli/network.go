package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// NetworkCreateOptions are the options of network create.
type NetworkCreateOptions struct {
	Name                          string
	Driver                        string
	Options, Labels, IPAMOpts     []string
	Subnets, IPRanges, Gateways   []string
	AuxAddresses                  []string
	IPAMDriver                    string
	Internal, Attachable, Ingress bool
	IPv4, IPv6                    bool
	IPv4Set, IPv6Set              bool
	ConfigOnly                    bool
	ConfigFrom, Scope             string
}

// NetworkCreate creates a network and prints its ID.
func (c *CLI) NetworkCreate(ctx context.Context, o NetworkCreateOptions) error {
	ipam, err := ipamConfig(o)
	if err != nil {
		return err
	}
	opts, err := kvMap(o.Options, "opt")
	if err != nil {
		return err
	}
	labels, err := kvMap(o.Labels, "label")
	if err != nil {
		return err
	}
	co := client.NetworkCreateOptions{Driver: o.Driver, Scope: o.Scope, IPAM: ipam, Internal: o.Internal,
		Attachable: o.Attachable, Ingress: o.Ingress, ConfigOnly: o.ConfigOnly, ConfigFrom: o.ConfigFrom,
		Options: opts, Labels: labels}
	if o.IPv4Set {
		b := o.IPv4
		co.EnableIPv4 = &b
	}
	if o.IPv6Set {
		b := o.IPv6
		co.EnableIPv6 = &b
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.NetworkCreate(ctx, o.Name, co)
	if err != nil {
		return c.daemonError(err)
	}
	for _, w := range res.Warning {
		fmt.Fprintf(c.Err, "WARNING: %s\n", w)
	}
	fmt.Fprintln(c.Out, res.ID)
	return nil
}

// ipamConfig pairs --subnet with the --ip-range, --gateway and
// --aux-address values inside it, as docker network create does.
func ipamConfig(o NetworkCreateOptions) (*network.IPAM, error) {
	ipamOpts, err := kvMap(o.IPAMOpts, "ipam-opt")
	if err != nil {
		return nil, err
	}
	if len(o.Subnets) < len(o.IPRanges) || len(o.Subnets) < len(o.Gateways) {
		return nil, fmt.Errorf("every ip-range or gateway must have a corresponding subnet")
	}
	var cfgs []network.IPAMConfig
	for _, s := range o.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet %s: %w", s, err)
		}
		cfgs = append(cfgs, network.IPAMConfig{Subnet: p})
	}
	find := func(a netip.Addr, what, val string) (int, error) {
		for i := range cfgs {
			if cfgs[i].Subnet.Contains(a) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("no matching subnet for %s %s", what, val)
	}
	for _, r := range o.IPRanges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid ip-range %s: %w", r, err)
		}
		i, err := find(p.Addr(), "range", r)
		if err != nil {
			return nil, err
		}
		if cfgs[i].IPRange.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, cfgs[i].IPRange, cfgs[i].Subnet)
		}
		cfgs[i].IPRange = p
	}
	for _, g := range o.Gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("invalid gateway %s: %w", g, err)
		}
		i, err := find(a, "gateway", g)
		if err != nil {
			return nil, err
		}
		if cfgs[i].Gateway.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, cfgs[i].Gateway, cfgs[i].Subnet)
		}
		cfgs[i].Gateway = a
	}
	for _, kv := range o.AuxAddresses {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("invalid aux-address %s (expected name=ip)", kv)
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("invalid aux-address %s: %w", kv, err)
		}
		i, err := find(a, "aux-address", v)
		if err != nil {
			return nil, err
		}
		if cfgs[i].AuxAddress == nil {
			cfgs[i].AuxAddress = map[string]netip.Addr{}
		}
		cfgs[i].AuxAddress[k] = a
	}
	if len(cfgs) == 0 && o.IPAMDriver == "" && len(ipamOpts) == 0 {
		return nil, nil
	}
	driver := o.IPAMDriver
	if driver == "" {
		driver = "default"
	}
	return &network.IPAM{Driver: driver, Options: ipamOpts, Config: cfgs}, nil
}

// NetworkLsOptions are the options of network ls.
type NetworkLsOptions struct {
	Quiet, NoTrunc bool
	Format         string
	Filters        []string
}

var networkHeaders = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "Label": "LABEL", "CreatedAt": "CREATED AT"}

// NetworkRow is one network as templates see it.
type NetworkRow struct {
	n     network.Summary
	trunc bool
}

// MarshalJSON is what {{json .}} prints.
func (r *NetworkRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// ID is the network ID.
func (r *NetworkRow) ID() string {
	if r.trunc {
		return shortID(r.n.ID)
	}
	return r.n.ID
}

// Name is the network's name.
func (r *NetworkRow) Name() string { return r.n.Name }

// Driver is the network's driver.
func (r *NetworkRow) Driver() string { return r.n.Driver }

// Scope is the network's scope.
func (r *NetworkRow) Scope() string { return r.n.Scope }

// IPv4 says whether IPv4 is on.
func (r *NetworkRow) IPv4() string { return strconv.FormatBool(r.n.EnableIPv4) }

// IPv6 says whether IPv6 is on.
func (r *NetworkRow) IPv6() string { return strconv.FormatBool(r.n.EnableIPv6) }

// Internal says whether the network is internal.
func (r *NetworkRow) Internal() string { return strconv.FormatBool(r.n.Internal) }

// Labels are the network's labels.
func (r *NetworkRow) Labels() string { return joinLabels(r.n.Labels) }

// Label is one label's value.
func (r *NetworkRow) Label(name string) string { return r.n.Labels[name] }

// CreatedAt is the creation time.
func (r *NetworkRow) CreatedAt() string { return r.n.Created.String() }

// NetworkLs lists networks.
func (c *CLI) NetworkLs(ctx context.Context, o NetworkLsOptions) error {
	o.Format = c.configFormat(o.Format, func(cf *configfile.ConfigFile) string { return cf.NetworksFormat })
	f := Formatter{Format: o.Format, DefaultTable: "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", Headers: networkHeaders,
		Quiet: o.Quiet, QuietTemplate: "{{.ID}}"}
	if err := f.ParseFormat(); err != nil {
		return err
	}
	filters, err := ParseFilters(o.Filters)
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		return c.daemonError(err)
	}
	rows := make([]any, 0, len(res.Items))
	for _, n := range sortedNetworks(res.Items) {
		rows = append(rows, &NetworkRow{n: n, trunc: !o.NoTrunc})
	}
	return f.Write(c.Out, rows)
}

func sortedNetworks(ns []network.Summary) []network.Summary {
	out := append([]network.Summary(nil), ns...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Name < out[j-1].Name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// NetworkRm removes networks.
func (c *CLI) NetworkRm(ctx context.Context, names []string, force bool) error {
	return c.forEach(ctx, names, true, func(ctx context.Context, cl *client.Client, n string) error {
		_, err := cl.NetworkRemove(ctx, n, client.NetworkRemoveOptions{})
		if err != nil && force && isNotFound(err) {
			return nil
		}
		return err
	})
}

// NetworkConnectOptions are the options of network connect.
type NetworkConnectOptions struct {
	Network, Container string
	Aliases, Links     []string
	IPv4, IPv6         string
	LinkLocalIPs       []string
	DriverOpts         []string
	GwPriority         int
}

// NetworkConnect connects a container to a network.
func (c *CLI) NetworkConnect(ctx context.Context, o NetworkConnectOptions) error {
	ep := &network.EndpointSettings{Aliases: o.Aliases, Links: o.Links, GwPriority: o.GwPriority}
	var err error
	if ep.DriverOpts, err = kvMap(o.DriverOpts, "driver-opt"); err != nil {
		return err
	}
	ipam := &network.EndpointIPAMConfig{}
	if ipam.IPv4Address, err = parseOptionalAddr("ip", o.IPv4, netip.Addr{}); err != nil {
		return err
	}
	if ipam.IPv6Address, err = parseOptionalAddr("ip6", o.IPv6, netip.Addr{}); err != nil {
		return err
	}
	for _, s := range o.LinkLocalIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("invalid link-local IP %q: %w", s, err)
		}
		ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
	}
	if ipam.IPv4Address.IsValid() || ipam.IPv6Address.IsValid() || len(ipam.LinkLocalIPs) > 0 {
		ep.IPAMConfig = ipam
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	_, err = cl.NetworkConnect(ctx, o.Network, client.NetworkConnectOptions{Container: o.Container, EndpointConfig: ep})
	return c.daemonError(err)
}

// NetworkDisconnect disconnects a container from a network.
func (c *CLI) NetworkDisconnect(ctx context.Context, netName, container string, force bool) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	_, err = cl.NetworkDisconnect(ctx, netName, client.NetworkDisconnectOptions{Container: container, Force: force})
	return c.daemonError(err)
}
