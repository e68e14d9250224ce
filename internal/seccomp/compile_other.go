//go:build !linux || !cgo

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Compile compiles an OCI seccomp configuration into a BPF program. It needs
// Linux and cgo (libseccomp); this build has neither, so it fails for any
// configuration that asks for seccomp.
func Compile(c *specs.LinuxSeccomp) (*Program, error) {
	if c == nil || (c.DefaultAction == "" && len(c.Syscalls) == 0) {
		return nil, nil
	}
	return nil, unsupportedf("seccomp: compile: this build has no libseccomp (linux and cgo are required)")
}

// Features describes the seccomp support of this build: none.
func Features() *features.Seccomp {
	enabled := false
	return &features.Seccomp{Enabled: &enabled}
}
