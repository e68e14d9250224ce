package oci

import (
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Input is everything a container's spec is made from.
type Input struct {
	// ID is the container's ID (64 hex digits); its first 12 characters
	// are the default hostname.
	ID string
	// Config is the container's configuration, already merged with its
	// image's: Env, Entrypoint, Cmd, WorkingDir and User are final.
	Config *container.Config
	// HostConfig is the container's host configuration (nil: all defaults).
	HostConfig *container.HostConfig
	// Rootfs is the absolute host path of the mounted root file system.
	Rootfs string
	// Mounts are the mounts the daemon resolved (volumes, binds, tmpfs),
	// in order. They come after the default mounts, and one whose
	// destination equals a default's (/dev/shm, /etc/hosts...) replaces it.
	Mounts []specs.Mount
	// HostsPath, ResolvConfPath and HostnamePath are host files
	// bind-mounted at /etc/hosts, /etc/resolv.conf and /etc/hostname
	// ("" = none): read-write, or read-only with a read-only rootfs.
	HostsPath, ResolvConfPath, HostnamePath string
	// JoinNamespaces are namespaces the container joins instead of making
	// new ones, by type ("network", "pid", "ipc", "uts", "cgroup") to a
	// path such as /proc/<pid>/ns/net or a bind-mounted netns file. The
	// host modes (NetworkMode "host"...) need no entry: they make no
	// namespace of that type at all.
	JoinNamespaces map[specs.LinuxNamespaceType]string
	// InitPath is the host path of the berth-init binary mounted at
	// /sbin/berth-init when HostConfig.Init is true.
	InitPath string
	// CgroupsPath is the spec's linux.cgroupsPath, e.g. "/berth/<id>".
	CgroupsPath string
	// LinkEnv are the variables of legacy links (NAME_PORT...), set after
	// the defaults and before Config.Env, as Docker orders them.
	LinkEnv []string
}

// DefaultCgroupnsMode is the cgroup namespace mode of a container that
// names none, as Docker's default-cgroupns-mode: private on a host with
// cgroup v2 alone, the host's otherwise.
func DefaultCgroupnsMode() container.CgroupnsMode {
	if cgroup2Only() {
		return container.CgroupnsModePrivate
	}
	return container.CgroupnsModeHost
}

// defaultPath is PATH when neither the image nor the container sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Docker's default masked and read-only paths.
func defaultMaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

func defaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// Generate returns the OCI runtime spec of the container in, as Docker
// builds it: Docker's default mounts, capabilities, seccomp profile, masked
// paths and device rules, changed by the container's configuration. It
// reads the user and group databases inside in.Rootfs, the host's /dev for
// --device and --privileged, and probes the host's capabilities, cgroup
// version and security modules; nothing else. Bad input gives an error of
// class errdefs.ErrInvalidArgument worded as Docker words it; a user
// namespace or device request, errdefs.ErrNotImplemented.
func Generate(in Input) (*specs.Spec, error) {
	if in.Config == nil {
		return nil, invalidf("container config is missing")
	}
	if in.ID == "" {
		return nil, invalidf("container ID is missing")
	}
	if !filepath.IsAbs(in.Rootfs) {
		return nil, invalidf("rootfs path %q is not absolute", in.Rootfs)
	}
	hc := in.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if hc.UsernsMode != "" && !hc.UsernsMode.IsHost() {
		return nil, notImplementedf("user namespace mode %q is not supported", hc.UsernsMode)
	}
	if len(hc.DeviceRequests) > 0 {
		return nil, notImplementedf("device requests (--gpus) are not supported")
	}
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	g := &generator{in: in, cfg: in.Config, hc: hc, sec: sec}
	g.s = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: hc.ReadonlyRootfs},
		Process: &specs.Process{},
		Linux:   &specs.Linux{CgroupsPath: in.CgroupsPath},
	}
	for _, step := range []func() error{
		g.namespaces, g.process, g.user, g.capabilities, g.security,
		g.mounts, g.devices, g.resources, g.rlimits, g.sysctls,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if len(hc.Annotations) > 0 {
		g.s.Annotations = maps.Clone(hc.Annotations)
	}
	return g.s, nil
}

// generator holds one Generate call's input and the spec being built.
type generator struct {
	in  Input
	cfg *container.Config
	hc  *container.HostConfig
	sec securityOpts
	s   *specs.Spec
	// useInit is set when the process runs under the init binary.
	useInit bool
}

