package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
)

// imageCommands are the top-level image verbs (berth images, pull...).
func (a *app) imageCommands() []*cobra.Command {
	return []*cobra.Command{
		alias(a.newImagesCommand, "images"), a.newPullCommand(), a.newPushCommand(), a.newTagCommand(),
		alias(a.newRmiCommand, "rmi"), a.newSaveCommand(), a.newLoadCommand(), a.newImportCommand(),
		a.newHistoryCommand(), a.newLoginCommand(), a.newLogoutCommand(),
	}
}

// imageGroup is berth image with ls, rm, prune and inspect.
func (a *app) imageGroup() *cobra.Command {
	g := &cobra.Command{Use: "image", Short: "Manage images", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	g.AddCommand(
		alias(a.newImagesCommand, "ls", "list"), a.newPullCommand(), a.newPushCommand(), a.newTagCommand(),
		alias(a.newRmiCommand, "rm", "remove", "rmi"), a.newSaveCommand(), a.newLoadCommand(), a.newImportCommand(),
		a.newHistoryCommand(), a.newImageInspectCommand(), a.newImagePruneCommand(),
		a.newBuildCommand(),
	)
	return g
}

func (a *app) newImagesCommand() *cobra.Command {
	var o cli.ImagesOptions
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.Reference = args[0]
			}
			return a.cli.Images(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVar(&o.Digests, "digests", false, "Show digests")
	stringSlice(fl, &o.Filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&o.Format, "format", "", formatHelp)
	fl.BoolVar(&o.NoTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

func (a *app) newPullCommand() *cobra.Command {
	var o cli.PullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return a.cli.Pull(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllTags, "all-tags", "a", false, "Download all tagged images in the repository")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress verbose output")
	fl.StringVar(&o.Platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func (a *app) newPushCommand() *cobra.Command {
	var o cli.PushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return a.cli.Push(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllTags, "all-tags", "a", false, "Push all tags of an image to the repository")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress verbose output")
	fl.StringVar(&o.Platform, "platform", "", "Push a platform-specific manifest as a single-platform image to the registry")
	return cmd
}

func (a *app) newTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

func (a *app) newRmiCommand() *cobra.Command {
	var o cli.RmiOptions
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Images = args
			return a.cli.Rmi(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Force, "force", "f", false, "Force removal of the image")
	fl.BoolVar(&o.NoPrune, "no-prune", false, "Do not delete untagged parents")
	fl.StringSliceVar(&o.Platforms, "platform", nil, "Remove only the given platform variant")
	return cmd
}

func (a *app) newSaveCommand() *cobra.Command {
	var o cli.SaveOptions
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Images = args
			return a.cli.Save(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringSliceVar(&o.Platforms, "platform", nil, "Save only the given platform(s)")
	return cmd
}

func (a *app) newLoadCommand() *cobra.Command {
	var o cli.LoadOptions
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Load(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress the load output")
	fl.StringSliceVar(&o.Platforms, "platform", nil, "Load only the given platform(s)")
	return cmd
}

func (a *app) newImportCommand() *cobra.Command {
	var o cli.ImportOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Source = args[0]
			if len(args) > 1 {
				o.Reference = args[1]
			}
			return a.cli.Import(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	stringSlice(fl, &o.Changes, "change", "c", "Apply Dockerfile instruction to the created image")
	fl.StringVarP(&o.Message, "message", "m", "", "Set commit message for imported image")
	fl.StringVar(&o.Platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func (a *app) newHistoryCommand() *cobra.Command {
	var o cli.HistoryOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Image = args[0]
			return a.cli.History(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Human, "human", "H", true, "Print sizes and dates in human readable format")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&o.NoTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&o.Format, "format", "", formatHelp)
	fl.StringVar(&o.Platform, "platform", "", "Show history for the given platform")
	return cmd
}

func (a *app) newImageInspectCommand() *cobra.Command {
	o := cli.InspectOptions{Type: "image"}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			return a.cli.Inspect(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().StringVar(&o.Platform, "platform", "", "Inspect a specific platform of the multi-platform image")
	return cmd
}

func (a *app) newImagePruneCommand() *cobra.Command {
	var o cli.PruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.ImagePrune(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "Remove all unused images, not just dangling ones")
	fl.BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	stringSlice(fl, &o.Filters, "filter", "", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func (a *app) newLoginCommand() *cobra.Command {
	var o cli.LoginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.Server = args[0]
			}
			return a.cli.Login(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Username, "username", "u", "", "Username")
	fl.StringVarP(&o.Password, "password", "p", "", "Password or Personal Access Token (PAT)")
	fl.BoolVar(&o.PasswordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func (a *app) newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return a.cli.Logout(cmd.Context(), server)
		},
	}
}
