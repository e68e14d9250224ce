//go:build linux

package oci

import (
	"encoding/json"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rulesFor returns the rules of s that name syscall.
func rulesFor(s *specs.LinuxSeccomp, syscall string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range s.Syscalls {
		if slices.Contains(r.Names, syscall) {
			out = append(out, r)
		}
	}
	return out
}

// allowedOutright reports whether s has an unconditional allow rule for
// syscall.
func allowedOutright(s *specs.LinuxSeccomp, syscall string) bool {
	for _, r := range rulesFor(s, syscall) {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			return true
		}
	}
	return false
}

func TestDefaultSeccompProfile(t *testing.T) {
	s := DefaultSeccompProfile(DefaultCapabilities())
	if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != 1 {
		t.Errorf("default action %s errnoRet %v, want SCMP_ACT_ERRNO with 1 (EPERM)", s.DefaultAction, s.DefaultErrnoRet)
	}
	wantArches := map[string][]specs.Arch{
		"amd64": {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		"arm64": {specs.ArchAARCH64, specs.ArchARM},
	}[runtime.GOARCH]
	if wantArches != nil && !reflect.DeepEqual(s.Architectures, wantArches) {
		t.Errorf("architectures = %v, want %v", s.Architectures, wantArches)
	}
	if s.Flags != nil || s.ListenerPath != "" {
		t.Errorf("flags %v, listenerPath %q: want none", s.Flags, s.ListenerPath)
	}

	for _, name := range []string{"read", "write", "openat", "execve", "exit_group", "futex", "mknod", "chown", "setuid", "capset", "io_uring_setup", "ptrace"} {
		if !allowedOutright(s, name) {
			t.Errorf("%s is not allowed by the default profile", name)
		}
	}
	// Denied by default: no rule at all without the capability.
	for _, name := range []string{"mount", "umount2", "unshare", "setns", "reboot", "kexec_load", "init_module", "swapon", "settimeofday", "acct", "bpf", "keyctl", "add_key", "kcmp", "open_by_handle_at", "userfaultfd"} {
		if r := rulesFor(s, name); len(r) > 0 {
			t.Errorf("%s has rules %+v without the capability that allows it", name, r)
		}
	}
	if runtime.GOARCH == "amd64" && !allowedOutright(s, "arch_prctl") {
		t.Error("arch_prctl is not allowed on amd64")
	}
	if allowedOutright(s, "riscv_flush_icache") || allowedOutright(s, "s390_runtime_instr") {
		t.Error("another architecture's syscalls are allowed")
	}

	// personality only with the five allowed personas.
	var personas []uint64
	for _, r := range rulesFor(s, "personality") {
		if len(r.Args) != 1 || r.Args[0].Index != 0 || r.Args[0].Op != specs.OpEqualTo || r.Action != specs.ActAllow {
			t.Fatalf("personality rule %+v, want one argument-0 equality", r)
		}
		personas = append(personas, r.Args[0].Value)
	}
	if !reflect.DeepEqual(personas, []uint64{0, 8, 0x20000, 0x20008, 0xffffffff}) {
		t.Errorf("personality allowed for %#x", personas)
	}
	// socket except AF_VSOCK.
	if r := rulesFor(s, "socket"); len(r) != 1 || !reflect.DeepEqual(r[0].Args, []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpNotEqual}}) {
		t.Errorf("socket rules %+v, want allowed unless the family is AF_VSOCK", r)
	}
	// clone without namespace flags; clone3 fails with ENOSYS.
	clone := rulesFor(s, "clone")
	if len(clone) != 1 || !reflect.DeepEqual(clone[0].Args, []specs.LinuxSeccompArg{{Index: 0, Value: 0x7E020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}) {
		t.Errorf("clone rules %+v, want only a masked check of the namespace flags", clone)
	}
	clone3 := rulesFor(s, "clone3")
	if len(clone3) != 1 || clone3[0].Action != specs.ActErrno || clone3[0].ErrnoRet == nil || *clone3[0].ErrnoRet != 38 {
		t.Errorf("clone3 rules %+v, want ERRNO(ENOSYS)", clone3)
	}
}

func TestDefaultSeccompProfileFollowsCapabilities(t *testing.T) {
	for _, tc := range []struct {
		cap     string
		allowed []string
	}{
		{"CAP_SYS_ADMIN", []string{"mount", "umount2", "unshare", "setns", "sethostname", "clone", "clone3", "bpf", "fsopen"}},
		{"CAP_SYS_PTRACE", []string{"kcmp", "pidfd_getfd", "process_madvise", "ptrace"}},
		{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}},
		{"CAP_SYS_BOOT", []string{"reboot"}},
		{"CAP_SYS_TIME", []string{"settimeofday", "clock_settime"}},
		{"CAP_SYS_CHROOT", []string{"chroot"}},
		{"CAP_SYS_PACCT", []string{"acct"}},
		{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}},
		{"CAP_SYS_NICE", []string{"mbind", "set_mempolicy"}},
		{"CAP_SYSLOG", []string{"syslog"}},
		{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}},
		{"CAP_BPF", []string{"bpf"}},
		{"CAP_PERFMON", []string{"perf_event_open"}},
		{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}},
	} {
		without := DefaultSeccompProfile(nil)
		with := DefaultSeccompProfile([]string{strings.ToLower(strings.TrimPrefix(tc.cap, "CAP_"))})
		for _, name := range tc.allowed {
			if !allowedOutright(with, name) {
				t.Errorf("with %s, %s is not allowed", tc.cap, name)
			}
			if allowedOutright(without, name) && name != "ptrace" {
				t.Errorf("without %s, %s is allowed", tc.cap, name)
			}
		}
	}
	admin := DefaultSeccompProfile(append(DefaultCapabilities(), "CAP_SYS_ADMIN"))
	if r := rulesFor(admin, "clone3"); len(r) != 1 || r[0].Action != specs.ActAllow {
		t.Errorf("with CAP_SYS_ADMIN clone3 rules are %+v, want only the allow", r)
	}
	for _, r := range rulesFor(admin, "clone") {
		if len(r.Args) > 0 {
			t.Errorf("with CAP_SYS_ADMIN clone still has the restricted rule %+v", r)
		}
	}
}

