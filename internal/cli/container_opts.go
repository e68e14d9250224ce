package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/opts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerOptions are the flags shared by run and create, plus the image
// and command. Flag values of list or map kind use docker/cli's option
// types so that they parse exactly as docker's.
type ContainerOptions struct {
	Attach            opts.ListOpts
	Volumes           opts.ListOpts
	Tmpfs             opts.ListOpts
	BlkioWeightDevice opts.WeightdeviceOpt
	DeviceReadBps     opts.ThrottledeviceOpt
	DeviceWriteBps    opts.ThrottledeviceOpt
	DeviceReadIOps    opts.ThrottledeviceOpt
	DeviceWriteIOps   opts.ThrottledeviceOpt
	Links             opts.ListOpts
	Aliases           opts.ListOpts
	LinkLocalIPs      opts.ListOpts
	Env               opts.ListOpts
	EnvFile           opts.ListOpts
	Labels            opts.ListOpts
	LabelsFile        opts.ListOpts
	Devices           opts.ListOpts
	DeviceCgroupRules opts.ListOpts
	Ulimits           *opts.UlimitOpt
	Sysctls           *opts.MapOpts
	Annotations       *opts.MapOpts
	Publish           opts.ListOpts
	Expose            opts.ListOpts
	DNS               opts.ListOpts
	DNSSearch         opts.ListOpts
	DNSOptions        opts.ListOpts
	ExtraHosts        opts.ListOpts
	VolumesFrom       opts.ListOpts
	CapAdd            opts.ListOpts
	CapDrop           opts.ListOpts
	GroupAdd          opts.ListOpts
	SecurityOpt       opts.ListOpts
	StorageOpt        opts.ListOpts
	LogOpts           opts.ListOpts
	Mounts            opts.MountOpt
	Network           opts.NetworkOpt
	Gpus              opts.GpuOpts

	Hostname, Domainname, User, Workdir string
	Entrypoint                          string
	EntrypointSet                       bool

	Memory, MemoryReservation, ShmSize opts.MemBytes
	MemorySwap                         opts.MemSwapBytes
	MemorySwappiness                   int64
	CPUs                               opts.NanoCPUs
	CPUShares, CPUPeriod, CPUQuota     int64
	CPURtPeriod, CPURtRuntime          int64
	CPUCount, CPUPercent               int64
	CpusetCpus, CpusetMems             string
	BlkioWeight                        uint16
	IOMaxBandwidth                     opts.MemBytes
	IOMaxIOps                          uint64
	PidsLimit                          int64
	PidsLimitSet                       bool
	OomKillDisable, OomKillDisableSet  bool
	OomScoreAdj                        int

	IPv4, IPv6, MacAddress                 string
	IPC, PID, UTS, Userns, Cgroupns        string
	CgroupParent, Runtime, Restart         string
	StopSignal                             string
	StopTimeout                            int
	StopTimeoutSet                         bool
	LogDriver, VolumeDriver, Isolation     string
	Privileged, ReadOnly, PublishAll       bool
	TTY, Interactive, Init, InitSet        bool
	NoHealthcheck                          bool
	HealthCmd                              string
	HealthInterval, HealthTimeout          time.Duration
	HealthStartPeriod, HealthStartInterval time.Duration
	HealthRetries                          int
	AutoRemove                             bool
	Name, Platform, Pull, CIDFile          string
	Quiet                                  bool
	UseAPISocket                           bool

	Image string
	Args  []string
}

