package commands

import (
	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// addContainerFlags registers the flags run and create share, with
// docker's names, shorthands and defaults.
func addContainerFlags(fl *pflag.FlagSet, o *cli.ContainerOptions) {
	fl.VarP(&o.Attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fl.Var(&o.DeviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fl.Var(&o.Devices, "device", "Add a host device to the container")
	fl.Var(&o.Gpus, "gpus", "GPU devices to add to the container ('all' to pass all GPUs)")
	fl.VarP(&o.Env, "env", "e", "Set environment variables")
	fl.Var(&o.EnvFile, "env-file", "Read in a file of environment variables")
	fl.StringVar(&o.Entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fl.Var(&o.GroupAdd, "group-add", "Add additional groups to join")
	fl.StringVarP(&o.Hostname, "hostname", "h", "", "Container host name")
	fl.StringVar(&o.Domainname, "domainname", "", "Container NIS domain name")
	fl.BoolVarP(&o.Interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.VarP(&o.Labels, "label", "l", "Set meta data on a container")
	fl.Var(&o.LabelsFile, "label-file", "Read in a line delimited file of labels")
	fl.BoolVar(&o.ReadOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fl.StringVar(&o.Restart, "restart", "", "Restart policy to apply when a container exits")
	fl.StringVar(&o.StopSignal, "stop-signal", "", "Signal to stop the container")
	fl.IntVar(&o.StopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fl.Var(o.Sysctls, "sysctl", "Sysctl options")
	fl.BoolVarP(&o.TTY, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.Var(o.Ulimits, "ulimit", "Ulimit options")
	fl.StringVarP(&o.User, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&o.Workdir, "workdir", "w", "", "Working directory inside the container")
	fl.BoolVar(&o.AutoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	fl.Var(&o.CapAdd, "cap-add", "Add Linux capabilities")
	fl.Var(&o.CapDrop, "cap-drop", "Drop Linux capabilities")
	fl.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to this container")
	fl.Var(&o.SecurityOpt, "security-opt", "Security Options")
	fl.StringVar(&o.Userns, "userns", "", "User namespace to use")
	fl.StringVar(&o.Cgroupns, "cgroupns", "", `Cgroup namespace to use (host|private)`)

	fl.Var(&o.ExtraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fl.Var(&o.DNS, "dns", "Set custom DNS servers")
	fl.Var(&o.DNSOptions, "dns-option", "Set DNS options")
	fl.Var(&o.DNSSearch, "dns-search", "Set custom DNS search domains")
	fl.Var(&o.Expose, "expose", "Expose a port or a range of ports")
	fl.StringVar(&o.IPv4, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&o.IPv6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fl.Var(&o.Links, "link", "Add link to another container")
	fl.Var(&o.LinkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fl.StringVar(&o.MacAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fl.VarP(&o.Publish, "publish", "p", "Publish a container's port(s) to the host")
	fl.BoolVarP(&o.PublishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fl.Var(&o.Network, "network", "Connect a container to a network")
	fl.Var(&o.Network, "net", "Connect a container to a network")
	fl.MarkHidden("net")
	fl.Var(&o.Aliases, "network-alias", "Add network-scoped alias for the container")
	fl.Var(&o.Aliases, "net-alias", "Add network-scoped alias for the container")
	fl.MarkHidden("net-alias")

	fl.StringVar(&o.LogDriver, "log-driver", "", "Logging driver for the container")
	fl.Var(&o.LogOpts, "log-opt", "Log driver options")

	fl.Var(&o.StorageOpt, "storage-opt", "Storage driver options for the container")
	fl.Var(&o.Tmpfs, "tmpfs", "Mount a tmpfs directory")
	fl.Var(&o.VolumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fl.VarP(&o.Volumes, "volume", "v", "Bind mount a volume")
	fl.Var(&o.Mounts, "mount", "Attach a filesystem mount to the container")
	fl.StringVar(&o.VolumeDriver, "volume-driver", "", "Optional volume driver for the container")

	fl.StringVar(&o.HealthCmd, "health-cmd", "", "Command to run to check health")
	fl.DurationVar(&o.HealthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fl.IntVar(&o.HealthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fl.DurationVar(&o.HealthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fl.DurationVar(&o.HealthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fl.DurationVar(&o.HealthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fl.BoolVar(&o.NoHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	fl.Uint16Var(&o.BlkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fl.Var(&o.BlkioWeightDevice, "blkio-weight-device", "Block IO weight (relative device weight)")
	fl.StringVar(&o.CgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fl.Int64Var(&o.CPUPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&o.CPUQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.Int64Var(&o.CPURtPeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fl.Int64Var(&o.CPURtRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fl.Int64VarP(&o.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Var(&o.CPUs, "cpus", "Number of CPUs")
	fl.StringVar(&o.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&o.CpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Var(&o.DeviceReadBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	fl.Var(&o.DeviceReadIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	fl.Var(&o.DeviceWriteBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	fl.Var(&o.DeviceWriteIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
	fl.VarP(&o.Memory, "memory", "m", "Memory limit")
	fl.Var(&o.MemoryReservation, "memory-reservation", "Memory soft limit")
	fl.Var(&o.MemorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.Int64Var(&o.MemorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fl.BoolVar(&o.OomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fl.IntVar(&o.OomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fl.Int64Var(&o.PidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	fl.StringVar(&o.IPC, "ipc", "", "IPC mode to use")
	fl.StringVar(&o.Isolation, "isolation", "", "Container isolation technology")
	fl.StringVar(&o.PID, "pid", "", "PID namespace to use")
	fl.Var(&o.ShmSize, "shm-size", "Size of /dev/shm")
	fl.StringVar(&o.UTS, "uts", "", "UTS namespace to use")
	fl.StringVar(&o.Runtime, "runtime", "", "Runtime to use for this container")
	fl.BoolVar(&o.Init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fl.Var(o.Annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")

	fl.StringVar(&o.Name, "name", "", "Assign a name to the container")
	fl.StringVar(&o.Platform, "platform", "", "Set platform if server is multi-platform capable")
	fl.StringVar(&o.Pull, "pull", cli.PullMissing, `Pull image before running ("always", "missing", "never")`)
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress the pull output")
	fl.StringVar(&o.CIDFile, "cidfile", "", "Write the container ID to the file")
}

// finishContainerFlags records which optional flags were given and the
// image and command.
func finishContainerFlags(cmd *cobra.Command, o *cli.ContainerOptions, args []string) {
	fl := cmd.Flags()
	o.EntrypointSet = fl.Changed("entrypoint")
	o.InitSet = fl.Changed("init")
	o.StopTimeoutSet = fl.Changed("stop-timeout")
	o.PidsLimitSet = fl.Changed("pids-limit")
	o.OomKillDisableSet = fl.Changed("oom-kill-disable")
	o.Image = args[0]
	o.Args = args[1:]
}
