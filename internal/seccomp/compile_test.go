//go:build linux && cgo

package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// Kernel return values of a seccomp filter.
const (
	retKillThread  = unix.SECCOMP_RET_KILL_THREAD
	retKillProcess = unix.SECCOMP_RET_KILL_PROCESS
	retTrap        = unix.SECCOMP_RET_TRAP
	retErrno       = unix.SECCOMP_RET_ERRNO
	retTrace       = unix.SECCOMP_RET_TRACE
	retLog         = unix.SECCOMP_RET_LOG
	retAllow       = unix.SECCOMP_RET_ALLOW
	retNotify      = unix.SECCOMP_RET_USER_NOTIF
)

func uintp(v uint) *uint { return &v }

func mustCompile(t *testing.T, c *specs.LinuxSeccomp) *Program {
	t.Helper()
	p, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if p == nil {
		t.Fatal("Compile returned no program")
	}
	return p
}

func nativeArch(t *testing.T) libseccomp.ScmpArch {
	t.Helper()
	a, err := libseccomp.GetNativeArch()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func audit(t *testing.T, a libseccomp.ScmpArch) uint32 {
	t.Helper()
	v, ok := auditArch(a)
	if !ok {
		t.Fatalf("no AUDIT_ARCH for %v", a)
	}
	return v
}

// sysnr returns the number of a syscall on an architecture.
func sysnr(t *testing.T, name string, a libseccomp.ScmpArch) int32 {
	t.Helper()
	nr, err := libseccomp.GetSyscallFromNameByArch(name, a)
	if err != nil || nr < 0 {
		t.Fatalf("syscall %s on %v: %d %v", name, a, nr, err)
	}
	return int32(nr)
}

// eval runs p for a native syscall by name with args.
func eval(t *testing.T, p *Program, name string, args ...uint64) uint32 {
	t.Helper()
	a := nativeArch(t)
	d := seccompData{nr: sysnr(t, name, a), arch: audit(t, a)}
	copy(d.args[:], args)
	return runBPF(t, p.Filter, d)
}

// evalNr runs p for a native syscall number.
func evalNr(t *testing.T, p *Program, nr int32) uint32 {
	t.Helper()
	a := nativeArch(t)
	return runBPF(t, p.Filter, seccompData{nr: nr, arch: audit(t, a)})
}

func TestCompileNoSeccomp(t *testing.T) {
	for _, c := range []*specs.LinuxSeccomp{nil, {}, {ListenerPath: "/x", Flags: []specs.LinuxSeccompFlag{"bogus"}}} {
		p, err := Compile(c)
		if p != nil || err != nil {
			t.Errorf("Compile(%+v) = %+v, %v; want nil, nil", c, p, err)
		}
	}
}

func TestCompileRuleActions(t *testing.T) {
	for _, tc := range []struct {
		action   specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{specs.ActKill, nil, retKillThread},
		{specs.ActKillThread, nil, retKillThread},
		{specs.ActKillProcess, nil, retKillProcess},
		{specs.ActTrap, nil, retTrap},
		{specs.ActErrno, nil, retErrno | uint32(unix.EPERM)},
		{specs.ActErrno, uintp(uint(unix.EXDEV)), retErrno | uint32(unix.EXDEV)},
		{specs.ActErrno, uintp(0), retErrno},
		{specs.ActErrno, uintp(4094), retErrno | 4094},
		{specs.ActTrace, uintp(0xffff), retTrace | 0xffff},
		{specs.ActTrace, nil, retTrace | uint32(unix.EPERM)},
		{specs.ActTrace, uintp(1234), retTrace | 1234},
		{specs.ActLog, nil, retLog},
		{specs.ActNotify, nil, retNotify},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.action, tc.errnoRet != nil), func(t *testing.T) {
			c := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"getppid", "getpgrp"}, Action: tc.action, ErrnoRet: tc.errnoRet},
				},
			}
			if tc.action == specs.ActNotify {
				c.ListenerPath = "/run/agent.sock"
			}
			p := mustCompile(t, c)
			for _, name := range []string{"getppid", "getpgrp"} {
				if got := eval(t, p, name); got != tc.want {
					t.Errorf("%s: filter returns %#x, want %#x", name, got, tc.want)
				}
			}
			if got := eval(t, p, "getpid"); got != retAllow {
				t.Errorf("getpid: filter returns %#x, want allow", got)
			}
			if p.Notify != (tc.action == specs.ActNotify) {
				t.Errorf("Notify = %v", p.Notify)
			}
		})
	}
}