// NewContainerOptions returns options with docker's defaults.
func NewContainerOptions() *ContainerOptions {
	return &ContainerOptions{
		Attach:            opts.NewListOpts(validateAttach),
		Volumes:           opts.NewListOpts(nil),
		Tmpfs:             opts.NewListOpts(nil),
		BlkioWeightDevice: opts.NewWeightdeviceOpt(opts.ValidateWeightDevice),
		DeviceReadBps:     opts.NewThrottledeviceOpt(opts.ValidateThrottleBpsDevice),
		DeviceWriteBps:    opts.NewThrottledeviceOpt(opts.ValidateThrottleBpsDevice),
		DeviceReadIOps:    opts.NewThrottledeviceOpt(opts.ValidateThrottleIOpsDevice),
		DeviceWriteIOps:   opts.NewThrottledeviceOpt(opts.ValidateThrottleIOpsDevice),
		Links:             opts.NewListOpts(opts.ValidateLink),
		Aliases:           opts.NewListOpts(nil),
		LinkLocalIPs:      opts.NewListOpts(nil),
		Env:               opts.NewListOpts(opts.ValidateEnv),
		EnvFile:           opts.NewListOpts(nil),
		Labels:            opts.NewListOpts(opts.ValidateLabel),
		LabelsFile:        opts.NewListOpts(nil),
		Devices:           opts.NewListOpts(nil),
		DeviceCgroupRules: opts.NewListOpts(nil),
		Ulimits:           opts.NewUlimitOpt(nil),
		Sysctls:           opts.NewMapOpts(nil, opts.ValidateSysctl),
		Annotations:       opts.NewMapOpts(nil, nil),
		Publish:           opts.NewListOpts(nil),
		Expose:            opts.NewListOpts(nil),
		DNS:               opts.NewListOpts(opts.ValidateIPAddress),
		DNSSearch:         opts.NewListOpts(opts.ValidateDNSSearch),
		DNSOptions:        opts.NewListOpts(nil),
		ExtraHosts:        opts.NewListOpts(opts.ValidateExtraHost),
		VolumesFrom:       opts.NewListOpts(nil),
		CapAdd:            opts.NewListOpts(nil),
		CapDrop:           opts.NewListOpts(nil),
		GroupAdd:          opts.NewListOpts(nil),
		SecurityOpt:       opts.NewListOpts(nil),
		StorageOpt:        opts.NewListOpts(nil),
		LogOpts:           opts.NewListOpts(nil),
		MemorySwappiness:  -1,
		Pull:              PullMissing,
	}
}

// Pull policies of run and create.
const (
	PullMissing = "missing"
	PullAlways  = "always"
	PullNever   = "never"
)

func validateAttach(val string) (string, error) {
	s := strings.ToLower(val)
	for _, str := range []string{"stdin", "stdout", "stderr"} {
		if s == str {
			return s, nil
		}
	}
	return val, fmt.Errorf("valid streams are STDIN, STDOUT and STDERR")
}

// ContainerConfig is what create sends to the daemon.
type ContainerConfig struct {
	Config     *container.Config
	HostConfig *container.HostConfig
	Network    *network.NetworkingConfig
	Platform   *ocispec.Platform
}

