//go:build cgo

package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// flagTsync is accepted in flags by the runtime specification's prose but
// has no constant in specs-go.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// maxArgs is the number of syscall arguments seccomp can match on.
const maxArgs = 6

// optimizeAbove is the number of rules above which libseccomp is asked for a
// binary tree instead of a linear list of syscall checks.
const optimizeAbove = 32

// arch is one validated entry of architectures[].
type arch struct {
	name specs.Arch
	scmp libseccomp.ScmpArch
}

// rule is one validated entry of syscalls[], before names are resolved.
type rule struct {
	names  []string
	action libseccomp.ScmpAction
	conds  []libseccomp.ScmpCondition
	// split asks for every condition to be a rule of its own, because an
	// argument index appears more than once (see the package doc).
	split bool
}

// Compile validates an OCI seccomp configuration and compiles it into a BPF
// program with libseccomp. It returns nil, nil when c is nil, or when it has
// neither a default action nor syscalls (seccomp is then not used, as in
// runc).
//
// Errors about the configuration are of class errdefs.ErrInvalidArgument;
// a valid configuration that this kernel or libseccomp cannot apply (a flag
// or an architecture they do not know) gives errdefs.ErrNotImplemented.
// Compile probes the kernel for flag support, so it must run on the host
// that will load the program.
func Compile(c *specs.LinuxSeccomp) (*Program, error) {
	if c == nil || (c.DefaultAction == "" && len(c.Syscalls) == 0) {
		return nil, nil
	}

	defAct, err := parseAction(c.DefaultAction)
	if err != nil {
		return nil, err
	}
	if defAct == libseccomp.ActNotify {
		return nil, invalidf("seccomp: SCMP_ACT_NOTIFY cannot be used as default action")
	}
	defAct, err = withErrno(defAct, c.DefaultErrnoRet)
	if err != nil {
		return nil, invalidf("seccomp: defaultErrnoRet: %w", err)
	}

	arches := make([]arch, 0, len(c.Architectures))
	for _, name := range c.Architectures {
		a, err := parseArch(name)
		if err != nil {
			return nil, err
		}
		arches = append(arches, arch{name: name, scmp: a})
	}

	rules := make([]rule, 0, len(c.Syscalls))
	notify := false
	for i, sc := range c.Syscalls {
		r, err := parseRule(i, sc)
		if err != nil {
			return nil, err
		}
		if r.action == libseccomp.ActNotify {
			notify = true
		}
		rules = append(rules, r)
	}

	if c.ListenerMetadata != "" && c.ListenerPath == "" {
		return nil, invalidf("seccomp: listenerMetadata is set but listenerPath is not")
	}
	if notify && c.ListenerPath == "" {
		return nil, invalidf("seccomp: SCMP_ACT_NOTIFY is used but listenerPath is not set")
	}

	flags, err := parseFlags(c.Flags, notify)
	if err != nil {
		return nil, err
	}

	insns, err := build(defAct, arches, rules)
	if err != nil {
		return nil, err
	}
	if stub := enosysStub(defAct, c.DefaultErrnoRet, arches, rules); len(stub) > 0 {
		insns = append(stub, insns...)
	}
	if len(insns)/sockFilterSize > unix.BPF_MAXINSNS {
		return nil, invalidf("seccomp: the filter has %d instructions, more than the kernel's limit of %d",
			len(insns)/sockFilterSize, unix.BPF_MAXINSNS)
	}
	return &Program{Filter: insns, Flags: flags, Notify: notify}, nil
}

// parseRule validates syscalls[i].
func parseRule(i int, sc specs.LinuxSyscall) (rule, error) {
	if len(sc.Names) == 0 {
		return rule{}, invalidf("seccomp: syscalls[%d]: names is empty", i)
	}
	for _, name := range sc.Names {
		if name == "" {
			return rule{}, invalidf("seccomp: syscalls[%d]: empty syscall name", i)
		}
	}
	name := sc.Names[0]

	act, err := parseAction(sc.Action)
	if err != nil {
		return rule{}, err
	}
	act, err = withErrno(act, sc.ErrnoRet)
	if err != nil {
		return rule{}, invalidf("seccomp: syscall %q: errnoRet: %w", name, err)
	}
	if act == libseccomp.ActNotify {
		for _, n := range sc.Names {
			if n == "write" {
				return rule{}, invalidf("seccomp: syscall %q: SCMP_ACT_NOTIFY cannot be used for the write syscall", n)
			}
		}
	}

	r := rule{names: sc.Names, action: act}
	var seen [maxArgs]bool
	for _, a := range sc.Args {
		op, err := parseOp(a.Op)
		if err != nil {
			return rule{}, invalidf("seccomp: syscall %q: %w", name, err)
		}
		if a.Index >= maxArgs {
			return rule{}, invalidf("seccomp: syscall %q: argument index %d out of range (0-%d)", name, a.Index, maxArgs-1)
		}
		if seen[a.Index] {
			r.split = true
		}
		seen[a.Index] = true
		// For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the
		// value the masked argument must equal; the other operators
		// ignore valueTwo.
		cond, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return rule{}, invalidf("seccomp: syscall %q: argument %d: %w", name, a.Index, err)
		}
		r.conds = append(r.conds, cond)
	}
	return r, nil
}

