//go:build cgo

package seccomp

import (
	"encoding/binary"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The ENOSYS stub.
//
// A profile lists the syscalls it knows. A syscall added to the kernel after
// the profile was written gets the default action, typically EPERM, and libc
// then does not fall back to the older syscall it would use on an older
// kernel (it does that on ENOSYS only). So, like runc, when the default
// action denies, a short program in front of libseccomp's makes every
// syscall whose number is above the highest one the profile names fail with
// ENOSYS. For each architecture of the filter:
//
//	    ld  [4]                      ; arch (once, at the top)
//	    jeq #AUDIT_ARCH, 0, next     ; not this architecture: next block
//	    ld  [0]                      ; syscall number
//	    jeq #0, enosys               ; s390 and s390x only: the multiplexer
//	    jgt #max, enosys, filter
//	enosys:
//	    ret #SECCOMP_RET_ERRNO|ENOSYS
//	filter:
//	    ja  <libseccomp's program>
//	next:
//
// x86_64 and x32 share AUDIT_ARCH_X86_64; their block first tests the x32 bit
// (1<<30) of the syscall number and then compares with the highest syscall
// of the matching ABI. An architecture for which the profile names no
// syscall gets no block. Syscalls missing from the profile below the highest
// one keep the default action.

// x32SyscallBit marks x32 syscall numbers on AUDIT_ARCH_X86_64.
const x32SyscallBit = 0x40000000

// noLimit is a syscall number limit that nothing exceeds.
const noLimit = 0xffffffff

// stubArch is one block of the stub.
type stubArch struct {
	audit uint32
	// max is the highest syscall number the profile names; on
	// AUDIT_ARCH_X86_64 it is for x86_64 and maxX32 for x32 (noLimit for
	// an ABI not in the filter).
	max, maxX32 uint32
	s390        bool
}

// enosysStub returns the stub to put in front of the filter, or nil when the
// default action already allows, or already fails with ENOSYS.
func enosysStub(defAct libseccomp.ScmpAction, defErrno *uint, arches []arch, rules []rule) []byte {
	switch defAct & 0xffff {
	case libseccomp.ActAllow, libseccomp.ActLog, libseccomp.ActTrace:
		// A tracer handles new syscalls itself.
		return nil
	case libseccomp.ActErrno:
		if defErrno != nil && *defErrno == uint(unix.ENOSYS) {
			return nil
		}
	}

	// The native architecture first: it is the one that runs.
	all := make([]libseccomp.ScmpArch, 0, len(arches)+1)
	if native, err := libseccomp.GetNativeArch(); err == nil {
		all = append(all, native)
	}
	for _, a := range arches {
		all = append(all, a.scmp)
	}

	var blocks []stubArch
	seen := map[libseccomp.ScmpArch]bool{}
	for _, a := range all {
		if seen[a] {
			continue
		}
		seen[a] = true
		audit, ok := auditArch(a)
		if !ok {
			continue
		}
		highest, ok := highestSyscall(a, rules)
		if !ok {
			continue
		}
		i := len(blocks)
		for j := range blocks {
			if blocks[j].audit == audit {
				i = j
			}
		}
		if i == len(blocks) {
			blocks = append(blocks, stubArch{audit: audit, max: noLimit, maxX32: noLimit})
		}
		b := &blocks[i]
		switch a {
		case libseccomp.ArchX32:
			b.maxX32 = highest
		default:
			b.max = highest
		}
		b.s390 = a == libseccomp.ArchS390 || a == libseccomp.ArchS390X
	}
	if len(blocks) == 0 {
		return nil
	}
	return encodeInsns(assembleStub(blocks))
}

// highestSyscall returns the highest syscall number, on arch, of the names
// in rules, and false if arch knows none of them.
func highestSyscall(arch libseccomp.ScmpArch, rules []rule) (uint32, bool) {
	var highest libseccomp.ScmpSyscall
	found := false
	for _, r := range rules {
		for _, name := range r.names {
			nr, err := libseccomp.GetSyscallFromNameByArch(name, arch)
			// Negative numbers are libseccomp's pseudo syscalls:
			// names that exist on another architecture only.
			if err != nil || nr < 0 {
				continue
			}
			if !found || nr > highest {
				highest, found = nr, true
			}
		}
	}
	return uint32(highest), found
}

// assembleStub lays the blocks out, followed directly by the filter.
func assembleStub(blocks []stubArch) []unix.SockFilter {
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgt  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ja   = unix.BPF_JMP | unix.BPF_JA
		ret  = unix.BPF_RET | unix.BPF_K
	)
	enosys := unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)}

	prog := []unix.SockFilter{{Code: ldW, K: 4}}
	var jumps []int // indexes of the "ja filter" instructions
	for _, b := range blocks {
		var body []unix.SockFilter
		body = append(body, unix.SockFilter{Code: ldW, K: 0})
		switch {
		case b.audit == unix.AUDIT_ARCH_X86_64:
			body = append(body,
				unix.SockFilter{Code: jset, K: x32SyscallBit, Jt: 1, Jf: 0},
				unix.SockFilter{Code: jgt, K: b.max, Jt: 1, Jf: 2},
				unix.SockFilter{Code: jgt, K: b.maxX32, Jt: 0, Jf: 1},
			)
		case b.s390:
			body = append(body,
				unix.SockFilter{Code: jeq, K: 0, Jt: 1, Jf: 0},
				unix.SockFilter{Code: jgt, K: b.max, Jt: 0, Jf: 1},
			)
		default:
			body = append(body, unix.SockFilter{Code: jgt, K: b.max, Jt: 0, Jf: 1})
		}
		body = append(body, enosys)
		jumps = append(jumps, len(prog)+1+len(body))
		body = append(body, unix.SockFilter{Code: ja})
		prog = append(prog, unix.SockFilter{Code: jeq, K: b.audit, Jt: 0, Jf: uint8(len(body))})
		prog = append(prog, body...)
	}
	for _, j := range jumps {
		prog[j].K = uint32(len(prog) - j - 1)
	}
	return prog
}