// Parse turns the options into the create request. It reads env and
// label files and seccomp profiles named by the flags.
func (o *ContainerOptions) Parse() (*ContainerConfig, error) {
	if o.Image == "" {
		return nil, fmt.Errorf("image reference is required")
	}
	switch o.Pull {
	case PullMissing, PullAlways, PullNever:
	default:
		return nil, fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", o.Pull)
	}
	attach := map[string]bool{}
	for _, a := range o.Attach.GetSlice() {
		attach[a] = true
	}
	if len(attach) == 0 {
		attach["stdout"], attach["stderr"] = true, true
		if o.Interactive {
			attach["stdin"] = true
		}
	}

	binds, volumes := []string(nil), map[string]struct{}{}
	for _, v := range o.Volumes.GetSlice() {
		src, rest, isBind := strings.Cut(v, ":")
		if !isBind {
			volumes[v] = struct{}{}
			continue
		}
		if strings.HasPrefix(src, ".") {
			abs, err := filepath.Abs(src)
			if err != nil {
				return nil, fmt.Errorf("invalid volume %q: %w", v, err)
			}
			v = abs + ":" + rest
		}
		binds = append(binds, v)
	}
	tmpfs := map[string]string{}
	for _, t := range o.Tmpfs.GetSlice() {
		path, options, _ := strings.Cut(t, ":")
		tmpfs[path] = options
	}

	exposed, bindings, err := parsePorts(o.Publish.GetSlice(), o.Expose.GetSlice())
	if err != nil {
		return nil, err
	}

	devices := make([]container.DeviceMapping, 0, o.Devices.Len())
	for _, d := range o.Devices.GetSlice() {
		dm, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}

	env, err := opts.ReadKVEnvStrings(o.EnvFile.GetSlice(), o.Env.GetSlice())
	if err != nil {
		return nil, err
	}
	labels, err := opts.ReadKVStrings(o.LabelsFile.GetSlice(), o.Labels.GetSlice())
	if err != nil {
		return nil, err
	}
	restart, err := opts.ParseRestartPolicy(o.Restart)
	if err != nil {
		return nil, err
	}
	if o.AutoRemove && restart.Name != "" && restart.Name != container.RestartPolicyDisabled {
		return nil, fmt.Errorf("conflicting options: cannot specify both --restart and --rm")
	}
	logOpts, err := kvMap(o.LogOpts.GetSlice(), "log-opt")
	if err != nil {
		return nil, err
	}
	storageOpts, err := kvMap(o.StorageOpt.GetSlice(), "storage-opt")
	if err != nil {
		return nil, err
	}
	securityOpts, err := parseSecurityOpts(o.SecurityOpt.GetSlice())
	if err != nil {
		return nil, err
	}
	var dns []netip.Addr
	for _, s := range o.DNS.GetSlice() {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("invalid DNS server %q: %w", s, err)
		}
		dns = append(dns, a)
	}

	var entrypoint []string
	if o.Entrypoint != "" {
		entrypoint = []string{o.Entrypoint}
	} else if o.EntrypointSet {
		entrypoint = []string{""} // reset the image's entrypoint
	}

	health, err := o.healthcheck()
	if err != nil {
		return nil, err
	}

	cfg := &container.Config{
		Hostname:     o.Hostname,
		Domainname:   o.Domainname,
		User:         o.User,
		AttachStdin:  attach["stdin"],
		AttachStdout: attach["stdout"],
		AttachStderr: attach["stderr"],
		ExposedPorts: exposed,
		Tty:          o.TTY,
		OpenStdin:    o.Interactive,
		Env:          env,
		Cmd:          o.Args,
		Healthcheck:  health,
		Image:        o.Image,
		Volumes:      volumes,
		WorkingDir:   o.Workdir,
		Entrypoint:   entrypoint,
		Labels:       opts.ConvertKVStringsToMap(labels),
		StopSignal:   o.StopSignal,
	}
	if len(cfg.Volumes) == 0 {
		cfg.Volumes = nil
	}
	if o.StopTimeoutSet {
		t := o.StopTimeout
		cfg.StopTimeout = &t
	}

	res := container.Resources{
		CgroupParent:         o.CgroupParent,
		Memory:               o.Memory.Value(),
		MemoryReservation:    o.MemoryReservation.Value(),
		MemorySwap:           o.MemorySwap.Value(),
		NanoCPUs:             o.CPUs.Value(),
		CPUShares:            o.CPUShares,
		CPUPeriod:            o.CPUPeriod,
		CPUQuota:             o.CPUQuota,
		CPURealtimePeriod:    o.CPURtPeriod,
		CPURealtimeRuntime:   o.CPURtRuntime,
		CPUCount:             o.CPUCount,
		CPUPercent:           o.CPUPercent,
		CpusetCpus:           o.CpusetCpus,
		CpusetMems:           o.CpusetMems,
		BlkioWeight:          o.BlkioWeight,
		BlkioWeightDevice:    o.BlkioWeightDevice.GetList(),
		BlkioDeviceReadBps:   o.DeviceReadBps.GetList(),
		BlkioDeviceWriteBps:  o.DeviceWriteBps.GetList(),
		BlkioDeviceReadIOps:  o.DeviceReadIOps.GetList(),
		BlkioDeviceWriteIOps: o.DeviceWriteIOps.GetList(),
		Devices:              devices,
		DeviceCgroupRules:    o.DeviceCgroupRules.GetSlice(),
		DeviceRequests:       o.Gpus.Value(),
		Ulimits:              o.Ulimits.GetList(),
		IOMaximumBandwidth:   uint64(o.IOMaxBandwidth),
		IOMaximumIOps:        o.IOMaxIOps,
	}
	if o.MemorySwappiness != -1 {
		s := o.MemorySwappiness
		res.MemorySwappiness = &s
	}
	if o.OomKillDisableSet {
		b := o.OomKillDisable
		res.OomKillDisable = &b
	}
	if o.PidsLimitSet {
		p := o.PidsLimit
		res.PidsLimit = &p
	}

	netMode := o.Network.NetworkMode()
	if netMode == "" {
		netMode = "default"
	}
	host := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: o.CIDFile,
		LogConfig:       container.LogConfig{Type: o.LogDriver, Config: logOpts},
		NetworkMode:     container.NetworkMode(netMode),
		PortBindings:    bindings,
		RestartPolicy:   restart,
		AutoRemove:      o.AutoRemove,
		VolumeDriver:    o.VolumeDriver,
		VolumesFrom:     o.VolumesFrom.GetSlice(),
		Annotations:     o.Annotations.GetAll(),
		CapAdd:          o.CapAdd.GetSlice(),
		CapDrop:         o.CapDrop.GetSlice(),
		CgroupnsMode:    container.CgroupnsMode(o.Cgroupns),
		DNS:             dns,
		DNSOptions:      o.DNSOptions.GetSlice(),
		DNSSearch:       o.DNSSearch.GetSlice(),
		ExtraHosts:      o.ExtraHosts.GetSlice(),
		GroupAdd:        o.GroupAdd.GetSlice(),
		IpcMode:         container.IpcMode(o.IPC),
		Links:           o.Links.GetSlice(),
		OomScoreAdj:     o.OomScoreAdj,
		PidMode:         container.PidMode(o.PID),
		Privileged:      o.Privileged,
		PublishAllPorts: o.PublishAll,
		ReadonlyRootfs:  o.ReadOnly,
		SecurityOpt:     securityOpts,
		StorageOpt:      storageOpts,
		Tmpfs:           tmpfs,
		UTSMode:         container.UTSMode(o.UTS),
		UsernsMode:      container.UsernsMode(o.Userns),
		ShmSize:         o.ShmSize.Value(),
		Sysctls:         o.Sysctls.GetAll(),
		Runtime:         o.Runtime,
		Isolation:       container.Isolation(o.Isolation),
		Resources:       res,
		Mounts:          o.Mounts.Value(),
	}
	if len(host.Tmpfs) == 0 {
		host.Tmpfs = nil
	}
	if len(host.Annotations) == 0 {
		host.Annotations = nil
	}
	if len(host.Sysctls) == 0 {
		host.Sysctls = nil
	}
	if o.InitSet {
		b := o.Init
		host.Init = &b
	}

	netCfg, err := o.networking(netMode)
	if err != nil {
		return nil, err
	}
	var platform *ocispec.Platform
	if o.Platform != "" {
		p, err := ParsePlatform(o.Platform)
		if err != nil {
			return nil, err
		}
		platform = &p
	}
	return &ContainerConfig{Config: cfg, HostConfig: host, Network: netCfg, Platform: platform}, nil
}

