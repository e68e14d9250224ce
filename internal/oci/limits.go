package oci

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultDeviceRules are the device cgroup rules of an unprivileged
// container, the ones Docker's spec and runc's defaults add up to:
// everything denied, then mknod of any node, the standard character
// devices, terminals and /dev/net/tun allowed. (Docker's spec also denies
// /dev/fuse, which nothing here allows; a v1 device cgroup cannot even
// take that deny after the mknod wildcard.)
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
		if major >= 0 {
			r.Major = ptr(major)
		}
		if minor >= 0 {
			r.Minor = ptr(minor)
		}
		return r
	}
	const all = -1
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule(true, "c", all, all, "m"),
		rule(true, "b", all, all, "m"),
		rule(true, "c", 1, 3, "rwm"),     // /dev/null
		rule(true, "c", 1, 5, "rwm"),     // /dev/zero
		rule(true, "c", 1, 7, "rwm"),     // /dev/full
		rule(true, "c", 1, 8, "rwm"),     // /dev/random
		rule(true, "c", 1, 9, "rwm"),     // /dev/urandom
		rule(true, "c", 5, 0, "rwm"),     // /dev/tty
		rule(true, "c", 5, 1, "rwm"),     // /dev/console
		rule(true, "c", 5, 2, "rwm"),     // /dev/ptmx
		rule(true, "c", 136, all, "rwm"), // /dev/pts/*
		rule(true, "c", 10, 200, "rwm"),  // /dev/net/tun
	}
}

// deviceCgroupRule is the syntax of --device-cgroup-rule.
var deviceCgroupRule = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// parseDeviceCgroupRule parses "c 1:3 rwm" ("*" for any number).
func parseDeviceCgroupRule(s string) (specs.LinuxDeviceCgroup, error) {
	m := deviceCgroupRule.FindStringSubmatch(s)
	if m == nil || !validAccess(m[4]) {
		return specs.LinuxDeviceCgroup{}, invalidf("invalid device cgroup format '%s'", s)
	}
	r := specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Access: m[4]}
	for i, f := range []**int64{&r.Major, &r.Minor} {
		if m[2+i] == "*" {
			continue
		}
		n, err := strconv.ParseInt(m[2+i], 10, 64)
		if err != nil {
			return specs.LinuxDeviceCgroup{}, invalidf("invalid device cgroup format '%s'", s)
		}
		*f = ptr(n)
	}
	return r, nil
}

// validAccess reports whether a is made of r, w and m, each at most once.
func validAccess(a string) bool {
	if a == "" || len(a) > 3 {
		return false
	}
	for i, c := range a {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(a[i+1:], c) {
			return false
		}
	}
	return true
}

// devices sets the device nodes and device cgroup rules: Docker's defaults
// plus --device and --device-cgroup-rule, or for a privileged container
// every host device and a rule allowing all.
func (g *generator) devices() error {
	hc := g.hc
	var devs []specs.LinuxDevice
	rules := defaultDeviceRules()
	if hc.Privileged {
		host, err := hostDevices()
		if err != nil {
			return err
		}
		devs = host
		rules = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, d := range hc.Devices {
		onHost, inContainer, perms := d.PathOnHost, d.PathInContainer, d.CgroupPermissions
		if onHost == "" {
			return invalidf("invalid device mapping %+v: no path on the host", d)
		}
		if inContainer == "" {
			inContainer = onHost
		}
		if !path.IsAbs(inContainer) {
			return invalidf("%s is not an absolute path", inContainer)
		}
		if perms == "" {
			perms = "rwm"
		}
		if !validAccess(perms) {
			return invalidf("invalid device mode %q for %s", perms, onHost)
		}
		if hc.Privileged && onHost == inContainer {
			continue // already there with every host device
		}
		nodes, allow, err := devicesFromPath(onHost, path.Clean(inContainer), perms)
		if err != nil {
			return err
		}
		devs = append(devs, nodes...)
		if !hc.Privileged {
			rules = append(rules, allow...)
		}
	}
	if !hc.Privileged {
		for _, s := range hc.DeviceCgroupRules {
			r, err := parseDeviceCgroupRule(s)
			if err != nil {
				return err
			}
			rules = append(rules, r)
		}
	}
	g.s.Linux.Devices = devs
	g.s.Linux.Resources = &specs.LinuxResources{Devices: rules}
	return nil
}

// rlimitNames are the --ulimit names Docker accepts.
var rlimitNames = []string{
	"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// rlimits turns --ulimit values into RLIMIT_* limits; -1 is unlimited. A
// name given twice keeps its last values.
func (g *generator) rlimits() error {
	var out []specs.POSIXRlimit
	for _, u := range g.hc.Ulimits {
		if u == nil {
			continue
		}
		name := strings.ToLower(u.Name)
		if !slices.Contains(rlimitNames, name) {
			return invalidf("invalid ulimit type: %s", u.Name)
		}
		if u.Soft < -1 || u.Hard < -1 {
			return invalidf("invalid ulimit %s: %d:%d: values must be -1 (unlimited) or more", name, u.Soft, u.Hard)
		}
		soft, hard := uint64(u.Soft), uint64(u.Hard)
		if soft > hard {
			return invalidf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
		}
		l := specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: soft, Hard: hard}
		replaced := false
		for i := range out {
			if out[i].Type == l.Type {
				out[i], replaced = l, true
			}
		}
		if !replaced {
			out = append(out, l)
		}
	}
	g.s.Process.Rlimits = out
	return nil
}

// ipcSysctls are the namespaced sysctls of the IPC namespace besides
// fs.mqueue.*.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// sysctls sets Docker's default sysctls for a container with a network
// namespace of its own (unprivileged ping, any port bindable) and the
// --sysctl values, refusing those that are not namespaced or whose
// namespace the container shares with the host. kernel.domainname sets the
// spec's domainname.
func (g *generator) sysctls() error {
	hc, s := g.hc, g.s
	out := map[string]string{}
	if hc.NetworkMode.IsPrivate() {
		out["net.ipv4.ping_group_range"] = "0 2147483647"
		out["net.ipv4.ip_unprivileged_port_start"] = "0"
	}
	for k, v := range hc.Sysctls {
		if k == "" || strings.Contains(k, "/") || strings.Contains(k, "..") || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") {
			return invalidf("invalid sysctl %q", k)
		}
		switch {
		case strings.HasPrefix(k, "net."):
			if hc.NetworkMode.IsHost() {
				return invalidf("sysctl %q not allowed in host network namespace", k)
			}
		case strings.HasPrefix(k, "fs.mqueue.") || slices.Contains(ipcSysctls, k):
			if hc.IpcMode.IsHost() {
				return invalidf("sysctl %q not allowed in host ipc namespace", k)
			}
		case k == "kernel.domainname" && s.Hostname != "":
			if s.Domainname == "" {
				s.Domainname = v
			}
			continue
		case k == "kernel.hostname" && s.Hostname != "":
			return invalidf("sysctl %q is not allowed as it conflicts with the OCI %q field", k, "hostname")
		default:
			return invalidf("sysctl %q is not in a separate kernel namespace", k)
		}
		out[k] = v
	}
	if len(out) > 0 {
		s.Linux.Sysctl = out
	}
	return nil
}
