//go:build linux

package oci

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// writeFiles writes files (path relative to dir -> content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testRootfs makes a rootfs with an /etc/passwd and /etc/group.
func testRootfs(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n# a comment\n\nbroken line\napp:x:1000:1001:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nstaff:x:50:app\napp:x:1001:\nwheel:x:10:other,app\naudio:x:29:other\n",
	})
	return dir
}

// runInput is `docker run busybox sh` as the daemon hands it over: the
// network mode defaults to "bridge", the /etc files exist.
func runInput(t testing.TB) Input {
	t.Helper()
	etc := t.TempDir()
	writeFiles(t, etc, map[string]string{"hosts": "127.0.0.1 localhost\n", "resolv.conf": "nameserver 10.0.0.1\n", "hostname": "0123456789ab\n"})
	return Input{
		ID:             testID,
		Config:         &container.Config{Cmd: []string{"sh"}, Image: "busybox", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		HostConfig:     &container.HostConfig{NetworkMode: "bridge"},
		Rootfs:         testRootfs(t),
		HostsPath:      filepath.Join(etc, "hosts"),
		ResolvConfPath: filepath.Join(etc, "resolv.conf"),
		HostnamePath:   filepath.Join(etc, "hostname"),
		JoinNamespaces: map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/berth/netns/" + testID[:12]},
		CgroupsPath:    "/berth/" + testID,
	}
}

func generate(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	s, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func mountAt(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func destinations(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func namespaces(s *specs.Spec) []specs.LinuxNamespace { return s.Linux.Namespaces }

// privateCgroupns is what the default cgroup namespace mode gives here.
func defaultNamespaces(netPath string) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: netPath},
		{Type: specs.UTSNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
	}
	if cgroup2Only() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns
}

func TestGeneratePlainRun(t *testing.T) {
	in := runInput(t)
	s := generate(t, in)

	checkEqual(t, "ociVersion", s.Version, specs.Version)
	checkEqual(t, "root", s.Root, &specs.Root{Path: in.Rootfs})
	checkEqual(t, "hostname", s.Hostname, "0123456789ab")
	checkEqual(t, "domainname", s.Domainname, "")
	checkEqual(t, "annotations", s.Annotations, map[string]string(nil))
	checkEqual(t, "hooks", s.Hooks, (*specs.Hooks)(nil))

	p := s.Process
	checkEqual(t, "process.args", p.Args, []string{"sh"})
	checkEqual(t, "process.env", p.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0123456789ab"})
	checkEqual(t, "process.cwd", p.Cwd, "/")
	checkEqual(t, "process.terminal", p.Terminal, false)
	checkEqual(t, "process.consoleSize", p.ConsoleSize, (*specs.Box)(nil))
	checkEqual(t, "process.user", p.User, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}})
	checkEqual(t, "process.capabilities", p.Capabilities, &specs.LinuxCapabilities{
		Bounding: DefaultCapabilities(), Effective: DefaultCapabilities(), Permitted: DefaultCapabilities(),
	})
	checkEqual(t, "process.rlimits", p.Rlimits, []specs.POSIXRlimit(nil))
	checkEqual(t, "process.noNewPrivileges", p.NoNewPrivileges, false)
	checkEqual(t, "process.oomScoreAdj", p.OOMScoreAdj, (*int)(nil))
	checkEqual(t, "process.apparmorProfile", p.ApparmorProfile, "")

	checkEqual(t, "mounts", s.Mounts, []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: in.ResolvConfPath, Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hostname", Type: "bind", Source: in.HostnamePath, Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hosts", Type: "bind", Source: in.HostsPath, Options: []string{"rbind", "rprivate"}},
	})

	l := s.Linux
	checkEqual(t, "linux.namespaces", l.Namespaces, defaultNamespaces(in.JoinNamespaces[specs.NetworkNamespace]))
	checkEqual(t, "linux.cgroupsPath", l.CgroupsPath, "/berth/"+testID)
	checkEqual(t, "linux.maskedPaths", l.MaskedPaths, []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	})
	checkEqual(t, "linux.readonlyPaths", l.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
	checkEqual(t, "linux.sysctl", l.Sysctl, map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"})
	checkEqual(t, "linux.devices", l.Devices, []specs.LinuxDevice(nil))
	checkEqual(t, "linux.resources", l.Resources, &specs.LinuxResources{Devices: defaultDeviceRules()})
	checkEqual(t, "linux.seccomp", l.Seccomp, DefaultSeccompProfile(DefaultCapabilities()))
	checkEqual(t, "linux.uidMappings", l.UIDMappings, []specs.LinuxIDMapping(nil))

	// The device rules: deny all first, then the standard devices.
	rules := l.Resources.Devices
	if rules[0].Allow || rules[0].Type != "" || rules[0].Access != "rwm" {
		t.Errorf("first device rule %+v, want deny all", rules[0])
	}
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {10, 200}} {
		if !slices.ContainsFunc(rules, func(r specs.LinuxDeviceCgroup) bool {
			return r.Allow && r.Type == "c" && r.Major != nil && *r.Major == d[0] && r.Minor != nil && *r.Minor == d[1] && r.Access == "rwm"
		}) {
			t.Errorf("no rule allows c %d:%d", d[0], d[1])
		}
	}
}