// networking builds the endpoint settings of the networks given with
// --network, with --ip, --ip6, --network-alias, --link, --link-local-ip and
// --mac-address applied to the first one.
func (o *ContainerOptions) networking(primary string) (*network.NetworkingConfig, error) {
	cfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	attachments := o.Network.Value()
	if len(attachments) == 0 {
		attachments = []opts.NetworkAttachmentOpts{{Target: primary}}
	}
	for i, a := range attachments {
		if _, dup := cfg.EndpointsConfig[a.Target]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", a.Target)
		}
		ep := &network.EndpointSettings{Aliases: a.Aliases, DriverOpts: a.DriverOpts, Links: a.Links, GwPriority: a.GwPriority}
		ipam := &network.EndpointIPAMConfig{IPv4Address: a.IPv4Address, IPv6Address: a.IPv6Address, LinkLocalIPs: a.LinkLocalIPs}
		mac := a.MacAddress
		if i == 0 {
			ep.Aliases = append(ep.Aliases, o.Aliases.GetSlice()...)
			ep.Links = append(ep.Links, o.Links.GetSlice()...)
			var err error
			if ipam.IPv4Address, err = parseOptionalAddr("ip", o.IPv4, ipam.IPv4Address); err != nil {
				return nil, err
			}
			if ipam.IPv6Address, err = parseOptionalAddr("ip6", o.IPv6, ipam.IPv6Address); err != nil {
				return nil, err
			}
			for _, s := range o.LinkLocalIPs.GetSlice() {
				ll, err := netip.ParseAddr(s)
				if err != nil {
					return nil, fmt.Errorf("invalid link-local IP %q: %w", s, err)
				}
				ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, ll)
			}
			if o.MacAddress != "" {
				mac = o.MacAddress
			}
		}
		if mac != "" {
			hw, err := net.ParseMAC(mac)
			if err != nil {
				return nil, fmt.Errorf("%s is not a valid mac address", mac)
			}
			ep.MacAddress = network.HardwareAddr(hw)
		}
		if ipam.IPv4Address.IsValid() || ipam.IPv6Address.IsValid() || len(ipam.LinkLocalIPs) > 0 {
			ep.IPAMConfig = ipam
		}
		if ep.IPAMConfig == nil && len(ep.Aliases) == 0 && len(ep.Links) == 0 && len(ep.DriverOpts) == 0 &&
			len(ep.MacAddress) == 0 && ep.GwPriority == 0 {
			continue // nothing to say about this network beyond the mode
		}
		cfg.EndpointsConfig[a.Target] = ep
	}
	return cfg, nil
}

