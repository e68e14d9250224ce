package seccomp

// This file runs in the container's init process: keep it free of cgo and
// libseccomp, and of anything that allocates more than the program itself.

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs the program on the calling OS thread with
// seccomp(SECCOMP_SET_MODE_FILTER), adding SECCOMP_FILTER_FLAG_NEW_LISTENER
// when p.Notify is set (and SECCOMP_FILTER_FLAG_TSYNC_ESRCH when TSYNC is
// also set, as the kernel requires).
//
// The caller must have locked its goroutine to the OS thread
// (runtime.LockOSThread) and must either have set no_new_privs on that thread
// (prctl(PR_SET_NO_NEW_PRIVS, 1)) or hold CAP_SYS_ADMIN in its user
// namespace; otherwise the kernel refuses the filter with EACCES. Without
// SECCOMP_FILTER_FLAG_TSYNC only the calling thread is filtered, which is
// what init wants: it calls execve right after, and execve leaves a single
// thread that carries the filter.
//
// Load returns the listener fd when p.Notify is set, and -1 otherwise. The
// kernel opens the listener with O_CLOEXEC, so it does not leak into the
// container process.
//
// Once a filter that notifies is loaded, every syscall it notifies blocks the
// filtered thread until an agent answers, and the agent only gets the fd
// after init has handed it to its parent. So init must hand it over with a
// syscall the profile cannot notify: Compile refuses SCMP_ACT_NOTIFY on
// write(2), as runc does, whose init writes the fd number and whose parent
// takes the fd with pidfd_getfd(2). Without TSYNC, a goroutine other than the
// caller's runs on unfiltered threads and may hand the fd over with any
// syscall.
func (p *Program) Load() (notifyFd int, err error) {
	if p == nil {
		return -1, invalidf("seccomp: load: nil program")
	}
	n := len(p.Filter) / sockFilterSize
	if len(p.Filter)%sockFilterSize != 0 || n == 0 || n > unix.BPF_MAXINSNS {
		return -1, invalidf("seccomp: load: invalid program of %d bytes", len(p.Filter))
	}
	insns := decodeInsns(p.Filter)
	prog := unix.SockFprog{Len: uint16(n), Filter: &insns[0]}

	flags := loadFlags(p.Flags, p.Notify)
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	switch {
	case errno == unix.EACCES:
		return -1, fmt.Errorf("seccomp: load filter: %w (set no_new_privs or hold CAP_SYS_ADMIN)", errno)
	case errno != 0:
		return -1, fmt.Errorf("seccomp: load filter (flags %#x): %w", flags, errno)
	case flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && !p.Notify && r != 0:
		// Without NEW_LISTENER, a TSYNC failure is reported as the id of
		// the thread that could not be synchronised.
		return -1, fmt.Errorf("seccomp: load filter: thread %d could not be synchronised", r)
	}
	if p.Notify {
		return int(r), nil
	}
	return -1, nil
}

// loadFlags returns the flags passed to seccomp(2) for a program.
func loadFlags(flags uint, notify bool) uint {
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	}
	return flags
}

// decodeInsns decodes struct sock_filter instructions in host byte order; a
// trailing partial instruction is ignored.
func decodeInsns(b []byte) []unix.SockFilter {
	insns := make([]unix.SockFilter, len(b)/sockFilterSize)
	for i := range insns {
		in := b[i*sockFilterSize : (i+1)*sockFilterSize]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(in[0:2]),
			Jt:   in[2],
			Jf:   in[3],
			K:    binary.NativeEndian.Uint32(in[4:8]),
		}
	}
	return insns
}