// encodeInsns encodes instructions as struct sock_filter in host byte order.
func encodeInsns(insns []unix.SockFilter) []byte {
	b := make([]byte, 0, len(insns)*sockFilterSize)
	for _, in := range insns {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// auditArch returns the AUDIT_ARCH_* value the kernel puts in
// seccomp_data.arch for a libseccomp architecture.
func auditArch(a libseccomp.ScmpArch) (uint32, bool) {
	switch a {
	case libseccomp.ArchX86:
		return unix.AUDIT_ARCH_I386, true
	case libseccomp.ArchAMD64, libseccomp.ArchX32:
		return unix.AUDIT_ARCH_X86_64, true
	case libseccomp.ArchARM:
		return unix.AUDIT_ARCH_ARM, true
	case libseccomp.ArchARM64:
		return unix.AUDIT_ARCH_AARCH64, true
	case libseccomp.ArchMIPS:
		return unix.AUDIT_ARCH_MIPS, true
	case libseccomp.ArchMIPS64:
		return unix.AUDIT_ARCH_MIPS64, true
	case libseccomp.ArchMIPS64N32:
		return unix.AUDIT_ARCH_MIPS64N32, true
	case libseccomp.ArchMIPSEL:
		return unix.AUDIT_ARCH_MIPSEL, true
	case libseccomp.ArchMIPSEL64:
		return unix.AUDIT_ARCH_MIPSEL64, true
	case libseccomp.ArchMIPSEL64N32:
		return unix.AUDIT_ARCH_MIPSEL64N32, true
	case libseccomp.ArchPPC:
		return unix.AUDIT_ARCH_PPC, true
	case libseccomp.ArchPPC64:
		return unix.AUDIT_ARCH_PPC64, true
	case libseccomp.ArchPPC64LE:
		return unix.AUDIT_ARCH_PPC64LE, true
	case libseccomp.ArchS390:
		return unix.AUDIT_ARCH_S390, true
	case libseccomp.ArchS390X:
		return unix.AUDIT_ARCH_S390X, true
	case libseccomp.ArchPARISC:
		return unix.AUDIT_ARCH_PARISC, true
	case libseccomp.ArchPARISC64:
		return unix.AUDIT_ARCH_PARISC64, true
	case libseccomp.ArchRISCV64:
		return unix.AUDIT_ARCH_RISCV64, true
	case libseccomp.ArchLOONGARCH64:
		return unix.AUDIT_ARCH_LOONGARCH64, true
	case libseccomp.ArchM68K:
		return unix.AUDIT_ARCH_M68K, true
	case libseccomp.ArchSH:
		return unix.AUDIT_ARCH_SHEL, true
	case libseccomp.ArchSHEB:
		return unix.AUDIT_ARCH_SH, true
	}
	return 0, false
}