// build makes the libseccomp filter and exports it as BPF.
func build(defAct libseccomp.ScmpAction, arches []arch, rules []rule) ([]byte, error) {
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: create filter: %w", err)
	}
	defer filter.Release()

	// The native architecture is in every new filter; adding it again is
	// a no-op.
	for _, a := range arches {
		if err := filter.AddArch(a.scmp); err != nil {
			if errors.Is(err, unix.EDOM) {
				return nil, invalidf("seccomp: architecture %q: byte order differs from the native architecture", a.name)
			}
			return nil, unsupportedf("seccomp: architecture %q: %w", a.name, err)
		}
	}

	nrules := 0
	for _, r := range rules {
		nrules += len(r.names)
	}
	if nrules > optimizeAbove {
		// Only an optimisation: a libseccomp without it (< 2.5) still
		// produces a correct, longer program.
		_ = filter.SetOptimize(2)
	}

	for _, r := range rules {
		if r.action == defAct {
			// Redundant, and libseccomp refuses it.
			continue
		}
		for _, name := range r.names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				// Unknown to libseccomp: probably newer than it,
				// so the kernel may not have it either.
				continue
			}
			if err := addRule(filter, nr, r); err != nil {
				return nil, invalidf("seccomp: syscall %q: add rule: %w", name, err)
			}
		}
	}
	return exportBPF(filter)
}

func addRule(filter *libseccomp.ScmpFilter, nr libseccomp.ScmpSyscall, r rule) error {
	switch {
	case len(r.conds) == 0:
		return filter.AddRule(nr, r.action)
	case r.split:
		for _, cond := range r.conds {
			if err := filter.AddRuleConditional(nr, r.action, []libseccomp.ScmpCondition{cond}); err != nil {
				return err
			}
		}
		return nil
	default:
		return filter.AddRuleConditional(nr, r.action, r.conds)
	}
}

// exportBPF returns the filter's BPF program. seccomp_export_bpf_mem needs
// libseccomp 2.6, so the program goes through a memfd.
func exportBPF(filter *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("berth-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export filter: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	if len(b) == 0 || len(b)%sockFilterSize != 0 {
		return nil, fmt.Errorf("seccomp: export filter: libseccomp produced %d bytes", len(b))
	}
	return b, nil
}

// parseAction maps an SCMP_ACT_* name to its libseccomp action, without
// return data.
func parseAction(a specs.LinuxSeccompAction) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno, nil
	case specs.ActTrace:
		return libseccomp.ActTrace, nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, invalidf("seccomp: unknown action %q", a)
}

// withErrno sets the return data of SCMP_ACT_ERRNO and SCMP_ACT_TRACE:
// errnoRet, or EPERM when it is nil. The specification requires an error
// when errnoRet is given for any other action.
func withErrno(act libseccomp.ScmpAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	if act != libseccomp.ActErrno && act != libseccomp.ActTrace {
		if errnoRet != nil {
			return act, fmt.Errorf("not supported by action %s", actionName(act))
		}
		return act, nil
	}
	code := uint(unix.EPERM)
	if errnoRet != nil {
		code = *errnoRet
	}
	// SECCOMP_RET_DATA has 16 bits; libseccomp takes errno values below
	// MAX_ERRNO (4095) only.
	limit := uint(0xffff)
	if act == libseccomp.ActErrno {
		limit = 4094
	}
	if code > limit {
		return act, fmt.Errorf("%d out of range (0-%d)", code, limit)
	}
	return act.SetReturnCode(int16(uint16(code))), nil
}

