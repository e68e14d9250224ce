//go:build cgo

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Features describes the seccomp support of this build and host, for
// "berth-runtime features": the actions, operators and flags Compile knows,
// the architectures this libseccomp can put in a filter, and the flags the
// running kernel accepts.
func Features() *features.Seccomp {
	enabled := true
	f := &features.Seccomp{
		Enabled: &enabled,
		Actions: []string{
			string(specs.ActAllow), string(specs.ActErrno), string(specs.ActKill), string(specs.ActKillProcess),
			string(specs.ActKillThread), string(specs.ActLog), string(specs.ActNotify), string(specs.ActTrace),
			string(specs.ActTrap),
		},
		Operators: []string{
			string(specs.OpEqualTo), string(specs.OpGreaterEqual), string(specs.OpGreaterThan), string(specs.OpLessEqual),
			string(specs.OpLessThan), string(specs.OpMaskedEqual), string(specs.OpNotEqual),
		},
	}
	for _, name := range []specs.Arch{
		specs.ArchAARCH64, specs.ArchARM, specs.ArchLOONGARCH64, specs.ArchM68K, specs.ArchMIPS, specs.ArchMIPS64,
		specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchPARISC,
		specs.ArchPARISC64, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchRISCV64, specs.ArchS390,
		specs.ArchS390X, specs.ArchSH, specs.ArchSHEB, specs.ArchX32, specs.ArchX86, specs.ArchX86_64,
	} {
		a, err := parseArch(name)
		if err != nil {
			continue
		}
		// An architecture newer than this libseccomp resolves nothing.
		if _, err := libseccomp.GetSyscallFromNameByArch("read", a); err == nil {
			f.Archs = append(f.Archs, string(name))
		}
	}
	for _, flag := range []struct {
		name specs.LinuxSeccompFlag
		bits uint
	}{
		{flagTsync, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
		{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{specs.LinuxSeccompFlagWaitKillableRecv, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
	} {
		f.KnownFlags = append(f.KnownFlags, string(flag.name))
		if kernelSupportsFlags(flag.bits) {
			f.SupportedFlags = append(f.SupportedFlags, string(flag.name))
		}
	}
	return f
}