// namespaces sets the spec's namespaces in Docker's order (mount, network,
// uts, pid, ipc, cgroup): none for a host mode, the path to join when
// given, else a new one. The cgroup namespace is private when asked for or,
// by default, on a cgroup v2-only host.
func (g *generator) namespaces() error {
	hc := g.hc
	if !hc.IpcMode.Valid() {
		return invalidf("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return invalidf("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return invalidf("invalid UTS mode: %v", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return invalidf("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	cgroupPrivate := hc.CgroupnsMode.IsPrivate() || (hc.CgroupnsMode.IsEmpty() && cgroup2Only())
	kinds := []struct {
		typ       specs.LinuxNamespaceType
		mode      string
		host      bool // no namespace of this type
		container bool // the mode names a container whose namespace to join
		skip      bool // no new namespace unless one is joined
	}{
		{typ: specs.MountNamespace},
		{specs.NetworkNamespace, string(hc.NetworkMode), hc.NetworkMode.IsHost(), hc.NetworkMode.IsContainer(), false},
		{specs.UTSNamespace, string(hc.UTSMode), hc.UTSMode.IsHost(), false, false},
		{specs.PIDNamespace, string(hc.PidMode), hc.PidMode.IsHost(), hc.PidMode.IsContainer(), false},
		{specs.IPCNamespace, string(hc.IpcMode), hc.IpcMode.IsHost(), hc.IpcMode.IsContainer(), false},
		{specs.CgroupNamespace, string(hc.CgroupnsMode), hc.CgroupnsMode.IsHost(), false, !cgroupPrivate},
	}
	for t, p := range g.in.JoinNamespaces {
		if !slices.Contains([]specs.LinuxNamespaceType{specs.NetworkNamespace, specs.UTSNamespace, specs.PIDNamespace, specs.IPCNamespace, specs.CgroupNamespace}, t) {
			return invalidf("cannot join a namespace of type %q", t)
		}
		if !filepath.IsAbs(p) {
			return invalidf("%s namespace path %q is not absolute", t, p)
		}
	}
	for _, k := range kinds {
		joinPath := g.in.JoinNamespaces[k.typ]
		switch {
		case k.host && joinPath != "":
			return invalidf("%s mode %q conflicts with joining the %s namespace %s", k.typ, k.mode, k.typ, joinPath)
		case k.host:
			continue
		case joinPath != "":
			g.s.Linux.Namespaces = append(g.s.Linux.Namespaces, specs.LinuxNamespace{Type: k.typ, Path: joinPath})
		case k.container:
			return invalidf("%s mode %q: the namespace to join was not given", k.typ, k.mode)
		case k.skip:
			continue
		default:
			g.s.Linux.Namespaces = append(g.s.Linux.Namespaces, specs.LinuxNamespace{Type: k.typ})
		}
	}
	return nil
}

// process sets the command, environment, working directory, terminal,
// hostname and (with --init) the init wrapper.
func (g *generator) process() error {
	cfg, hc, p := g.cfg, g.hc, g.s.Process
	args := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if len(args) == 0 {
		return invalidf("no command specified")
	}
	if hc.Init != nil && *hc.Init && hc.PidMode.IsPrivate() {
		if g.in.InitPath == "" {
			return invalidf("--init: no init binary is configured")
		}
		args = append([]string{InitPathInContainer, "--"}, args...)
		g.useInit = true
	}
	p.Args = args

	p.Cwd = "/"
	if cfg.WorkingDir != "" {
		if !path.IsAbs(cfg.WorkingDir) {
			return invalidf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
		}
		p.Cwd = path.Clean(cfg.WorkingDir)
	}
	p.Terminal = cfg.Tty
	if cfg.Tty && (hc.ConsoleSize[0] > 0 || hc.ConsoleSize[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return invalidf("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.OomScoreAdj != 0 {
		p.OOMScoreAdj = ptr(hc.OomScoreAdj)
	}
	p.NoNewPrivileges = g.sec.noNewPrivileges

	// The hostname: Config.Hostname, else the host's with the host's
	// network, else the ID's first 12 characters. A container in the
	// host's or a joined UTS namespace sets none.
	hostname := cfg.Hostname
	if hostname == "" && (hc.NetworkMode.IsHost() || hc.UTSMode.IsHost()) {
		hostname = hostHostname()
	}
	if hostname == "" {
		hostname = g.in.ID[:min(12, len(g.in.ID))]
	}
	if !hc.UTSMode.IsHost() && g.in.JoinNamespaces[specs.UTSNamespace] == "" {
		g.s.Hostname = hostname
		g.s.Domainname = cfg.Domainname
	}

	env := []string{"PATH=" + defaultPath, "HOSTNAME=" + hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	p.Env = mergeEnv(mergeEnv(env, g.in.LinkEnv), cfg.Env)
	return nil
}

// mergeEnv returns defaults with overrides applied, Docker's way: KEY=value
// replaces the default KEY in place or is appended, and a bare KEY removes
// the default KEY.
func mergeEnv(defaults, overrides []string) []string {
	env := slices.Clone(defaults)
	index := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, o := range overrides {
		k, _, hasValue := strings.Cut(o, "=")
		i, exists := index[k]
		switch {
		case !hasValue && exists:
			env[i] = ""
		case !hasValue:
		case exists:
			env[i] = o
		default:
			index[k] = len(env)
			env = append(env, o)
		}
	}
	return slices.DeleteFunc(env, func(e string) bool { return e == "" })
}

// user resolves Config.User and GroupAdd inside the rootfs.
func (g *generator) user() error {
	u, err := resolveUser(g.in.Rootfs, g.cfg.User, g.hc.GroupAdd)
	if err != nil {
		return err
	}
	u.Umask = g.hc.Umask
	g.s.Process.User = u
	return nil
}

// capabilities sets Docker's capability sets: for root the bounding,
// effective and permitted sets; for another user only the bounding set (as
// execve would leave them). Inheritable and ambient stay empty.
func (g *generator) capabilities() error {
	caps, err := capabilitySet(g.hc.CapAdd, g.hc.CapDrop, g.hc.Privileged)
	if err != nil {
		return err
	}
	c := &specs.LinuxCapabilities{Bounding: caps}
	if g.s.Process.User.UID == 0 {
		c.Effective, c.Permitted = slices.Clone(caps), slices.Clone(caps)
	}
	g.s.Process.Capabilities = c
	return nil
}

// security sets seccomp, AppArmor, masked and read-only paths.
func (g *generator) security() error {
	hc, s := g.hc, g.s
	switch p := g.sec.seccomp; {
	case hc.Privileged, p == "unconfined":
	case p == "" || p == "builtin":
		s.Linux.Seccomp = DefaultSeccompProfile(s.Process.Capabilities.Bounding)
	default:
		sc, err := ParseSeccompProfile([]byte(p), s.Process.Capabilities.Bounding)
		if err != nil {
			return err
		}
		s.Linux.Seccomp = sc
	}
	if g.sec.apparmor != "" && apparmorEnabled() {
		s.Process.ApparmorProfile = g.sec.apparmor
	}
	for _, l := range g.sec.labels {
		if l != "disable" && selinuxEnabled() {
			return notImplementedf("SELinux label %q: SELinux labels are not supported", l)
		}
	}
	if !hc.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = defaultMaskedPaths(), defaultReadonlyPaths()
	}
	if hc.MaskedPaths != nil {
		s.Linux.MaskedPaths = slices.Clone(hc.MaskedPaths)
	}
	if hc.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = slices.Clone(hc.ReadonlyPaths)
	}
	return nil
}

// mounts sets the default mounts, the init binary, the /etc files and the
// user's mounts (in.Mounts, then --tmpfs).
func (g *generator) mounts() error {
	hc, in := g.hc, g.in
	if hc.ShmSize < 0 {
		return invalidf("SHM size can not be less than 0")
	}
	shm := hc.ShmSize
	if shm == 0 {
		shm = defaultShmSize
	}
	defaults := defaultMounts(shm)
	if g.useInit {
		defaults = append(defaults, specs.Mount{Destination: InitPathInContainer, Type: "bind", Source: in.InitPath, Options: []string{"bind", "ro"}})
	}
	for _, f := range []struct{ src, dst string }{
		{in.ResolvConfPath, "/etc/resolv.conf"}, {in.HostnamePath, "/etc/hostname"}, {in.HostsPath, "/etc/hosts"},
	} {
		if f.src == "" {
			continue
		}
		if !filepath.IsAbs(f.src) {
			return invalidf("%s source %q is not absolute", f.dst, f.src)
		}
		defaults = append(defaults, etcMount(f.src, f.dst, hc.ReadonlyRootfs))
	}

	user := slices.Clone(in.Mounts)
	if hc.IpcMode.IsHost() && !slices.ContainsFunc(user, func(m specs.Mount) bool { return path.Clean(m.Destination) == "/dev/shm" }) {
		// The host's IPC namespace goes with the host's /dev/shm.
		user = append(user, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
	}
	tmpfs, err := tmpfsMounts(hc.Tmpfs)
	if err != nil {
		return err
	}
	user = append(user, tmpfs...)

	rwCgroup := hc.Privileged || (g.sec.writableCgroups != nil && *g.sec.writableCgroups)
	g.s.Mounts, err = assembleMounts(defaults, user, hc.ReadonlyRootfs, hc.IpcMode.IsNone(), hc.Privileged, rwCgroup)
	if err != nil {
		return err
	}
	sortBindsByDepth(g.s.Mounts, len(defaultMounts(shm)))
	return nil
}

// sortBindsByDepth orders the mounts after the first kernel ones (the
// init binary, the /etc files and the user's) parents first, as Docker
// does, so that a volume on /etc does not hide /etc/hosts: a mount lands
// inside the ones mounted before it.
func sortBindsByDepth(mounts []specs.Mount, kernel int) {
	start := 0
	for start < len(mounts) && start < kernel && isKernelMount(mounts[start]) {
		start++
	}
	depth := func(m specs.Mount) int { return strings.Count(path.Clean(m.Destination), "/") }
	slices.SortStableFunc(mounts[start:], func(a, b specs.Mount) int { return depth(a) - depth(b) })
}

// isKernelMount reports whether m is one of the default file systems
// (proc, sysfs, tmpfs, devpts, mqueue, cgroup), not a bind.
func isKernelMount(m specs.Mount) bool { return m.Type != "bind" }

// resources sets the cgroup resources (Resources) with the device rules.
func (g *generator) resources() error {
	r := &g.hc.Resources
	if r.Memory == 0 && r.MemorySwap > 0 {
		return invalidf("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	res, err := Resources(r)
	if err != nil {
		return err
	}
	if g.s.Linux.Resources != nil {
		res.Devices = g.s.Linux.Resources.Devices
	}
	g.s.Linux.Resources = res
	return nil
}
