package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
)

// buildCommands are berth build and the builder group.
func (a *app) buildCommands() []*cobra.Command {
	return []*cobra.Command{a.newBuildCommand(), a.builderGroup()}
}

func (a *app) newBuildCommand() *cobra.Command {
	var o cli.BuildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Context = args[0]
			return a.cli.Build(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	stringSlice(fl, &o.Tags, "tag", "t", `Name and optionally a tag in the "name:tag" format`)
	fl.StringVarP(&o.Dockerfile, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	stringSlice(fl, &o.BuildArgs, "build-arg", "", "Set build-time variables")
	stringSlice(fl, &o.Labels, "label", "", "Set metadata for an image")
	fl.StringVar(&o.Target, "target", "", "Set the target build stage to build.")
	fl.BoolVar(&o.NoCache, "no-cache", false, "Do not use cache when building the image")
	fl.BoolVar(&o.Pull, "pull", false, "Always attempt to pull a newer version of the image")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	fl.StringVar(&o.IIDFile, "iidfile", "", "Write the image ID to the file")
	fl.StringVar(&o.Network, "network", "default", "Set the networking mode for the RUN instructions during build")
	fl.BoolVar(&o.Rm, "rm", true, "Remove intermediate containers after a successful build")
	fl.BoolVar(&o.ForceRm, "force-rm", false, "Always remove intermediate containers")
	fl.BoolVar(&o.Compress, "compress", false, "Compress the build context using gzip")
	return cmd
}

// builderGroup is berth builder with prune.
func (a *app) builderGroup() *cobra.Command {
	g := &cobra.Command{Use: "builder", Short: "Manage builds", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	g.AddCommand(a.newBuilderPruneCommand())
	return g
}

func (a *app) newBuilderPruneCommand() *cobra.Command {
	var o cli.BuilderPruneOptions
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.BuilderPrune(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