func parseOptionalAddr(flag, s string, def netip.Addr) (netip.Addr, error) {
	if s == "" {
		return def, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", s, flag, err)
	}
	return a, nil
}

func (o *ContainerOptions) healthcheck() (*container.HealthConfig, error) {
	set := o.HealthCmd != "" || o.HealthInterval != 0 || o.HealthTimeout != 0 ||
		o.HealthStartPeriod != 0 || o.HealthStartInterval != 0 || o.HealthRetries != 0
	if o.NoHealthcheck {
		if set {
			return nil, fmt.Errorf("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	for name, d := range map[string]time.Duration{"--health-interval": o.HealthInterval, "--health-timeout": o.HealthTimeout,
		"--health-start-period": o.HealthStartPeriod, "--health-start-interval": o.HealthStartInterval} {
		if d < 0 {
			return nil, fmt.Errorf("%s cannot be negative", name)
		}
	}
	if o.HealthRetries < 0 {
		return nil, fmt.Errorf("--health-retries cannot be negative")
	}
	h := &container.HealthConfig{Interval: o.HealthInterval, Timeout: o.HealthTimeout,
		StartPeriod: o.HealthStartPeriod, StartInterval: o.HealthStartInterval, Retries: o.HealthRetries}
	if o.HealthCmd != "" {
		h.Test = []string{"CMD-SHELL", o.HealthCmd}
	}
	return h, nil
}

// parsePorts reads -p and --expose values into the exposed set and the
// bindings: [ip:][hostPort:]containerPort[/proto], ports may be ranges.
func parsePorts(publish, expose []string) (network.PortSet, network.PortMap, error) {
	exposed, bindings := network.PortSet{}, network.PortMap{}
	for _, e := range expose {
		spec := strings.TrimPrefix(e, ":")
		pr, err := network.ParsePortRange(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		for p := range portsIn(pr) {
			exposed[p] = struct{}{}
		}
	}
	for _, spec := range publish {
		ip, hostPort, cport, err := splitPortSpec(spec)
		if err != nil {
			return nil, nil, err
		}
		cr, err := network.ParsePortRange(cport)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid containerPort: %s", cport)
		}
		var hostAddr netip.Addr
		if ip != "" {
			if hostAddr, err = netip.ParseAddr(strings.Trim(ip, "[]")); err != nil {
				return nil, nil, fmt.Errorf("invalid IP address: %s", ip)
			}
		}
		var hStart, hEnd uint64
		if hostPort != "" {
			lo, hi, isRange := strings.Cut(hostPort, "-")
			if hStart, err = strconv.ParseUint(lo, 10, 16); err != nil {
				return nil, nil, fmt.Errorf("invalid hostPort: %s", hostPort)
			}
			hEnd = hStart
			if isRange {
				if hEnd, err = strconv.ParseUint(hi, 10, 16); err != nil || hEnd < hStart {
					return nil, nil, fmt.Errorf("invalid hostPort: %s", hostPort)
				}
			}
		}
		n := uint64(cr.End() - cr.Start())
		if hostPort != "" && hEnd != hStart && hEnd-hStart != n && n != 0 {
			return nil, nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", cport, hostPort)
		}
		i := uint64(0)
		for p := range portsIn(cr) {
			exposed[p] = struct{}{}
			hp := ""
			switch {
			case hostPort == "":
			case n == 0 && hEnd != hStart:
				hp = hostPort // one container port, any host port of the range
			default:
				hp = strconv.FormatUint(hStart+i, 10)
			}
			bindings[p] = append(bindings[p], network.PortBinding{HostIP: hostAddr, HostPort: hp})
			i++
		}
	}
	if len(exposed) == 0 {
		exposed = nil
	}
	if len(bindings) == 0 {
		bindings = nil
	}
	return exposed, bindings, nil
}

// splitPortSpec splits [ip:][hostPort:]containerPort[/proto]; an IPv6
// address is written in brackets.
func splitPortSpec(spec string) (ip, hostPort, containerPort string, err error) {
	rest := spec
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return "", "", "", fmt.Errorf("invalid IP address: %s", spec)
		}
		ip, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return "", "", "", fmt.Errorf("invalid port format for --publish: %s", spec)
		}
		return ip, parts[0], parts[1], nil
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 1:
		return "", "", parts[0], nil
	case 2:
		return "", parts[0], parts[1], nil
	case 3:
		return parts[0], parts[1], parts[2], nil
	}
	// an unbracketed IPv6 address: the last two fields are the ports
	n := len(parts)
	return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1], nil
}

