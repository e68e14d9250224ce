//go:build 386 || arm

package nsinit

import "golang.org/x/sys/unix"

// The credential syscalls with 32-bit ids (the plain ones take 16-bit ids
// on these architectures).
const (
	sysSetresuid = unix.SYS_SETRESUID32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetgroups = unix.SYS_SETGROUPS32
)