func TestCompileDefaultActions(t *testing.T) {
	for _, tc := range []struct {
		action   specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{specs.ActKill, nil, retKillThread},
		{specs.ActKillThread, nil, retKillThread},
		{specs.ActKillProcess, nil, retKillProcess},
		{specs.ActTrap, nil, retTrap},
		{specs.ActErrno, nil, retErrno | uint32(unix.EPERM)},
		{specs.ActErrno, uintp(uint(unix.EXDEV)), retErrno | uint32(unix.EXDEV)},
		{specs.ActTrace, nil, retTrace | uint32(unix.EPERM)},
		{specs.ActTrace, uintp(7), retTrace | 7},
		{specs.ActAllow, nil, retAllow},
		{specs.ActLog, nil, retLog},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.action, tc.errnoRet != nil), func(t *testing.T) {
			ruleAction := specs.ActAllow
			if tc.action == specs.ActAllow {
				ruleAction = specs.ActErrno
			}
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction:   tc.action,
				DefaultErrnoRet: tc.errnoRet,
				Syscalls:        []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: ruleAction}},
			})
			// getpid is below getppid: no ENOSYS stub applies.
			if got := eval(t, p, "getpid"); got != tc.want {
				t.Errorf("getpid: filter returns %#x, want %#x", got, tc.want)
			}
			if got := eval(t, p, "getppid"); got == tc.want {
				t.Errorf("getppid: filter returns the default %#x, want the rule's action", got)
			}
		})
	}
}

func TestCompileRuleSameAsDefaultSkipped(t *testing.T) {
	// libseccomp refuses a rule whose action is the default action; Compile
	// drops it, the errno value included in the comparison.
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EPERM))},
			{Names: []string{"getpgrp"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
			{Names: []string{"getpid"}, Action: specs.ActKill},
			{Names: []string{"gettid"}, Action: specs.ActAllow},
		},
	})
	if got := eval(t, p, "getppid"); got != retErrno|uint32(unix.EPERM) {
		t.Errorf("getppid: %#x, want EPERM", got)
	}
	if got := eval(t, p, "getpgrp"); got != retErrno|uint32(unix.EXDEV) {
		t.Errorf("getpgrp: %#x, want EXDEV", got)
	}

	p = mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActKill,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActKillThread},
			{Names: []string{"gettid"}, Action: specs.ActAllow},
		},
	})
	if got := eval(t, p, "getppid"); got != retKillThread {
		t.Errorf("getppid: %#x, want kill", got)
	}
}

func TestCompileFirstUnconditionalRuleWins(t *testing.T) {
	for _, tc := range []struct {
		first, last specs.LinuxSeccompAction
		want        uint32
	}{
		{specs.ActErrno, specs.ActKill, retErrno | uint32(unix.EPERM)},
		{specs.ActKill, specs.ActErrno, retKillThread},
	} {
		p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: tc.first},
			{Names: []string{"getppid"}, Action: tc.last},
		}})
		if got := eval(t, p, "getppid"); got != tc.want {
			t.Errorf("%s then %s: %#x, want %#x", tc.first, tc.last, got, tc.want)
		}
	}
}

func TestCompileUnknownSyscallSkipped(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"no_such_syscall", "getppid"}, Action: specs.ActErrno},
		},
	})
	if got := eval(t, p, "getppid"); got != retErrno|uint32(unix.EPERM) {
		t.Errorf("getppid: %#x, want EPERM", got)
	}
}