// portsIn yields every port of a range.
func portsIn(pr network.PortRange) func(func(network.Port) bool) {
	return func(yield func(network.Port) bool) {
		for n := uint32(pr.Start()); n <= uint32(pr.End()); n++ {
			p, _ := network.PortFrom(uint16(n), pr.Proto())
			if !yield(p) {
				return
			}
		}
	}
}

// parseDevice reads host[:container[:permissions]].
func parseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	d := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 3:
		if !validPerms(parts[2]) {
			return d, fmt.Errorf("invalid device mode: %s", parts[2])
		}
		d.CgroupPermissions = parts[2]
		fallthrough
	case 2:
		if validPerms(parts[1]) && len(parts) == 2 {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
		fallthrough
	case 1:
		d.PathOnHost = parts[0]
	default:
		return d, fmt.Errorf("invalid device specification: %s", s)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	return d, nil
}

func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	return strings.Trim(p, "rwm") == ""
}

func kvMap(list []string, flag string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("invalid %s: %s (expected key=value)", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// parseSecurityOpts reads the profile file of seccomp=PATH into the option,
// as the daemon expects the profile itself.
func parseSecurityOpts(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, o := range list {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if k == "seccomp" && ok && v != "unconfined" && v != "builtin" {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + buf.String()
		}
		out = append(out, o)
	}
	return out, nil
}

// ParsePlatform reads os[/arch[/variant]].
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
