//go:build linux

package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func mkfifo(p string) error { return unix.Mkfifo(p, 0o644) }

func mknod(t *testing.T, p string, major, minor uint32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(p, unix.S_IFCHR|0o640, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatalf("mknod %s: %v", p, err)
	}
	if err := os.Chown(p, 0, 5); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateDevices(t *testing.T) {
	dir := t.TempDir()
	mknod(t, filepath.Join(dir, "zero"), 1, 5)
	mknod(t, filepath.Join(dir, "tree/a"), 1, 7)
	mknod(t, filepath.Join(dir, "tree/sub/b"), 1, 8)
	writeFiles(t, dir, map[string]string{"tree/not-a-device": "x"})
	if err := os.Symlink(filepath.Join(dir, "zero"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	in := runInput(t)
	in.HostConfig.Devices = []container.DeviceMapping{
		{PathOnHost: filepath.Join(dir, "zero"), PathInContainer: "/dev/myzero", CgroupPermissions: "rw"},
		{PathOnHost: filepath.Join(dir, "link")},
		{PathOnHost: filepath.Join(dir, "tree"), PathInContainer: "/dev/tree", CgroupPermissions: "r"},
	}
	in.HostConfig.DeviceCgroupRules = []string{"c 4:* rwm", "b *:* m", "a 7:3 r"}
	s := generate(t, in)

	mode, uid, gid := os.FileMode(0o640), uint32(0), uint32(5)
	dev := func(p string, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: p, Type: "c", Major: 1, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
	}
	checkEqual(t, "devices", s.Linux.Devices, []specs.LinuxDevice{
		dev("/dev/myzero", 5), dev(filepath.Join(dir, "link"), 5), dev("/dev/tree/a", 7), dev("/dev/tree/sub/b", 8),
	})
	allow := func(typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access}
	}
	one := ptr(int64(1))
	checkEqual(t, "device rules", s.Linux.Resources.Devices, append(defaultDeviceRules(),
		allow("c", one, ptr(int64(5)), "rw"), allow("c", one, ptr(int64(5)), "rwm"),
		allow("c", one, ptr(int64(7)), "r"), allow("c", one, ptr(int64(8)), "r"),
		allow("c", ptr(int64(4)), nil, "rwm"), allow("b", nil, nil, "m"), allow("a", ptr(int64(7)), ptr(int64(3)), "r"),
	))

	// Privileged: every host device already; a device mapped elsewhere is
	// added, cgroup rules are moot.
	in.HostConfig.Privileged = true
	in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/null"}, {PathOnHost: filepath.Join(dir, "zero"), PathInContainer: "/dev/myzero"}}
	s = generate(t, in)
	n := 0
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/null" {
			n++
		}
		if d.Path == "/dev/myzero" && d.Minor != 5 {
			t.Errorf("/dev/myzero = %+v", d)
		}
	}
	if n != 1 || s.Linux.Devices[len(s.Linux.Devices)-1].Path != "/dev/myzero" {
		t.Errorf("privileged devices: /dev/null %d times, last %+v", n, s.Linux.Devices[len(s.Linux.Devices)-1])
	}
	checkEqual(t, "privileged device rules", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})
}

func TestGenerateRlimitsAndSysctls(t *testing.T) {
	in := runInput(t)
	in.HostConfig.Ulimits = []*container.Ulimit{
		{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "CORE", Soft: -1, Hard: -1}, {Name: "nproc", Soft: 10, Hard: 20}, {Name: "nofile", Soft: 2048, Hard: 2048},
	}
	in.HostConfig.Sysctls = map[string]string{
		"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 0", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "kernel.domainname": "corp",
	}
	s := generate(t, in)
	checkEqual(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 2048}, {Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}, {Type: "RLIMIT_NPROC", Soft: 10, Hard: 20},
	})
	checkEqual(t, "sysctl", s.Linux.Sysctl, map[string]string{
		"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 0", "net.ipv4.ip_unprivileged_port_start": "0",
		"kernel.shmmax": "1000", "fs.mqueue.msg_max": "20",
	})
	checkEqual(t, "domainname", s.Domainname, "corp")
}