func TestGenerateProcess(t *testing.T) {
	in := runInput(t)
	in.Config.Entrypoint = []string{"/entry", "-x"}
	in.Config.Cmd = []string{"run", "it"}
	in.Config.Tty = true
	in.Config.WorkingDir = "/srv/app/"
	in.Config.Hostname = "web"
	in.Config.Domainname = "example.org"
	in.Config.Env = []string{"HOSTNAME=override", "FOO=1", "TERM", "PATH=/bin", "FOO=2", "UNSET_NOT_THERE"}
	in.HostConfig.ConsoleSize = [2]uint{40, 120}
	in.HostConfig.OomScoreAdj = 500
	in.HostConfig.Annotations = map[string]string{"a": "b"}
	in.HostConfig.SecurityOpt = []string{"no-new-privileges"}
	in.HostConfig.Umask = ptr(uint32(0o027))
	s := generate(t, in)

	p := s.Process
	checkEqual(t, "args", p.Args, []string{"/entry", "-x", "run", "it"})
	checkEqual(t, "env", p.Env, []string{"PATH=/bin", "HOSTNAME=override", "FOO=2"})
	checkEqual(t, "cwd", p.Cwd, "/srv/app")
	checkEqual(t, "terminal", p.Terminal, true)
	checkEqual(t, "consoleSize", p.ConsoleSize, &specs.Box{Height: 40, Width: 120})
	checkEqual(t, "oomScoreAdj", p.OOMScoreAdj, ptr(500))
	checkEqual(t, "noNewPrivileges", p.NoNewPrivileges, true)
	checkEqual(t, "umask", p.User.Umask, ptr(uint32(0o027)))
	checkEqual(t, "hostname", s.Hostname, "web")
	checkEqual(t, "domainname", s.Domainname, "example.org")
	checkEqual(t, "annotations", s.Annotations, map[string]string{"a": "b"})

	// TERM=xterm comes with a TTY unless the config overrides it.
	in.Config.Env = nil
	checkEqual(t, "env with tty", generate(t, in).Process.Env, []string{"PATH=" + defaultPath, "HOSTNAME=web", "TERM=xterm"})
}

func TestGeneratePrivileged(t *testing.T) {
	in := runInput(t)
	in.HostConfig.Privileged = true
	in.HostConfig.CapDrop = []string{"CHOWN"} // ignored, as Docker does
	s := generate(t, in)

	all := allCapabilities()
	if !slices.Contains(all, "CAP_SYS_ADMIN") || len(all) < 38 {
		t.Fatalf("all capabilities = %v", all)
	}
	checkEqual(t, "capabilities", s.Process.Capabilities, &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all})
	checkEqual(t, "seccomp", s.Linux.Seccomp, (*specs.LinuxSeccomp)(nil))
	checkEqual(t, "maskedPaths", s.Linux.MaskedPaths, []string(nil))
	checkEqual(t, "readonlyPaths", s.Linux.ReadonlyPaths, []string(nil))
	checkEqual(t, "/sys", mountAt(s, "/sys").Options, []string{"nosuid", "noexec", "nodev"})
	checkEqual(t, "/sys/fs/cgroup", mountAt(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
	checkEqual(t, "device rules", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})

	byPath := map[string]specs.LinuxDevice{}
	for _, d := range s.Linux.Devices {
		byPath[d.Path] = d
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" || strings.HasPrefix(d.Path, "/dev/shm/") || d.Type == "p" {
			t.Errorf("host device %+v should be skipped", d)
		}
	}
	null, ok := byPath["/dev/null"]
	if !ok || null.Type != "c" || null.Major != 1 || null.Minor != 3 || null.FileMode == nil || *null.FileMode != 0o666 || *null.UID != 0 {
		t.Errorf("/dev/null = %+v, want c 1:3 0666 root", null)
	}
	entries, err := os.ReadDir("/dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || fi.Mode()&os.ModeDevice == 0 || e.Name() == "console" {
			continue
		}
		if _, ok := byPath["/dev/"+e.Name()]; !ok {
			t.Errorf("host device /dev/%s is missing", e.Name())
		}
	}

	// Explicit masked paths still apply.
	in.HostConfig.MaskedPaths = []string{"/proc/kcore"}
	checkEqual(t, "explicit masked paths", generate(t, in).Linux.MaskedPaths, []string{"/proc/kcore"})
}

