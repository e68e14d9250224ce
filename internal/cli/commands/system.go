package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
)

// systemCommands are the top-level system verbs (version, info, events).
func (a *app) systemCommands() []*cobra.Command {
	return []*cobra.Command{a.newVersionCommand(), a.newInfoCommand(), a.newEventsCommand()}
}

// systemGroup is berth system: df, events, info, prune.
func (a *app) systemGroup() *cobra.Command {
	g := &cobra.Command{Use: "system", Short: "Manage berth", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	g.AddCommand(a.newDfCommand(), a.newEventsCommand(), a.newInfoCommand(), a.newSystemPruneCommand())
	return g
}

func (a *app) newVersionCommand() *cobra.Command {
	var o cli.VersionOptions
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Version(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func (a *app) newInfoCommand() *cobra.Command {
	var o cli.InfoOptions
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Info(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func (a *app) newEventsCommand() *cobra.Command {
	var o cli.EventsOptions
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Events(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&o.Until, "until", "", "Stream events until this timestamp")
	stringSlice(fl, &o.Filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&o.Format, "format", "", inspectFormatHelp)
	return cmd
}

func (a *app) newDfCommand() *cobra.Command {
	var o cli.DfOptions
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Df(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "", formatHelp)
	cmd.Flags().BoolVarP(&o.Verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func (a *app) newSystemPruneCommand() *cobra.Command {
	var o cli.PruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.SystemPrune(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "Remove all unused images not just dangling ones")
	fl.BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	fl.BoolVar(&o.Volumes, "volumes", false, "Prune anonymous volumes")
	stringSlice(fl, &o.Filters, "filter", "", `Provide filter values (e.g. "label=<key>=<value>")`)
	return cmd
}