func TestGenerateSecurityOpts(t *testing.T) {
	in := runInput(t)
	for _, tc := range []struct {
		opts    []string
		nnp     bool
		seccomp *specs.LinuxSeccomp
	}{
		{[]string{"no-new-privileges=true"}, true, DefaultSeccompProfile(DefaultCapabilities())},
		{[]string{"no-new-privileges:true", "no-new-privileges=false"}, false, DefaultSeccompProfile(DefaultCapabilities())},
		{[]string{"seccomp=unconfined"}, false, nil},
		{[]string{"seccomp:unconfined"}, false, nil},
		{[]string{"seccomp=builtin"}, false, DefaultSeccompProfile(DefaultCapabilities())},
		{[]string{"apparmor=unconfined", "label=disable", "label=type:svirt_t", "disable"}, false, DefaultSeccompProfile(DefaultCapabilities())},
		{[]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}`}, false,
			&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}},
	} {
		in.HostConfig.SecurityOpt = tc.opts
		s := generate(t, in)
		checkEqual(t, strings.Join(tc.opts, " ")+": noNewPrivileges", s.Process.NoNewPrivileges, tc.nnp)
		checkEqual(t, strings.Join(tc.opts, " ")+": seccomp", s.Linux.Seccomp, tc.seccomp)
		if !apparmorEnabled() && s.Process.ApparmorProfile != "" {
			t.Errorf("apparmor profile %q set on a host without AppArmor", s.Process.ApparmorProfile)
		}
	}
	// A custom profile is not applied to a privileged container.
	in.HostConfig.Privileged = true
	if s := generate(t, in); s.Linux.Seccomp != nil {
		t.Errorf("privileged container has seccomp %+v", s.Linux.Seccomp)
	}
	// writable-cgroups.
	in.HostConfig.Privileged = false
	in.HostConfig.SecurityOpt = []string{"writable-cgroups=true"}
	checkEqual(t, "writable cgroups", mountAt(generate(t, in), "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
}

func TestGenerateBadInput(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"regular": "x"})
	for _, tc := range []struct {
		name   string
		change func(*Input)
		want   string
	}{
		{"unknown cap", func(in *Input) { in.HostConfig.CapAdd = []string{"FOO"} }, `unknown capability: "CAP_FOO"`},
		{"unknown cap dropped", func(in *Input) { in.HostConfig.CapDrop = []string{"cap_bar"} }, `unknown capability: "CAP_BAR"`},
		{"security opt without value", func(in *Input) { in.HostConfig.SecurityOpt = []string{"foo"} }, `invalid --security-opt 1: "foo"`},
		{"unknown security opt", func(in *Input) { in.HostConfig.SecurityOpt = []string{"foo=bar"} }, `invalid --security-opt 2: "foo=bar"`},
		{"bad no-new-privileges", func(in *Input) { in.HostConfig.SecurityOpt = []string{"no-new-privileges=maybe"} }, `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{"bad seccomp profile", func(in *Input) { in.HostConfig.SecurityOpt = []string{"seccomp=/etc/profile.json"} },
			"decoding seccomp profile failed: invalid character '/' looking for beginning of value"},
		{"unknown ulimit", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "foo", Soft: 1, Hard: 1}} }, "invalid ulimit type: foo"},
		{"ulimit soft above hard", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}} },
			"ulimit soft limit must be less than or equal to hard limit: 10 > 5"},
		{"missing device", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/nonexistent", PathInContainer: "/dev/x", CgroupPermissions: "rwm"}}
		}, `error gathering device information while adding custom device "/dev/nonexistent": no such file or directory`},
		{"not a device", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: filepath.Join(dir, "regular")}}
		}, `error gathering device information while adding custom device "` + filepath.Join(dir, "regular") + `": not a device node`},
		{"bad device mode", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/null", CgroupPermissions: "rwx"}}
		}, `invalid device mode "rwx" for /dev/null`},
		{"relative device path in container", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "dev/null"}}
		}, "dev/null is not an absolute path"},
		{"bad device cgroup rule", func(in *Input) { in.HostConfig.DeviceCgroupRules = []string{"c 1:3 rwx"} }, "invalid device cgroup format 'c 1:3 rwx'"},
		{"repeated access", func(in *Input) { in.HostConfig.DeviceCgroupRules = []string{"c 1:3 rr"} }, "invalid device cgroup format 'c 1:3 rr'"},
		{"memory too small", func(in *Input) { in.HostConfig.Memory = 1 << 20 }, "Minimum memory limit allowed is 6MB"},
		{"swap without memory", func(in *Input) { in.HostConfig.MemorySwap = 1 << 30 }, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{"nano cpus and period", func(in *Input) { in.HostConfig.NanoCPUs, in.HostConfig.CPUPeriod = 1e9, 50000 }, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{"no command", func(in *Input) { in.Config.Cmd = nil }, "no command specified"},
		{"relative working dir", func(in *Input) { in.Config.WorkingDir = "app" }, "the working directory 'app' is invalid, it needs to be an absolute path"},
		{"net sysctl with host network", func(in *Input) {
			in.HostConfig.NetworkMode, in.JoinNamespaces = "host", nil
			in.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `sysctl "net.ipv4.ip_forward" not allowed in host network namespace`},
		{"ipc sysctl with host ipc", func(in *Input) {
			in.HostConfig.IpcMode = "host"
			in.HostConfig.Sysctls = map[string]string{"kernel.msgmax": "1"}
		}, `sysctl "kernel.msgmax" not allowed in host ipc namespace`},
		{"host sysctl", func(in *Input) { in.HostConfig.Sysctls = map[string]string{"vm.swappiness": "1"} }, `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{"hostname sysctl", func(in *Input) { in.HostConfig.Sysctls = map[string]string{"kernel.hostname": "x"} },
			`sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field`},
		{"path in sysctl", func(in *Input) { in.HostConfig.Sysctls = map[string]string{"net/../../x": "1"} }, `invalid sysctl "net/../../x"`},
		{"bad tmpfs option", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"/run": "size=1m,bogus"} }, `invalid tmpfs mount /run: invalid tmpfs option "bogus"`},
		{"relative tmpfs", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"run": ""} }, `invalid tmpfs mount "run": mount path must be absolute`},
		{"duplicate mount", func(in *Input) {
			in.HostConfig.Tmpfs = map[string]string{"/data": ""}
			in.Mounts = []specs.Mount{{Destination: "/data/", Type: "bind", Source: "/x"}}
		}, "Duplicate mount point: /data"},
		{"negative shm size", func(in *Input) { in.HostConfig.ShmSize = -1 }, "SHM size can not be less than 0"},
		{"bad ipc mode", func(in *Input) { in.HostConfig.IpcMode = "weird" }, "invalid IPC mode: weird"},
		{"bad pid mode", func(in *Input) { in.HostConfig.PidMode = "container:" }, "invalid PID mode: container:"},
		{"bad cgroupns mode", func(in *Input) { in.HostConfig.CgroupnsMode = "shared" }, "invalid cgroup namespace mode: shared"},
		{"container mode without path", func(in *Input) { in.HostConfig.PidMode = "container:db" }, `pid mode "container:db": the namespace to join was not given`},
		{"host mode and path", func(in *Input) { in.HostConfig.NetworkMode = "host" },
			`network mode "host" conflicts with joining the network namespace /run/berth/netns/0123456789ab`},
		{"unknown namespace to join", func(in *Input) { in.JoinNamespaces = map[specs.LinuxNamespaceType]string{"user": "/proc/1/ns/user"} },
			`cannot join a namespace of type "user"`},
		{"init without binary", func(in *Input) { in.HostConfig.Init = ptr(true) }, "--init: no init binary is configured"},
		{"oom score adj", func(in *Input) { in.HostConfig.OomScoreAdj = 1001 }, "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
		{"relative rootfs", func(in *Input) { in.Rootfs = "rootfs" }, `rootfs path "rootfs" is not absolute`},
		{"no config", func(in *Input) { in.Config = nil }, "container config is missing"},
	} {
		in := runInput(t)
		tc.change(&in)
		_, err := Generate(in)
		if err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: error %v, want invalid argument %q", tc.name, err, tc.want)
		}
	}

	for _, tc := range []struct {
		name   string
		change func(*Input)
		want   string
	}{
		{"user namespace", func(in *Input) { in.HostConfig.UsernsMode = "private" }, `user namespace mode "private" is not supported`},
		{"gpus", func(in *Input) { in.HostConfig.DeviceRequests = []container.DeviceRequest{{Count: -1}} }, "device requests (--gpus) are not supported"},
	} {
		in := runInput(t)
		tc.change(&in)
		_, err := Generate(in)
		if err == nil || err.Error() != tc.want || !errdefs.IsNotImplemented(err) {
			t.Errorf("%s: error %v, want not implemented %q", tc.name, err, tc.want)
		}
	}
}