func TestGenerateCapabilities(t *testing.T) {
	defaults := DefaultCapabilities()
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(defaults), func(c string) bool { return slices.Contains(drop, c) })
	}
	allBut := func(drop ...string) []string {
		return slices.DeleteFunc(allCapabilities(), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"add", []string{"SYS_ADMIN", "cap_net_admin"}, nil, append(slices.Clone(defaults), "CAP_SYS_ADMIN", "CAP_NET_ADMIN")},
		{"add a default again", []string{"chown"}, nil, defaults},
		{"drop", nil, []string{"chown", "CAP_KILL", "Net_Raw"}, without("CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW")},
		{"add and drop", []string{"SYS_TIME"}, []string{"MKNOD"}, append(without("CAP_MKNOD"), "CAP_SYS_TIME")},
		{"add all", []string{"ALL"}, nil, allCapabilities()},
		{"add all drop some", []string{"all"}, []string{"NET_RAW", "SYS_ADMIN"}, allBut("CAP_NET_RAW", "CAP_SYS_ADMIN")},
		{"drop all", nil, []string{"ALL"}, []string{}},
		{"drop all add one", []string{"NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := runInput(t)
			in.HostConfig.CapAdd, in.HostConfig.CapDrop = tc.add, tc.drop
			s := generate(t, in)
			checkEqual(t, "capabilities", s.Process.Capabilities, &specs.LinuxCapabilities{Bounding: tc.want, Effective: tc.want, Permitted: tc.want})
			// The seccomp profile follows the capabilities.
			checkEqual(t, "seccomp", s.Linux.Seccomp, DefaultSeccompProfile(tc.want))
			if admin := slices.Contains(tc.want, "CAP_SYS_ADMIN"); allowedOutright(s.Linux.Seccomp, "mount") != admin {
				t.Errorf("mount allowed = %v with CAP_SYS_ADMIN %v", !admin, admin)
			}
		})
	}
}