func TestCompileOperators(t *testing.T) {
	const hi = 1 << 32
	for _, tc := range []struct {
		op              specs.LinuxSeccompOperator
		value, valueTwo uint64
		match, nomatch  []uint64
	}{
		{specs.OpEqualTo, 5, 0, []uint64{5}, []uint64{4, 6, 5 + hi, 0}},
		{specs.OpEqualTo, 5 + hi, 0, []uint64{5 + hi}, []uint64{5, hi}},
		{specs.OpNotEqual, 5, 0, []uint64{4, 6, 5 + hi, 0}, []uint64{5}},
		{specs.OpLessThan, 5, 0, []uint64{0, 4}, []uint64{5, 6, hi}},
		{specs.OpLessEqual, 5, 0, []uint64{0, 4, 5}, []uint64{6, hi}},
		{specs.OpGreaterThan, 5, 0, []uint64{6, hi, 1<<64 - 1}, []uint64{0, 5}},
		{specs.OpGreaterEqual, 5, 0, []uint64{5, 6, hi}, []uint64{0, 4}},
		{specs.OpGreaterThan, hi, 0, []uint64{hi + 1, 2 * hi}, []uint64{hi, 1<<32 - 1}},
		// value is the mask, valueTwo what the masked argument must be.
		{specs.OpMaskedEqual, 0xf0, 0x30, []uint64{0x30, 0x3f, 0x130}, []uint64{0x20, 0xf0, 0}},
		{specs.OpMaskedEqual, 0x7e020000, 0, []uint64{0, 0x11}, []uint64{0x20000, 0x10000000}},
	} {
		t.Run(fmt.Sprintf("%s/%#x/%#x", tc.op, tc.value, tc.valueTwo), func(t *testing.T) {
			for _, index := range []uint{0, 5} {
				p := mustCompile(t, &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Syscalls: []specs.LinuxSyscall{{
						Names:    []string{"getppid"},
						Action:   specs.ActErrno,
						ErrnoRet: uintp(uint(unix.EXDEV)),
						Args:     []specs.LinuxSeccompArg{{Index: index, Value: tc.value, ValueTwo: tc.valueTwo, Op: tc.op}},
					}},
				})
				args := make([]uint64, 6)
				for _, v := range tc.match {
					args[index] = v
					if got := eval(t, p, "getppid", args...); got != retErrno|uint32(unix.EXDEV) {
						t.Errorf("arg%d = %#x: filter returns %#x, want the rule to match", index, v, got)
					}
				}
				for _, v := range tc.nomatch {
					args[index] = v
					if got := eval(t, p, "getppid", args...); got != retAllow {
						t.Errorf("arg%d = %#x: filter returns %#x, want the rule not to match", index, v, got)
					}
				}
			}
		})
	}
}

func TestCompileArgsAnd(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names:  []string{"getppid"},
			Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo},
				{Index: 2, Value: 10, Op: specs.OpGreaterThan},
			},
		}},
	})
	for _, tc := range []struct {
		a0, a2 uint64
		want   uint32
	}{
		{1, 11, retErrno | uint32(unix.EPERM)},
		{1, 10, retAllow},
		{2, 11, retAllow},
		{0, 0, retAllow},
	} {
		if got := eval(t, p, "getppid", tc.a0, 0, tc.a2); got != tc.want {
			t.Errorf("getppid(%d, 0, %d): %#x, want %#x", tc.a0, tc.a2, got, tc.want)
		}
	}
}

func TestCompileArgsSameIndexOr(t *testing.T) {
	// An index that appears twice turns every arg into its own rule: the
	// args are then ORed, like runc does (ANDing them could never match).
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names:  []string{"getppid"},
			Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo},
				{Index: 0, Value: 2, Op: specs.OpEqualTo},
				{Index: 1, Value: 7, Op: specs.OpEqualTo},
			},
		}},
	})
	for _, tc := range []struct {
		a0, a1 uint64
		want   uint32
	}{
		{1, 0, retErrno | uint32(unix.EPERM)},
		{2, 0, retErrno | uint32(unix.EPERM)},
		{3, 7, retErrno | uint32(unix.EPERM)},
		{3, 0, retAllow},
	} {
		if got := eval(t, p, "getppid", tc.a0, tc.a1); got != tc.want {
			t.Errorf("getppid(%d, %d): %#x, want %#x", tc.a0, tc.a1, got, tc.want)
		}
	}
}

// littleEndian reports whether an AUDIT_ARCH value is little-endian.
func littleEndian(audit uint32) bool { return audit&0x40000000 != 0 }

