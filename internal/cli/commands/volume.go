package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
)

// volumeGroup is berth volume.
func (a *app) volumeGroup() *cobra.Command {
	g := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	g.AddCommand(a.newVolumeCreateCommand(), a.newVolumeLsCommand(), a.newVolumeInspectCommand(),
		a.newVolumeRmCommand(), a.newVolumePruneCommand())
	return g
}

func (a *app) newVolumeCreateCommand() *cobra.Command {
	var o cli.VolumeCreateOptions
	var name string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = name
			if len(args) == 1 {
				if name != "" {
					return &argsError{cmd: cmd, msg: "conflicting options: cannot specify a volume-name through both --name and as a positional arg"}
				}
				o.Name = args[0]
			}
			return a.cli.VolumeCreate(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Driver, "driver", "d", "local", "Specify volume driver name")
	fl.StringVar(&name, "name", "", "Specify volume name")
	fl.MarkHidden("name")
	stringSlice(fl, &o.Options, "opt", "o", "Set driver specific options")
	stringSlice(fl, &o.Labels, "label", "", "Set metadata for a volume")
	return cmd
}

func (a *app) newVolumeLsCommand() *cobra.Command {
	var o cli.VolumeLsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.VolumeLs(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Only display volume names")
	fl.StringVar(&o.Format, "format", "", formatHelp)
	stringSlice(fl, &o.Filters, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	return cmd
}

func (a *app) newVolumeInspectCommand() *cobra.Command {
	o := cli.InspectOptions{Type: "volume"}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			return a.cli.Inspect(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func (a *app) newVolumeRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.VolumeRm(cmd.Context(), args, force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func (a *app) newVolumePruneCommand() *cobra.Command {
	var o cli.PruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.VolumePrune(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	stringSlice(fl, &o.Filters, "filter", "", `Provide filter values (e.g. "label=<label>")`)
	fl.BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
