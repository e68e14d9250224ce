//go:build !linux

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Load installs the program on the calling thread. seccomp is Linux only.
func (p *Program) Load() (notifyFd int, err error) {
	return -1, unsupportedf("seccomp: load: not supported on this platform")
}

// SendListener hands a seccomp listener fd to a seccomp agent. seccomp is
// Linux only.
func SendListener(listenerPath string, st specs.ContainerProcessState, fd int) error {
	return unsupportedf("seccomp: send listener: not supported on this platform")
}

// CompileCached is Compile; there is no cache on this platform.
func CompileCached(c *specs.LinuxSeccomp, dir string) (*Program, error) {
	return Compile(c)
}
