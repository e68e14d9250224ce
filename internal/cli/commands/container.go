package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
)

// containerCommands are the top-level container verbs (berth run, ps...).
func (a *app) containerCommands() []*cobra.Command {
	return []*cobra.Command{
		a.newRunCommand(), a.newCreateCommand(), a.newStartCommand(), a.newStopCommand(), a.newRestartCommand(),
		a.newKillCommand(), a.newRmCommand(), a.newPsCommand(), a.newLogsCommand(), a.newExecCommand(),
		a.newAttachCommand(), a.newWaitCommand(), a.newInspectCommand(), a.newTopCommand(), a.newStatsCommand(),
		a.newPortCommand(), a.newRenameCommand(), a.newUpdateCommand(), a.newPauseCommand(), a.newUnpauseCommand(),
		a.newCpCommand(), a.newDiffCommand(), a.newCommitCommand(), a.newExportCommand(),
	}
}

// containerGroup is berth container with every verb, ls/ps/list and prune.
func (a *app) containerGroup() *cobra.Command {
	g := &cobra.Command{Use: "container", Short: "Manage containers", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	g.AddCommand(
		a.newRunCommand(), a.newCreateCommand(), a.newStartCommand(), a.newStopCommand(), a.newRestartCommand(),
		a.newKillCommand(), alias(a.newRmCommand, "rm", "remove"), alias(a.newPsCommand, "ls", "ps", "list"),
		a.newLogsCommand(), a.newExecCommand(), a.newAttachCommand(), a.newWaitCommand(), a.newContainerInspectCommand(),
		a.newTopCommand(), a.newStatsCommand(), a.newPortCommand(), a.newRenameCommand(), a.newUpdateCommand(),
		a.newPauseCommand(), a.newUnpauseCommand(), a.newCpCommand(), a.newDiffCommand(), a.newCommitCommand(),
		a.newExportCommand(), a.newContainerPruneCommand(),
	)
	return g
}

func (a *app) newRunCommand() *cobra.Command {
	return a.runCommand(&cli.RunOptions{ContainerOptions: cli.NewContainerOptions()})
}

// runCommand is berth run filling o (tests parse flags into their own).
func (a *app) runCommand(o *cli.RunOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			finishContainerFlags(cmd, o.ContainerOptions, args)
			return a.cli.Run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.Bool("help", false, "Print usage")
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Run container in background and print container ID")
	fl.StringVar(&o.DetachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.BoolVar(&o.SigProxy, "sig-proxy", true, "Proxy received signals to the process")
	addContainerFlags(fl, o.ContainerOptions)
	return cmd
}

func (a *app) newCreateCommand() *cobra.Command {
	o := cli.NewContainerOptions()
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			finishContainerFlags(cmd, o, args)
			return a.cli.Create(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.Bool("help", false, "Print usage")
	addContainerFlags(fl, o)
	return cmd
}

func (a *app) newStartCommand() *cobra.Command {
	var o cli.StartOptions
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Containers = args
			return a.cli.Start(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fl.BoolVarP(&o.Interactive, "interactive", "i", false, "Attach container's STDIN")
	fl.StringVar(&o.DetachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.StringVar(&o.Checkpoint, "checkpoint", "", "Restore from this checkpoint")
	fl.StringVar(&o.CheckpointDir, "checkpoint-dir", "", "Use a custom checkpoint storage directory")
	fl.SetAnnotation("checkpoint", "experimental", nil)
	return cmd
}

func (a *app) stopLike(use, short string, run func(*cobra.Command, cli.StopOptions) error) *cobra.Command {
	var o cli.StopOptions
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Containers = args
			o.TimeoutSet = cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time")
			return run(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Signal, "signal", "s", "", "Signal to send to the container")
	fl.IntVarP(&o.Timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fl.IntVar(&o.Timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	fl.MarkDeprecated("time", "use --timeout instead")
	return cmd
}

func (a *app) newStopCommand() *cobra.Command {
	return a.stopLike("stop", "Stop one or more running containers", func(cmd *cobra.Command, o cli.StopOptions) error {
		return a.cli.Stop(cmd.Context(), o)
	})
}

func (a *app) newRestartCommand() *cobra.Command {
	return a.stopLike("restart", "Restart one or more containers", func(cmd *cobra.Command, o cli.StopOptions) error {
		return a.cli.Restart(cmd.Context(), o)
	})
}

func (a *app) newKillCommand() *cobra.Command {
	var o cli.KillOptions
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Containers = args
			return a.cli.Kill(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (a *app) newRmCommand() *cobra.Command {
	var o cli.RmOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Containers = args
			return a.cli.Rm(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	fl.BoolVarP(&o.Link, "link", "l", false, "Remove the specified link")
	fl.BoolVarP(&o.Volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func (a *app) newPsCommand() *cobra.Command {
	var o cli.PsOptions
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Ps(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "Show all containers (default shows just running)")
	stringSlice(fl, &o.Filters, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&o.Format, "format", "", formatHelp)
	fl.IntVarP(&o.Last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&o.Latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.BoolVar(&o.NoTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&o.Size, "size", "s", false, "Display total file sizes")
	return cmd
}

const formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.`

func (a *app) newLogsCommand() *cobra.Command {
	var o cli.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container = args[0]
			return a.cli.Logs(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	fl.StringVar(&o.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fl.StringVar(&o.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fl.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	fl.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

func (a *app) newExecCommand() *cobra.Command {
	o := cli.NewExecOptions()
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container, o.Command = args[0], args[1:]
			return a.cli.Exec(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVar(&o.DetachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.BoolVarP(&o.Interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&o.TTY, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.StringVarP(&o.User, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to the command")
	fl.VarP(&o.Env, "env", "e", "Set environment variables")
	fl.Var(&o.EnvFile, "env-file", "Read in a file of environment variables")
	fl.StringVarP(&o.Workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

func (a *app) newAttachCommand() *cobra.Command {
	var o cli.AttachOptions
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container = args[0]
			return a.cli.Attach(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.NoStdin, "no-stdin", false, "Do not attach STDIN")
	fl.BoolVar(&o.SigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fl.StringVar(&o.DetachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (a *app) newWaitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.WaitContainers(cmd.Context(), args)
		},
	}
}

func (a *app) newInspectCommand() *cobra.Command {
	var o cli.InspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Docker objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			return a.cli.Inspect(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	fl.BoolVarP(&o.Size, "size", "s", false, "Display total file sizes if the type is container")
	fl.StringVar(&o.Type, "type", "", "Only inspect objects of the given type")
	return cmd
}

const inspectFormatHelp = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.`

func (a *app) newContainerInspectCommand() *cobra.Command {
	o := cli.InspectOptions{Type: "container"}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			return a.cli.Inspect(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVarP(&o.Size, "size", "s", false, "Display total file sizes")
	return cmd
}

func (a *app) newTopCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Top(cmd.Context(), args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (a *app) newStatsCommand() *cobra.Command {
	var o cli.StatsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Containers = args
			return a.cli.Stats(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVar(&o.NoStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&o.NoTrunc, "no-trunc", false, "Do not truncate output")
	fl.StringVar(&o.Format, "format", "", formatHelp)
	return cmd
}

func (a *app) newPortCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port := ""
			if len(args) > 1 {
				port = args[1]
			}
			return a.cli.Port(cmd.Context(), args[0], port)
		},
	}
}

func (a *app) newRenameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Rename(cmd.Context(), args[0], args[1])
		},
	}
}

func (a *app) newUpdateCommand() *cobra.Command {
	var o cli.UpdateOptions
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Containers = args
			o.PidsLimitSet = cmd.Flags().Changed("pids-limit")
			o.SetChanged(cmd.Flags().NFlag() > 0)
			return a.cli.Update(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.Uint16Var(&o.BlkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fl.Int64Var(&o.CPUPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&o.CPUQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.Int64Var(&o.CPURtPeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	fl.Int64Var(&o.CPURtRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	fl.Int64VarP(&o.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Var(&o.CPUs, "cpus", "Number of CPUs")
	fl.StringVar(&o.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&o.CpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.VarP(&o.Memory, "memory", "m", "Memory limit")
	fl.Var(&o.MemoryReservation, "memory-reservation", "Memory soft limit")
	fl.Var(&o.MemorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.Int64Var(&o.PidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.StringVar(&o.Restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

func (a *app) newPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Pause(cmd.Context(), args)
		},
	}
}

func (a *app) newUnpauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Unpause(cmd.Context(), args)
		},
	}
}

func (a *app) newCpCommand() *cobra.Command {
	var o cli.CpOptions
	cmd := &cobra.Command{
		Use: `cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
	berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH`,
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Source, o.Destination = args[0], args[1]
			if !cmd.Flags().Changed("quiet") {
				o.Quiet = !a.cli.Out.IsTerminal()
			}
			return a.cli.Cp(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.FollowLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&o.Archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

func (a *app) newDiffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.Diff(cmd.Context(), args[0])
		},
	}
}

func (a *app) newCommitCommand() *cobra.Command {
	var o cli.CommitOptions
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container = args[0]
			if len(args) > 1 {
				o.Reference = args[1]
			}
			return a.cli.Commit(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&o.Pause, "pause", "p", true, "Pause container during commit")
	fl.StringVarP(&o.Message, "message", "m", "", "Commit message")
	fl.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	stringSlice(fl, &o.Changes, "change", "c", "Apply Dockerfile instruction to the created image")
	return cmd
}

func (a *app) newExportCommand() *cobra.Command {
	var o cli.ExportOptions
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container = args[0]
			return a.cli.Export(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func (a *app) newContainerPruneCommand() *cobra.Command {
	var o cli.PruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.cli.ContainerPrune(cmd.Context(), o)
		},
	}
	stringSlice(cmd.Flags(), &o.Filters, "filter", "", `Provide filter values (e.g. "until=<timestamp>")`)
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