func TestCompileArchitectures(t *testing.T) {
	native := nativeArch(t)
	nativeLE := littleEndian(audit(t, native))
	for _, name := range []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
		specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
	} {
		t.Run(string(name), func(t *testing.T) {
			arch, err := parseArch(name)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(&specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{name},
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
				},
			})
			if _, nerr := libseccomp.GetSyscallFromNameByArch("getppid", arch); nerr != nil {
				// Newer than this libseccomp.
				if !errdefs.IsNotImplemented(err) {
					t.Fatalf("architecture unknown to libseccomp: want a not implemented error, got %v", err)
				}
				return
			}
			if littleEndian(audit(t, arch)) != nativeLE {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("foreign byte order: want an invalid argument error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := seccompData{nr: sysnr(t, "getppid", arch), arch: audit(t, arch)}
			if got := runBPF(t, p.Filter, d); got != retErrno|uint32(unix.EXDEV) {
				t.Errorf("%s getppid: %#x, want EXDEV", name, got)
			}
			d.nr = sysnr(t, "getpid", arch)
			if got := runBPF(t, p.Filter, d); got != retAllow {
				t.Errorf("%s getpid: %#x, want allow", name, got)
			}
			// The native architecture is always there.
			if got := eval(t, p, "getppid"); got != retErrno|uint32(unix.EXDEV) {
				t.Errorf("native getppid: %#x, want EXDEV", got)
			}
		})
	}
}

func TestCompileUnlistedArchitectureKilled(t *testing.T) {
	native := nativeArch(t)
	other := libseccomp.ArchX86
	if native == libseccomp.ArchX86 {
		other = libseccomp.ArchARM
	}
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow})
	d := seccompData{nr: sysnr(t, "getpid", other), arch: audit(t, other)}
	if got := runBPF(t, p.Filter, d); got != retKillThread {
		t.Errorf("syscall of an architecture not in the filter: %#x, want kill", got)
	}
}

func TestCompileFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []specs.LinuxSeccompFlag
		notify bool
		want   uint
	}{
		{"absent", nil, false, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"empty", []specs.LinuxSeccompFlag{}, false, 0},
		{"tsync", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, false, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{"tsync notify", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, true, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{"log", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, false, unix.SECCOMP_FILTER_FLAG_LOG},
		{"spec allow", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}, false, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"wait killable without listener", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, false, 0},
		{"wait killable", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, true, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
		{"all", []specs.LinuxSeccompFlag{
			"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
			specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
		}, true, unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG |
			unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.flags}
			if tc.notify {
				c.ListenerPath = "/run/agent.sock"
				c.Syscalls = []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}
			}
			p := mustCompile(t, c)
			if p.Flags != tc.want {
				t.Errorf("Flags = %#x, want %#x", p.Flags, tc.want)
			}
			if p.Notify != tc.notify {
				t.Errorf("Notify = %v, want %v", p.Notify, tc.notify)
			}
		})
	}
}

func TestCompileListenerPathWithoutNotifyIgnored(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     "/run/agent.sock",
		ListenerMetadata: "meta",
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}},
	})
	if p.Notify {
		t.Error("Notify set without any SCMP_ACT_NOTIFY rule")
	}
}