// TestDefaultProfileRoundTrip checks that the built-in profile written in
// Docker's JSON format parses back to the same configuration, so both paths
// share one conversion.
func TestDefaultProfileRoundTrip(t *testing.T) {
	data, err := json.Marshal(defaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	caps := append(DefaultCapabilities(), "CAP_SYS_PTRACE")
	got, err := ParseSeccompProfile(data, caps)
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultSeccompProfile(caps); !reflect.DeepEqual(got, want) {
		t.Errorf("parsed default profile differs from DefaultSeccompProfile")
	}
}

func TestParseSeccompProfile(t *testing.T) {
	profile := `{
		"defaultAction": "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 38,
		"archMap": [
			{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
			{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
		],
		"flags": ["SECCOMP_FILTER_FLAG_LOG"],
		"listenerPath": "/run/agent.sock",
		"syscalls": [
			{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
			{"name": "getpid", "action": "SCMP_ACT_ALLOW", "comment": "the deprecated form"},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_KILL"]}},
			{"names": ["old_one"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "3.0"}},
			{"names": ["new_one"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
			{"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
			{"names": ["on_amd64", "on_arm64"], "action": "SCMP_ACT_LOG", "includes": {"arches": ["amd64", "arm64"]}},
			{"names": ["not_here"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
			{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
		]
	}`
	got, err := ParseSeccompProfile([]byte(profile), []string{"CAP_KILL", "sys_admin"})
	if err != nil {
		t.Fatal(err)
	}
	errno38 := uint(38)
	want := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &errno38,
		Flags:           []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG"},
		ListenerPath:    "/run/agent.sock",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActAllow},
			{Names: []string{"mount"}, Action: specs.ActAllow},
			{Names: []string{"new_one"}, Action: specs.ActAllow},
		},
	}
	switch runtime.GOARCH {
	case "amd64":
		want.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86}
	case "arm64":
		want.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		want.Syscalls = append(want.Syscalls, specs.LinuxSyscall{Names: []string{"on_amd64", "on_arm64"}, Action: specs.ActLog})
	}
	want.Syscalls = append(want.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}})
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("parsed profile:\n%s\nwant:\n%s", g, w)
	}

	// Without CAP_KILL the errno rule for kill appears; without
	// CAP_SYS_ADMIN mount does not.
	got, err = ParseSeccompProfile([]byte(profile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := rulesFor(got, "kill"); len(r) != 1 || r[0].Action != specs.ActErrno || *r[0].ErrnoRet != 1 {
		t.Errorf("kill rules without CAP_KILL: %+v", r)
	}
	if r := rulesFor(got, "mount"); len(r) != 0 {
		t.Errorf("mount rules without CAP_SYS_ADMIN: %+v", r)
	}

	// Architectures given directly stay as they are.
	got, err = ParseSeccompProfile([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[]}`), nil)
	if err != nil || !reflect.DeepEqual(got.Architectures, []specs.Arch{specs.ArchX86}) || got.Syscalls != nil {
		t.Errorf("got %+v, %v; want architectures [SCMP_ARCH_X86] and no rules", got, err)
	}
	// An empty profile means no filter.
	if got, err := ParseSeccompProfile([]byte(`{}`), nil); got != nil || err != nil {
		t.Errorf("empty profile: %+v, %v; want nil, nil", got, err)
	}
}

func TestParseSeccompProfileErrors(t *testing.T) {
	for _, tc := range []struct{ profile, want string }{
		{`{"defaultAction":`, "decoding seccomp profile failed: unexpected EOF"},
		{`{"defaultAction":"SCMP_ACT_ALLOW"} {}`, "decoding seccomp profile failed: data after the profile"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`,
			"both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}`,
			"seccomp profile: syscalls[0]: use either 'name' or 'names'"},
		{`{"defaultAction":"SCMP_ACT_MAYBE"}`, `seccomp profile: unknown defaultAction "SCMP_ACT_MAYBE"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"ALLOW"}]}`, `seccomp profile: syscalls[0]: unknown action "ALLOW"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"EQ"}]}]}`,
			`seccomp profile: syscalls[0]: unknown operator "EQ"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"4"}}]}`,
			`seccomp profile: syscalls[0]: invalid kernel version: 4, expected "<kernel>.<major>"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}`, "seccomp profile: syscalls[0]: no syscall names"},
	} {
		_, err := ParseSeccompProfile([]byte(tc.profile), nil)
		if err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: error %v, want invalid argument %q", tc.profile, err, tc.want)
		}
	}
}

func TestParseKernelRelease(t *testing.T) {
	for release, want := range map[string][2]int{"6.1.0-18-amd64": {6, 1}, "5.15.153.1-microsoft-standard-WSL2": {5, 15}, "4.8": {4, 8}, "6.18rc1": {6, 18}} {
		major, minor, err := parseKernelRelease(release)
		if err != nil || major != want[0] || minor != want[1] {
			t.Errorf("parseKernelRelease(%q) = %d, %d, %v; want %v", release, major, minor, err, want)
		}
	}
	for _, bad := range []string{"6", "x.1", "6.x"} {
		if _, _, err := parseKernelRelease(bad); err == nil {
			t.Errorf("parseKernelRelease(%q) succeeded", bad)
		}
	}
}
