package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
)

// networkGroup is berth network.
func (a *app) networkGroup() *cobra.Command {
	g := &cobra.Command{Use: "network", Short: "Manage networks", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	g.AddCommand(a.newNetworkCreateCommand(), a.newNetworkLsCommand(), a.newNetworkInspectCommand(),
		a.newNetworkRmCommand(), a.newNetworkPruneCommand(), a.newNetworkConnectCommand(), a.newNetworkDisconnectCommand())
	return g
}

func (a *app) newNetworkCreateCommand() *cobra.Command {
	var o cli.NetworkCreateOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			o.IPv4Set, o.IPv6Set = cmd.Flags().Changed("ipv4"), cmd.Flags().Changed("ipv6")
			return a.cli.NetworkCreate(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Driver, "driver", "d", "bridge", "Driver to manage the Network")
	stringSlice(fl, &o.Options, "opt", "o", "Set driver specific options")
	stringSlice(fl, &o.Labels, "label", "", "Set metadata on a network")
	fl.BoolVar(&o.Internal, "internal", false, "Restrict external access to the network")
	fl.BoolVar(&o.IPv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	fl.BoolVar(&o.IPv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	fl.BoolVar(&o.Attachable, "attachable", false, "Enable manual container attachment")
	fl.BoolVar(&o.Ingress, "ingress", false, "Create swarm routing-mesh network")
	fl.StringVar(&o.Scope, "scope", "", "Control the network's scope")
	fl.BoolVar(&o.ConfigOnly, "config-only", false, "Create a configuration only network")
	fl.StringVar(&o.ConfigFrom, "config-from", "", "The network from which to copy the configuration")
	fl.StringVar(&o.IPAMDriver, "ipam-driver", "default", "IP Address Management Driver")
	stringSlice(fl, &o.Subnets, "subnet", "", "Subnet in CIDR format that represents a network segment")
	stringSlice(fl, &o.IPRanges, "ip-range", "", "Allocate container ip from a sub-range")
	stringSlice(fl, &o.Gateways, "gateway", "", "IPv4 or IPv6 Gateway for the master subnet")
	stringSlice(fl, &o.AuxAddresses, "aux-address", "", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	stringSlice(fl, &o.IPAMOpts, "ipam-opt", "", "Set IPAM driver specific options")
	return cmd
}

func (a *app) newNetworkLsCommand() *cobra.Command {
	var o cli.NetworkLsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.NetworkLs(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Only display network IDs")
	fl.BoolVar(&o.NoTrunc, "no-trunc", false, "Do not truncate the output")
	fl.StringVar(&o.Format, "format", "", formatHelp)
	stringSlice(fl, &o.Filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	return cmd
}

func (a *app) newNetworkInspectCommand() *cobra.Command {
	o := cli.InspectOptions{Type: "network"}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			return a.cli.Inspect(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVarP(&o.Verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func (a *app) newNetworkRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.NetworkRm(cmd.Context(), args, force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (a *app) newNetworkPruneCommand() *cobra.Command {
	var o cli.PruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.NetworkPrune(cmd.Context(), o)
		},
	}
	stringSlice(cmd.Flags(), &o.Filters, "filter", "", `Provide filter values (e.g. "until=<timestamp>")`)
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func (a *app) newNetworkConnectCommand() *cobra.Command {
	var o cli.NetworkConnectOptions
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Network, o.Container = args[0], args[1]
			return a.cli.NetworkConnect(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.IPv4, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	fl.StringVar(&o.IPv6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	stringSlice(fl, &o.Links, "link", "", "Add link to another container")
	stringSlice(fl, &o.Aliases, "alias", "", "Add network-scoped alias for the container")
	stringSlice(fl, &o.LinkLocalIPs, "link-local-ip", "", "Add a link-local address for the container")
	stringSlice(fl, &o.DriverOpts, "driver-opt", "", "driver options for the network")
	fl.IntVar(&o.GwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

func (a *app) newNetworkDisconnectCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.NetworkDisconnect(cmd.Context(), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