func TestCompileErrors(t *testing.T) {
	allow := specs.ActAllow
	rule := func(s specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{s}}
	}
	for _, tc := range []struct {
		name  string
		c     *specs.LinuxSeccomp
		want  string
		class error
	}{
		{"unknown default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"},
			`seccomp: unknown action "SCMP_ACT_NOPE"`, errdefs.ErrInvalidArgument},
		{"empty default action with syscalls", &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: allow}}},
			`seccomp: unknown action ""`, errdefs.ErrInvalidArgument},
		{"unknown rule action", rule(specs.LinuxSyscall{Names: []string{"read"}, Action: "X"}),
			`seccomp: unknown action "X"`, errdefs.ErrInvalidArgument},
		{"unknown architecture", &specs.LinuxSeccomp{DefaultAction: allow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}},
			`seccomp: unknown architecture "SCMP_ARCH_Z80"`, errdefs.ErrInvalidArgument},
		{"libseccomp arch name", &specs.LinuxSeccomp{DefaultAction: allow, Architectures: []specs.Arch{"amd64"}},
			`seccomp: unknown architecture "amd64"`, errdefs.ErrInvalidArgument},
		{"unknown operator", rule(specs.LinuxSyscall{Names: []string{"open"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: "X"}}}),
			`seccomp: syscall "open": unknown operator "X"`, errdefs.ErrInvalidArgument},
		{"argument index", rule(specs.LinuxSyscall{Names: []string{"open"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 6, Value: 1, Op: specs.OpEqualTo}}}),
			`seccomp: syscall "open": argument index 6 out of range (0-5)`, errdefs.ErrInvalidArgument},
		{"unknown flag", &specs.LinuxSeccomp{DefaultAction: allow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
			`seccomp: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"`, errdefs.ErrInvalidArgument},
		{"errno without errnoRet", rule(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno}),
			"", nil},
		{"errnoRet on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: allow, ErrnoRet: uintp(1)}}},
			`seccomp: syscall "read": errnoRet: not supported by action SCMP_ACT_ALLOW`, errdefs.ErrInvalidArgument},
		{"errnoRet on kill", rule(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: uintp(1)}),
			`seccomp: syscall "read": errnoRet: not supported by action SCMP_ACT_KILL_THREAD`, errdefs.ErrInvalidArgument},
		{"errnoRet on notify", &specs.LinuxSeccomp{DefaultAction: allow, ListenerPath: "/a",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify, ErrnoRet: uintp(1)}}},
			`seccomp: syscall "read": errnoRet: not supported by action SCMP_ACT_NOTIFY`, errdefs.ErrInvalidArgument},
		{"errnoRet too large", rule(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(4095)}),
			`seccomp: syscall "read": errnoRet: 4095 out of range (0-4094)`, errdefs.ErrInvalidArgument},
		{"trace errnoRet too large", rule(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActTrace, ErrnoRet: uintp(0x10000)}),
			`seccomp: syscall "read": errnoRet: 65536 out of range (0-65535)`, errdefs.ErrInvalidArgument},
		{"defaultErrnoRet on allow", &specs.LinuxSeccomp{DefaultAction: allow, DefaultErrnoRet: uintp(1)},
			`seccomp: defaultErrnoRet: not supported by action SCMP_ACT_ALLOW`, errdefs.ErrInvalidArgument},
		{"defaultErrnoRet too large", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1 << 20)},
			`seccomp: defaultErrnoRet: 1048576 out of range (0-4094)`, errdefs.ErrInvalidArgument},
		{"no names", rule(specs.LinuxSyscall{Action: specs.ActErrno}),
			`seccomp: syscalls[0]: names is empty`, errdefs.ErrInvalidArgument},
		{"empty name", rule(specs.LinuxSyscall{Names: []string{"read", ""}, Action: specs.ActErrno}),
			`seccomp: syscalls[0]: empty syscall name`, errdefs.ErrInvalidArgument},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/a"},
			`seccomp: SCMP_ACT_NOTIFY cannot be used as default action`, errdefs.ErrInvalidArgument},
		{"notify write", &specs.LinuxSeccomp{DefaultAction: allow, ListenerPath: "/a",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActNotify}}},
			`seccomp: syscall "write": SCMP_ACT_NOTIFY cannot be used for the write syscall`, errdefs.ErrInvalidArgument},
		{"notify without listenerPath", &specs.LinuxSeccomp{DefaultAction: allow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}},
			`seccomp: SCMP_ACT_NOTIFY is used but listenerPath is not set`, errdefs.ErrInvalidArgument},
		{"listenerMetadata without listenerPath", &specs.LinuxSeccomp{DefaultAction: allow, ListenerMetadata: "m"},
			`seccomp: listenerMetadata is set but listenerPath is not`, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.c)
			if tc.class == nil {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Compile succeeded (%d instructions), want an error", p.Len())
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("error %q is not of class %v", err, tc.class)
			}
		})
	}
}

