// Package seccomp turns an OCI seccomp configuration into a classic BPF
// program in the runtime parent (with libseccomp), and installs that program
// in the container's init process right before execve (raw seccomp(2), no
// libseccomp).
//
//	runtime parent                                  container init
//	--------------                                  --------------
//	p, err := Compile(spec.Linux.Seccomp)
//	p as JSON ──────────── sync socket ──────────▶  LockOSThread, no_new_privs
//	                                                fd, err := p.Load()
//	fd ◀───────────────── sync socket ────────────  (p.Notify) hand fd over
//	SendListener(listenerPath, state, fd)
//	        └──▶ seccomp agent                      execve(user process)
//
// Compile does all the validation, so that init only has bytes to hand to the
// kernel. Load lives in a file that does not use cgo, and the package has no
// package-level variables or init functions: it is linked into
// berth-runtime, which starts for every container. (libseccomp-golang, which
// Compile needs, has an init function that probes the kernel's seccomp API
// level with a few seccomp(2) calls.)
//
// Behaviour follows runc where the OCI specification leaves room:
//   - a syscall name that libseccomp does not know is skipped;
//   - a rule whose action (errno included) equals the default action is skipped;
//   - when a syscall has several unconditional rules, the first one wins;
//   - args on different indexes of one rule are ANDed; when an index appears
//     more than once in a rule, every arg becomes a rule of its own (ORed);
//   - SCMP_CMP_MASKED_EQ takes the mask in value and the expected masked
//     argument in valueTwo;
//   - SCMP_ACT_NOTIFY is refused as the default action and on write(2);
//   - listenerPath is ignored when no rule uses SCMP_ACT_NOTIFY;
//   - when flags is absent (nil, not empty) SECCOMP_FILTER_FLAG_SPEC_ALLOW is
//     used if the kernel supports it;
//   - when the default action is not a permissive one (allow, log, trace), a
//     stub in front of the filter makes syscalls newer than every syscall the
//     profile names fail with ENOSYS, so that libc falls back to older ones
//     (for the native architecture too when architectures does not list it).
//
// Where runc is lax or silent, the specification decides: errnoRet on an action
// other than SCMP_ACT_ERRNO or SCMP_ACT_TRACE, and listenerMetadata without
// listenerPath, are errors. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is dropped
// when nothing notifies, since the kernel refuses it without a listener.
package seccomp

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// Program is a compiled seccomp filter, ready to be installed by Load. It is
// built by Compile in the runtime parent and travels to the container's init
// process as JSON.
type Program struct {
	// Filter is the classic BPF program: an array of struct sock_filter
	// (8 bytes each: code u16, jt u8, jf u8, k u32) in host byte order.
	Filter []byte `json:"filter"`
	// Flags are the SECCOMP_FILTER_FLAG_* flags passed to seccomp(2).
	// SECCOMP_FILTER_FLAG_NEW_LISTENER is not among them: Load adds it when
	// Notify is set.
	Flags uint `json:"flags,omitempty"`
	// Notify reports that the configuration uses SCMP_ACT_NOTIFY: Load then
	// returns a listener fd, which the runtime hands to the seccomp agent
	// named by listenerPath (see SendListener).
	Notify bool `json:"notify,omitempty"`
}

// sockFilterSize is sizeof(struct sock_filter).
const sockFilterSize = 8

// Len returns the number of BPF instructions in the program.
func (p *Program) Len() int { return len(p.Filter) / sockFilterSize }

// classified is an error that reads as err and also matches class, one of the
// errdefs classes, with errors.Is.
type classified struct {
	err   error
	class error
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.err, e.class} }

// unsupportedf returns an error of class errdefs.ErrNotImplemented: the
// configuration is valid but this host (kernel or libseccomp) cannot do it.
func unsupportedf(format string, args ...any) error {
	return &classified{err: fmt.Errorf(format, args...), class: errdefs.ErrNotImplemented}
}