func TestGenerateReadonlyRootfsAndTmpfs(t *testing.T) {
	in := runInput(t)
	in.HostConfig.ReadonlyRootfs = true
	in.HostConfig.Tmpfs = map[string]string{"/tmp": "size=64m,exec", "/run": "", "/data/": "mode=1777,ro,uid=1000"}
	in.Mounts = []specs.Mount{{Destination: "/vol", Type: "bind", Source: "/var/lib/berth/volumes/v/_data", Options: []string{"rbind", "rprivate"}}}
	s := generate(t, in)

	checkEqual(t, "root", s.Root, &specs.Root{Path: in.Rootfs, Readonly: true})
	want := map[string][]string{
		"/proc":            {"nosuid", "noexec", "nodev"},
		"/dev":             {"nosuid", "strictatime", "mode=755", "size=65536k"},
		"/dev/pts":         {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
		"/sys":             {"nosuid", "noexec", "nodev", "ro"},
		"/sys/fs/cgroup":   {"ro", "nosuid", "noexec", "nodev"},
		"/dev/mqueue":      {"nosuid", "noexec", "nodev"},
		"/dev/shm":         {"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"},
		"/etc/resolv.conf": {"rbind", "ro", "rprivate"},
		"/etc/hostname":    {"rbind", "ro", "rprivate"},
		"/etc/hosts":       {"rbind", "ro", "rprivate"},
		"/vol":             {"rbind", "rprivate"},
		"/data":            {"noexec", "nosuid", "nodev", "rprivate", "mode=1777", "ro", "uid=1000"},
		"/run":             {"noexec", "nosuid", "nodev", "rprivate"},
		"/tmp":             {"nosuid", "nodev", "rprivate", "size=64m", "exec"},
	}
	// Binds go parents first (the /etc files are one level deeper).
	checkEqual(t, "destinations", destinations(s), []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
		"/vol", "/data", "/run", "/tmp", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"})
	for dest, opts := range want {
		if m := mountAt(s, dest); m == nil {
			t.Errorf("no mount at %s", dest)
		} else {
			checkEqual(t, dest+" options", m.Options, opts)
		}
	}
	for _, dest := range []string{"/data", "/run", "/tmp"} {
		if m := mountAt(s, dest); m != nil && (m.Type != "tmpfs" || m.Source != "tmpfs") {
			t.Errorf("%s = %+v, want a tmpfs", dest, m)
		}
	}
}

func TestGenerateMountReplacement(t *testing.T) {
	in := runInput(t)
	in.HostConfig.ShmSize = 1 << 20
	in.HostConfig.IpcMode = "shareable"
	in.Mounts = []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: "/custom/hosts", Options: []string{"rbind", "ro"}},
	}
	s := generate(t, in)
	checkEqual(t, "/dev/shm", mountAt(s, "/dev/shm").Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=1048576"})
	checkEqual(t, "/etc/hosts", *mountAt(s, "/etc/hosts"), in.Mounts[0])
	checkEqual(t, "destinations", destinations(s), []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
		"/etc/resolv.conf", "/etc/hostname", "/etc/hosts"})

	// A user /dev/shm replaces the default; a user /dev drops every
	// default under it.
	in.Mounts = []specs.Mount{{Destination: "/dev/shm/", Type: "bind", Source: "/run/berth/shm/x", Options: []string{"rbind"}}}
	s = generate(t, in)
	checkEqual(t, "destinations", destinations(s), []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
		"/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/shm/"})
	in.Mounts = []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}}
	s = generate(t, in)
	checkEqual(t, "destinations", destinations(s), []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"})

	// A volume on /etc goes first, so the /etc files land in it rather
	// than under it (docker run -v v:/etc still sees its own hosts).
	in.Mounts = []specs.Mount{{Destination: "/etc", Type: "bind", Source: "/var/lib/berth/volumes/v/_data", Options: []string{"rbind"}}}
	s = generate(t, in)
	checkEqual(t, "destinations", destinations(s), []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
		"/etc", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"})

	// --ipc none: no /dev/shm at all; --ipc host: the host's.
	in.Mounts = nil
	in.HostConfig.IpcMode = "none"
	if m := mountAt(generate(t, in), "/dev/shm"); m != nil {
		t.Errorf("--ipc none mounts %+v", m)
	}
	in.HostConfig.IpcMode = "host"
	s = generate(t, in)
	checkEqual(t, "/dev/shm with --ipc host", *mountAt(s, "/dev/shm"), specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})

	// No /etc files given: none mounted.
	in.HostsPath, in.ResolvConfPath, in.HostnamePath = "", "", ""
	for _, d := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
		if mountAt(generate(t, in), d) != nil {
			t.Errorf("%s mounted without a source", d)
		}
	}
}

func TestGenerateInit(t *testing.T) {
	in := runInput(t)
	in.HostConfig.Init = ptr(true)
	in.InitPath = "/usr/libexec/berth/berth-init"
	s := generate(t, in)
	checkEqual(t, "args", s.Process.Args, []string{"/sbin/berth-init", "--", "sh"})
	checkEqual(t, "init mount", *mountAt(s, "/sbin/berth-init"), specs.Mount{Destination: "/sbin/berth-init", Type: "bind", Source: in.InitPath, Options: []string{"bind", "ro"}})

	// Not in the host's pid namespace (the init would not be pid 1).
	in.HostConfig.PidMode = "host"
	s = generate(t, in)
	checkEqual(t, "args with --pid host", s.Process.Args, []string{"sh"})
	if m := mountAt(s, "/sbin/berth-init"); m != nil {
		t.Errorf("init mounted with --pid host: %+v", m)
	}

	in.HostConfig.PidMode = ""
	in.HostConfig.Init = ptr(false)
	checkEqual(t, "args with --init=false", generate(t, in).Process.Args, []string{"sh"})
}