func TestCompileEnosysStub(t *testing.T) {
	native := nativeArch(t)
	top := sysnr(t, "getppid", native)
	c := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.EXDEV)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "getppid"}, Action: specs.ActAllow},
			// Equal to the default, so no rule, but the profile knows it.
			{Names: []string{"no_such_syscall"}, Action: specs.ActAllow},
		},
	}
	p := mustCompile(t, c)
	if got := evalNr(t, p, top); got != retAllow {
		t.Errorf("highest syscall of the profile: %#x, want allow", got)
	}
	if got := evalNr(t, p, top-1); got != retErrno|uint32(unix.EXDEV) {
		t.Errorf("syscall below the highest, not in the profile: %#x, want the default EXDEV", got)
	}
	for _, nr := range []int32{top + 1, 1000, 1 << 20} {
		if got := evalNr(t, p, nr); got != retErrno|uint32(unix.ENOSYS) {
			t.Errorf("syscall %d above the highest: %#x, want ENOSYS", nr, got)
		}
	}

	// The stub does not change what happens to other architectures.
	other := libseccomp.ArchX86
	if native == libseccomp.ArchX86 {
		other = libseccomp.ArchARM
	}
	if got := runBPF(t, p.Filter, seccompData{nr: 1000, arch: audit(t, other)}); got != retKillThread {
		t.Errorf("architecture not in the filter: %#x, want kill", got)
	}

	for _, tc := range []struct {
		name     string
		action   specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{"allow", specs.ActAllow, nil, retAllow},
		{"log", specs.ActLog, nil, retLog},
		{"trace", specs.ActTrace, nil, retTrace | uint32(unix.EPERM)},
		{"enosys", specs.ActErrno, uintp(uint(unix.ENOSYS)), retErrno | uint32(unix.ENOSYS)},
		{"kill", specs.ActKillProcess, nil, retErrno | uint32(unix.ENOSYS)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction:   tc.action,
				DefaultErrnoRet: tc.errnoRet,
				Syscalls:        []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}},
			})
			if got := evalNr(t, p, 1000); got != tc.want {
				t.Errorf("syscall 1000: %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestCompileEnosysStubX32(t *testing.T) {
	if nativeArch(t) != libseccomp.ArchAMD64 {
		t.Skip("x32 shares the x86_64 audit architecture only on x86_64 hosts")
	}
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "getppid"}, Action: specs.ActAllow},
		},
	})
	for _, a := range []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchX86, libseccomp.ArchX32} {
		top := sysnr(t, "getppid", a)
		d := seccompData{nr: top, arch: audit(t, a)}
		if got := runBPF(t, p.Filter, d); got != retAllow {
			t.Errorf("%v getppid: %#x, want allow", a, got)
		}
		d.nr = top + 1
		if got := runBPF(t, p.Filter, d); got != retErrno|uint32(unix.ENOSYS) {
			t.Errorf("%v syscall above getppid: %#x, want ENOSYS", a, got)
		}
		d.nr = sysnr(t, "read", a) + 3 // close or an x86 neighbour, below getppid
		if got := runBPF(t, p.Filter, d); got != retErrno|uint32(unix.EPERM) {
			t.Errorf("%v syscall %d: %#x, want EPERM", a, d.nr, got)
		}
	}
}

func TestCompileLargeProfile(t *testing.T) {
	// More than optimizeAbove syscalls: libseccomp builds a binary tree,
	// whose answers must be the same.
	var names []string
	for _, n := range []string{
		"read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "mmap",
		"mprotect", "munmap", "brk", "rt_sigaction", "rt_sigprocmask", "ioctl", "pread64",
		"pwrite64", "readv", "writev", "access", "pipe", "select", "sched_yield", "mremap",
		"msync", "mincore", "madvise", "dup", "dup2", "pause", "nanosleep", "getitimer",
		"alarm", "setitimer", "getpid", "sendfile", "socket", "connect", "accept",
	} {
		if _, err := libseccomp.GetSyscallFromName(n); err == nil {
			names = append(names, n)
		}
	}
	if len(names) <= optimizeAbove {
		t.Fatalf("only %d syscalls known", len(names))
	}
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
	})
	for _, n := range names {
		if got := eval(t, p, n); got != retAllow {
			t.Errorf("%s: %#x, want allow", n, got)
		}
	}
	if got := eval(t, p, "getppid"); !slices.Contains([]uint32{retErrno | uint32(unix.EPERM), retErrno | uint32(unix.ENOSYS)}, got) {
		t.Errorf("getppid: %#x, want EPERM or ENOSYS", got)
	}
}

func TestCompileTooLong(t *testing.T) {
	// Every value of arg 0 is its own rule: more instructions than the
	// kernel takes.
	var args []specs.LinuxSeccompArg
	for v := range uint64(5000) {
		args = append(args, specs.LinuxSeccompArg{Index: 0, Value: v, Op: specs.OpEqualTo})
	}
	p, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActErrno, Args: args},
	}})
	if err == nil {
		t.Fatalf("Compile of a program of %d instructions succeeded", p.Len())
	}
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "more than the kernel's limit of 4096") {
		t.Errorf("error %q, want the kernel's limit", err)
	}
}

func TestProgramJSON(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  "/run/agent.sock",
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}},
	})
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Program
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Filter, q.Filter) || p.Flags != q.Flags || p.Notify != q.Notify || !q.Notify {
		t.Errorf("round trip changed the program: %+v -> %+v", p, q)
	}
	if p.Len() == 0 || p.Len()*sockFilterSize != len(p.Filter) {
		t.Errorf("Len() = %d for %d bytes", p.Len(), len(p.Filter))
	}
}
