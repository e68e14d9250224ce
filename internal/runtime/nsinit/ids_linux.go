//go:build !386 && !arm

package nsinit

import "golang.org/x/sys/unix"

// The credential syscalls with 32-bit ids.
const (
	sysSetresuid = unix.SYS_SETRESUID
	sysSetresgid = unix.SYS_SETRESGID
	sysSetgroups = unix.SYS_SETGROUPS
)