func TestGenerateHostNamespaces(t *testing.T) {
	in := runInput(t)
	in.JoinNamespaces = nil
	in.HostConfig.NetworkMode = "host"
	in.HostConfig.PidMode = "host"
	in.HostConfig.IpcMode = "host"
	in.HostConfig.UTSMode = "host"
	in.HostConfig.CgroupnsMode = "host"
	s := generate(t, in)
	checkEqual(t, "namespaces", namespaces(s), []specs.LinuxNamespace{{Type: specs.MountNamespace}})
	checkEqual(t, "hostname", s.Hostname, "")
	checkEqual(t, "sysctl", s.Linux.Sysctl, map[string]string(nil))
	if host, _ := os.Hostname(); !slices.Contains(s.Process.Env, "HOSTNAME="+host) {
		t.Errorf("env %q, want HOSTNAME=%s (the host's)", s.Process.Env, host)
	}

	// The host's network alone keeps a UTS namespace named after the host.
	in = runInput(t)
	in.JoinNamespaces = nil
	in.HostConfig.NetworkMode = "host"
	in.HostConfig.CgroupnsMode = "private"
	s = generate(t, in)
	host, _ := os.Hostname()
	checkEqual(t, "hostname", s.Hostname, host)
	checkEqual(t, "namespaces", namespaces(s), []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.CgroupNamespace},
	})
}

func TestGenerateJoinedNamespaces(t *testing.T) {
	in := runInput(t)
	in.HostConfig.NetworkMode = "container:db"
	in.HostConfig.IpcMode = "container:db"
	in.HostConfig.PidMode = "container:db"
	in.HostConfig.CgroupnsMode = "host"
	in.JoinNamespaces = map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: "/proc/42/ns/net", specs.IPCNamespace: "/proc/42/ns/ipc", specs.PIDNamespace: "/proc/42/ns/pid",
	}
	in.Mounts = []specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: "/var/lib/berth/containers/db/shm", Options: []string{"rbind", "rprivate"}}}
	s := generate(t, in)
	checkEqual(t, "namespaces", namespaces(s), []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/42/ns/net"}, {Type: specs.UTSNamespace},
		{Type: specs.PIDNamespace, Path: "/proc/42/ns/pid"}, {Type: specs.IPCNamespace, Path: "/proc/42/ns/ipc"},
	})
	// Another container's network: Docker's network sysctls are its.
	checkEqual(t, "sysctl", s.Linux.Sysctl, map[string]string(nil))

	// A joined UTS namespace keeps its hostname.
	in.JoinNamespaces[specs.UTSNamespace] = "/proc/42/ns/uts"
	s = generate(t, in)
	checkEqual(t, "uts namespace", s.Linux.Namespaces[2], specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/proc/42/ns/uts"})
	checkEqual(t, "hostname in a joined UTS namespace", s.Hostname, "")

	// A bridge network whose namespace the daemon made ahead.
	in = runInput(t)
	in.HostConfig.CgroupnsMode = "private"
	s = generate(t, in)
	checkEqual(t, "namespaces", namespaces(s), []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/run/berth/netns/0123456789ab"}, {Type: specs.UTSNamespace},
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.CgroupNamespace},
	})
}

func TestGenerateUser(t *testing.T) {
	for _, tc := range []struct {
		user     string
		groupAdd []string
		want     specs.User
	}{
		// The primary group is always a supplementary group too, as
		// Docker sets it.
		{"", nil, specs.User{AdditionalGids: []uint32{0}}},
		{"root", nil, specs.User{AdditionalGids: []uint32{0}}},
		{"0", nil, specs.User{AdditionalGids: []uint32{0}}},
		{"app", nil, specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{1001, 50, 10}}},
		{"1000", nil, specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{1001, 50, 10}}},
		{"app:staff", nil, specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}}},
		{"app:4321", nil, specs.User{UID: 1000, GID: 4321, AdditionalGids: []uint32{4321}}},
		{"1000:wheel", nil, specs.User{UID: 1000, GID: 10, AdditionalGids: []uint32{10}}},
		{"1234", nil, specs.User{UID: 1234, GID: 0, AdditionalGids: []uint32{0}}},
		{"1234:5678", nil, specs.User{UID: 1234, GID: 5678, AdditionalGids: []uint32{5678}}},
		{"app", []string{"audio", "777", "staff", "29"}, specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{1001, 50, 10, 29, 777}}},
		{"", []string{"10"}, specs.User{AdditionalGids: []uint32{0, 10}}},
	} {
		in := runInput(t)
		in.Config.User, in.HostConfig.GroupAdd = tc.user, tc.groupAdd
		s := generate(t, in)
		checkEqual(t, "user "+tc.user, s.Process.User, tc.want)
		// Docker leaves a non-root user only the bounding set.
		wantCaps := &specs.LinuxCapabilities{Bounding: DefaultCapabilities(), Effective: DefaultCapabilities(), Permitted: DefaultCapabilities()}
		if tc.want.UID != 0 {
			wantCaps = &specs.LinuxCapabilities{Bounding: DefaultCapabilities()}
		}
		checkEqual(t, "capabilities of user "+tc.user, s.Process.Capabilities, wantCaps)
	}
}