// actionName returns the SCMP_ACT_* name of a libseccomp action.
func actionName(act libseccomp.ScmpAction) string {
	switch act & 0xffff {
	case libseccomp.ActKillThread:
		return string(specs.ActKillThread)
	case libseccomp.ActKillProcess:
		return string(specs.ActKillProcess)
	case libseccomp.ActTrap:
		return string(specs.ActTrap)
	case libseccomp.ActErrno:
		return string(specs.ActErrno)
	case libseccomp.ActTrace:
		return string(specs.ActTrace)
	case libseccomp.ActAllow:
		return string(specs.ActAllow)
	case libseccomp.ActLog:
		return string(specs.ActLog)
	case libseccomp.ActNotify:
		return string(specs.ActNotify)
	}
	return fmt.Sprintf("%#x", uint(act))
}

// parseOp maps an SCMP_CMP_* name to its libseccomp operator.
func parseOp(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("unknown operator %q", op)
}

// parseArch maps an SCMP_ARCH_* name to its libseccomp architecture.
func parseArch(a specs.Arch) (libseccomp.ScmpArch, error) {
	switch a {
	case specs.ArchX86:
		return libseccomp.ArchX86, nil
	case specs.ArchX86_64:
		return libseccomp.ArchAMD64, nil
	case specs.ArchX32:
		return libseccomp.ArchX32, nil
	case specs.ArchARM:
		return libseccomp.ArchARM, nil
	case specs.ArchAARCH64:
		return libseccomp.ArchARM64, nil
	case specs.ArchMIPS:
		return libseccomp.ArchMIPS, nil
	case specs.ArchMIPS64:
		return libseccomp.ArchMIPS64, nil
	case specs.ArchMIPS64N32:
		return libseccomp.ArchMIPS64N32, nil
	case specs.ArchMIPSEL:
		return libseccomp.ArchMIPSEL, nil
	case specs.ArchMIPSEL64:
		return libseccomp.ArchMIPSEL64, nil
	case specs.ArchMIPSEL64N32:
		return libseccomp.ArchMIPSEL64N32, nil
	case specs.ArchPPC:
		return libseccomp.ArchPPC, nil
	case specs.ArchPPC64:
		return libseccomp.ArchPPC64, nil
	case specs.ArchPPC64LE:
		return libseccomp.ArchPPC64LE, nil
	case specs.ArchS390:
		return libseccomp.ArchS390, nil
	case specs.ArchS390X:
		return libseccomp.ArchS390X, nil
	case specs.ArchPARISC:
		return libseccomp.ArchPARISC, nil
	case specs.ArchPARISC64:
		return libseccomp.ArchPARISC64, nil
	case specs.ArchRISCV64:
		return libseccomp.ArchRISCV64, nil
	case specs.ArchLOONGARCH64:
		return libseccomp.ArchLOONGARCH64, nil
	case specs.ArchM68K:
		return libseccomp.ArchM68K, nil
	case specs.ArchSH:
		return libseccomp.ArchSH, nil
	case specs.ArchSHEB:
		return libseccomp.ArchSHEB, nil
	}
	return libseccomp.ArchInvalid, invalidf("seccomp: unknown architecture %q", a)
}

// parseFlags maps flags to SECCOMP_FILTER_FLAG_* bits and checks that the
// kernel accepts them. nil (as opposed to empty) flags mean
// SECCOMP_FILTER_FLAG_SPEC_ALLOW when the kernel has it, as in runc.
func parseFlags(names []specs.LinuxSeccompFlag, notify bool) (uint, error) {
	if names == nil {
		if kernelSupportsFlags(unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
			return unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, nil
		}
		return 0, nil
	}
	var flags uint
	for _, name := range names {
		var flag uint
		switch name {
		case flagTsync:
			flag = unix.SECCOMP_FILTER_FLAG_TSYNC
		case specs.LinuxSeccompFlagLog:
			flag = unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flag = unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			if !notify {
				// It only changes how a listener's notifications
				// are waited for, and the kernel refuses it
				// without a listener.
				continue
			}
			flag = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		default:
			return 0, invalidf("seccomp: unknown flag %q", name)
		}
		if !kernelSupportsFlags(loadFlags(flag, notify)) {
			return 0, unsupportedf("seccomp: flag %q is not supported by the running kernel", name)
		}
		flags |= flag
	}
	return flags, nil
}

// kernelSupportsFlags reports whether seccomp(2) accepts flags, without
// installing anything: the kernel checks the flags before it reads the
// program, so a NULL program fails with EFAULT exactly when the flags are
// valid.
func kernelSupportsFlags(flags uint) bool {
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), 0)
	return errno == unix.EFAULT
}
