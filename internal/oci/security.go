package oci

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
)

// DefaultCapabilities returns Docker's default capability set, the one every
// unprivileged container starts from before --cap-add and --cap-drop. Each
// call returns a new slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// capNames holds what the capability checks need to know, found once.
type capNames struct {
	// known is every name github.com/moby/sys/capability knows.
	known map[string]bool
	// available are the names of the capabilities the running kernel
	// supports and this process's bounding set holds, in number order:
	// what --privileged grants and what --cap-add accepts. A capability
	// outside the bounding set could not be given to the container (the
	// runtime would fail with EPERM), so, as with Docker, it is not
	// offered.
	available []string
}

// caps is capNames for this process.
var caps = sync.OnceValue(func() capNames {
	known := capability.ListKnown()
	c := capNames{known: make(map[string]bool, len(known))}
	for _, k := range known {
		c.known[capName(k.String())] = true
	}
	list, err := capability.ListSupported()
	if err != nil {
		// The kernel could not be asked (not Linux): every known one.
		list = known
	}
	slices.Sort(list)
	for _, k := range list {
		// GetBound fails only where there is no bounding set to ask.
		if held, err := capability.GetBound(k); err == nil && !held {
			continue
		}
		c.available = append(c.available, capName(k.String()))
	}
	return c
})

// allCapabilities returns a copy of caps().available.
func allCapabilities() []string { return slices.Clone(caps().available) }

// normalizeCaps upper-cases names and adds the CAP_ prefix; "ALL" stays
// "ALL". An unknown or unavailable name is an error with Docker's wording.
func normalizeCaps(names []string) ([]string, error) { return caps().normalize(names) }

// normalize is normalizeCaps against the capabilities in c.
func (c capNames) normalize(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n == "ALL" {
			out = append(out, n)
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !c.known[n] {
			return nil, invalidf("unknown capability: %q", n)
		}
		if !slices.Contains(c.available, n) {
			return nil, invalidf("capability not supported by your kernel or not available in the current environment: %q", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// capabilitySet returns the container process's capabilities, Docker's
// way: privileged gets every available capability; otherwise "ALL" in add starts from
// every capability minus drop, "ALL" in drop starts from nothing plus add,
// and else the defaults minus drop plus add. Duplicates are removed.
func capabilitySet(add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		return allCapabilities(), nil
	}
	add, err := normalizeCaps(add)
	if err != nil {
		return nil, err
	}
	drop, err = normalizeCaps(drop)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range allCapabilities() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, add...)
	}
	var out []string
	for _, c := range caps {
		if c != "ALL" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// securityOpts is HostConfig.SecurityOpt parsed.
type securityOpts struct {
	noNewPrivileges bool
	// seccomp is "" (the default profile), "builtin" (the default profile
	// too), "unconfined" or a profile's JSON.
	seccomp         string
	apparmor        string
	labels          []string
	writableCgroups *bool
}

// parseSecurityOpts parses --security-opt values as Docker does: "key=value"
// (or the deprecated "key:value"), and the bare "no-new-privileges" and
// "disable". Errors use Docker's wording: "invalid --security-opt 1" for a
// value without a separator, "... 2" for an unknown key or a bad boolean.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			s.noNewPrivileges = true
			continue
		case "disable":
			s.labels = append(s.labels, "disable")
			continue
		}
		var k, v string
		var ok bool
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else if strings.Contains(opt, ":") {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return s, invalidf("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "label":
			s.labels = append(s.labels, v)
		case "apparmor":
			s.apparmor = v
		case "seccomp":
			s.seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, invalidf("invalid --security-opt 2: %q", opt)
			}
			s.noNewPrivileges = b
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, invalidf("invalid --security-opt 2: %q", opt)
			}
			s.writableCgroups = &b
		default:
			return s, invalidf("invalid --security-opt 2: %q", opt)
		}
	}
	return s, nil
}