func TestGenerateUserErrors(t *testing.T) {
	for _, tc := range []struct {
		user     string
		groupAdd []string
		want     string
	}{
		{"nobody", nil, "unable to find user nobody: no matching entries in passwd file"},
		{"app:nogroup", nil, "unable to find group nogroup: no matching entries in group file"},
		{"app", []string{"video"}, "unable to find group video: no matching entries in group file"},
		{"2147483648", nil, "uids and gids must be in range 0-2147483647"},
		{"app:-1", nil, "uids and gids must be in range 0-2147483647"},
	} {
		in := runInput(t)
		in.Config.User, in.HostConfig.GroupAdd = tc.user, tc.groupAdd
		_, err := Generate(in)
		if err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("user %q group-add %q: error %v, want invalid argument %q", tc.user, tc.groupAdd, err, tc.want)
		}
	}
}

// TestGenerateUserStaysInRootfs checks that /etc/passwd and /etc/group are
// resolved inside the rootfs: a symlink to an absolute or a ../ path out of
// it must not read the host's file.
func TestGenerateUserStaysInRootfs(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{
		"shadow": "evil:x:4242:4242::/:/bin/sh\n",
		"group":  "evilgroup:x:4343:\n",
	})
	for _, target := range []string{
		filepath.Join(outside, "shadow"),                 // absolute, out of the rootfs
		"../../../../../../../../" + outside + "/shadow", // climbing out
		"/etc/../../../../" + strings.TrimPrefix(outside, "/") + "/shadow",
	} {
		rootfs := t.TempDir()
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, "group"), filepath.Join(rootfs, "etc/group")); err != nil {
			t.Fatal(err)
		}
		in := runInput(t)
		in.Rootfs = rootfs
		in.Config.User = "evil"
		_, err := Generate(in)
		if err == nil || err.Error() != "unable to find user evil: no matching entries in passwd file" {
			t.Errorf("passwd -> %s: user evil resolved through the host's file (err %v)", target, err)
		}
		in.Config.User = "1000:evilgroup"
		if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), "unable to find group evilgroup") {
			t.Errorf("group -> host: group evilgroup resolved through the host's file (err %v)", err)
		}
		// Numeric ids need no file.
		in.Config.User = "4242:4343"
		checkEqual(t, "numeric user", generate(t, in).Process.User, specs.User{UID: 4242, GID: 4343, AdditionalGids: []uint32{4343}})
	}

	// A symlink that stays inside the rootfs is followed there.
	rootfs := t.TempDir()
	writeFiles(t, rootfs, map[string]string{"real/passwd": "evil:x:7:8::/:/bin/sh\n"})
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/real/passwd", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	in := runInput(t)
	in.Rootfs = rootfs
	in.Config.User = "evil"
	checkEqual(t, "user through an in-root symlink", generate(t, in).Process.User, specs.User{UID: 7, GID: 8, AdditionalGids: []uint32{8}})

	// A FIFO is refused without blocking; so is a directory.
	for _, make := range []func(string) error{
		func(p string) error { return mkfifo(p) },
		func(p string) error { return os.Mkdir(p, 0o755) },
	} {
		rootfs := t.TempDir()
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := make(filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		in.Rootfs = rootfs
		in.Config.User = "app"
		_, err := Generate(in)
		if err == nil || !strings.Contains(err.Error(), "read /etc/passwd of the container") || !errdefs.IsInvalidArgument(err) {
			t.Errorf("error %v, want one about reading /etc/passwd", err)
		}
	}
}

// BenchmarkGenerate measures the spec of `docker run busybox sh` (default
// seccomp profile built for the capabilities, passwd and group read in the
// rootfs).
func BenchmarkGenerate(b *testing.B) {
	in := runInput(b)
	in.Config.User = "app"
	for b.Loop() {
		if _, err := Generate(in); err != nil {
			b.Fatal(err)
		}
	}
}
