package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// profile is a seccomp profile in Docker's format: an OCI seccomp
// configuration whose rules may be conditional (includes/excludes on the
// process's capabilities, the machine's architecture and the kernel
// version) and whose architectures may be given per native architecture
// (archMap).
type profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []archMapEntry           `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []profileRule            `json:"syscalls"`
}

// archMapEntry lists the architectures a filter covers when the machine's
// native architecture is Arch.
type archMapEntry struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// profileRule is one rule of a profile. Name is the deprecated single-name
// form of Names.
type profileRule struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *ruleFilter              `json:"includes,omitempty"`
	Excludes *ruleFilter              `json:"excludes,omitempty"`
}

// ruleFilter is a rule's condition. In includes every listed capability
// must be held, the machine's architecture must be listed and the kernel
// must be at least MinKernel; in excludes any one of them drops the rule.
type ruleFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// ParseSeccompProfile parses a seccomp profile in Docker's JSON format (the
// content `docker run --security-opt seccomp=file.json` sends) and returns
// the OCI configuration for a process whose capability set is caps: rules
// are kept or dropped by their includes/excludes, archMap becomes the
// architectures of the native one, and defaultErrnoRet, flags and
// listenerPath carry over. A profile with neither a default action nor
// rules means no filter (nil). Errors are of class errdefs.ErrInvalidArgument.
func ParseSeccompProfile(data []byte, caps []string) (*specs.LinuxSeccomp, error) {
	var p profile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, invalidf("decoding seccomp profile failed: %v", err)
	}
	if dec.More() {
		return nil, invalidf("decoding seccomp profile failed: data after the profile")
	}
	return p.spec(caps, kernelVersion)
}

// DefaultSeccompProfile returns berth's default seccomp configuration for a
// process whose capability set is caps: the policy of Docker's default
// profile (deny with EPERM, allow a list of system calls, some only with
// given arguments, capabilities or architectures). Holding CAP_SYS_ADMIN,
// for example, adds mount, unshare, setns and unrestricted clone.
func DefaultSeccompProfile(caps []string) *specs.LinuxSeccomp {
	// A kernel whose version cannot be read counts as older than every
	// minKernel: the conditional rules stay off.
	kernel := func() (int, int, error) {
		if major, minor, err := kernelVersion(); err == nil {
			return major, minor, nil
		}
		return 0, 0, nil
	}
	s, err := defaultProfile().spec(caps, kernel)
	if err != nil {
		// Only a broken built-in table gets here (the tests check it);
		// fail closed rather than run without a filter.
		errno := uint(1)
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &errno}
	}
	return s
}

// seccompArchNames maps GOARCH to the architecture names the "arches" of a
// rule filter use.
var seccompArchNames = map[string]string{
	"386": "x86", "amd64": "amd64", "arm": "arm", "arm64": "arm64",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
	"mips64": "mips64", "mips64le": "mipsel64", "loong64": "loong64",
}

// nativeSeccompArch maps GOARCH to the SCMP_ARCH_ name archMap uses.
var nativeSeccompArch = map[string]specs.Arch{
	"386": specs.ArchX86, "amd64": specs.ArchX86_64, "arm": specs.ArchARM, "arm64": specs.ArchAARCH64,
	"ppc64le": specs.ArchPPC64LE, "s390x": specs.ArchS390X, "riscv64": specs.ArchRISCV64,
	"mips64": specs.ArchMIPS64, "mips64le": specs.ArchMIPSEL64, "loong64": specs.ArchLOONGARCH64,
}

var seccompActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var seccompOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// spec turns the profile into the OCI configuration for caps, on this
// machine's architecture and the kernel version kernel() returns.
func (p *profile) spec(caps []string, kernel func() (int, int, error)) (*specs.LinuxSeccomp, error) {
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, invalidf("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	if !slices.Contains(seccompActions, p.DefaultAction) {
		return nil, invalidf("seccomp profile: unknown defaultAction %q", p.DefaultAction)
	}
	held := normalizeHeld(caps)
	out := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    slices.Clone(p.Architectures),
		Flags:            slices.Clone(p.Flags),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
	}
	if native, ok := nativeSeccompArch[runtime.GOARCH]; ok {
		for _, a := range p.ArchMap {
			if a.Arch == native {
				out.Architectures = append(append(out.Architectures, a.Arch), a.SubArches...)
				break
			}
		}
	}
	arch := seccompArchNames[runtime.GOARCH]
	for i, r := range p.Syscalls {
		names := r.Names
		if r.Name != "" {
			if len(names) > 0 {
				return nil, invalidf("seccomp profile: syscalls[%d]: use either 'name' or 'names'", i)
			}
			names = []string{r.Name}
		}
		if len(names) == 0 {
			return nil, invalidf("seccomp profile: syscalls[%d]: no syscall names", i)
		}
		if !slices.Contains(seccompActions, r.Action) {
			return nil, invalidf("seccomp profile: syscalls[%d]: unknown action %q", i, r.Action)
		}
		for _, a := range r.Args {
			if !slices.Contains(seccompOps, a.Op) {
				return nil, invalidf("seccomp profile: syscalls[%d]: unknown operator %q", i, a.Op)
			}
		}
		keep, err := r.applies(arch, held, kernel)
		if err != nil {
			return nil, invalidf("seccomp profile: syscalls[%d]: %v", i, err)
		}
		if !keep {
			continue
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   r.Action,
			ErrnoRet: r.ErrnoRet,
			Args:     slices.Clone(r.Args),
		})
	}
	return out, nil
}

// normalizeHeld returns caps upper-cased with the CAP_ prefix, without
// empty names. Unlike normalizeCaps it accepts names this host does not
// know: they only decide which rules apply.
func normalizeHeld(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		if c = capName(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// capName returns c upper-cased with the CAP_ prefix ("" stays "").
func capName(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c != "" && !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// applies reports whether the rule is kept on architecture arch, for a
// process holding caps, on the kernel kernel() reports (asked only when a
// rule names a minimum kernel).
func (r *profileRule) applies(arch string, caps []string, kernel func() (int, int, error)) (bool, error) {
	if f := r.Excludes; f != nil {
		if slices.Contains(f.Arches, arch) {
			return false, nil
		}
		for _, c := range f.Caps {
			if slices.Contains(caps, capName(c)) {
				return false, nil
			}
		}
		if f.MinKernel != "" {
			ok, err := kernelAtLeast(f.MinKernel, kernel)
			if err != nil || ok {
				return false, err
			}
		}
	}
	if f := r.Includes; f != nil {
		if len(f.Arches) > 0 && !slices.Contains(f.Arches, arch) {
			return false, nil
		}
		for _, c := range f.Caps {
			if !slices.Contains(caps, capName(c)) {
				return false, nil
			}
		}
		if f.MinKernel != "" {
			ok, err := kernelAtLeast(f.MinKernel, kernel)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// kernelAtLeast reports whether the running kernel is at least min,
// "<major>.<minor>".
func kernelAtLeast(min string, kernel func() (int, int, error)) (bool, error) {
	wantMajor, wantMinor, err := parseKernelVersion(min)
	if err != nil {
		return false, err
	}
	major, minor, err := kernel()
	if err != nil {
		return false, err
	}
	return major > wantMajor || (major == wantMajor && minor >= wantMinor), nil
}

// parseKernelVersion parses a minKernel value, "<major>.<minor>".
func parseKernelVersion(v string) (int, int, error) {
	a, b, ok := strings.Cut(v, ".")
	if !ok || strings.Contains(b, ".") {
		return 0, 0, fmt.Errorf("invalid kernel version: %s, expected \"<kernel>.<major>\"", v)
	}
	major, err1 := strconv.ParseUint(a, 10, 8)
	minor, err2 := strconv.ParseUint(b, 10, 8)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid kernel version: %s, expected \"<kernel>.<major>\"", v)
	}
	if major == 0 && minor == 0 {
		return 0, 0, fmt.Errorf("invalid kernel version: %s, version cannot be 0.0", v)
	}
	return int(major), int(minor), nil
}

// parseKernelRelease returns the major and minor numbers of a kernel
// release string such as "6.1.0-18-amd64".
func parseKernelRelease(release string) (int, int, error) {
	a, rest, ok := strings.Cut(release, ".")
	if !ok {
		return 0, 0, fmt.Errorf("kernel release %q has no minor version", release)
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("kernel release %q does not start with <major>.<minor>", release)
	}
	return major, minor, nil
}
