//go:build linux && cgo

package seccomp

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Fatal("seccomp not enabled in a cgo build")
	}
	// Everything Features lists, Compile accepts.
	for _, a := range f.Actions {
		c := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.LinuxSeccompAction(a)}}}
		if a == string(specs.ActAllow) {
			c.DefaultAction = specs.ActErrno
		}
		if _, err := Compile(c); err != nil {
			t.Errorf("action %s: %v", a, err)
		}
	}
	for _, op := range f.Operators {
		if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
			Names: []string{"getppid"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 3, Op: specs.LinuxSeccompOperator(op)}},
		}}}); err != nil {
			t.Errorf("operator %s: %v", op, err)
		}
	}
	if len(f.Actions) != 9 || len(f.Operators) != 7 || len(f.KnownFlags) != 4 {
		t.Errorf("%d actions, %d operators, %d flags; want 9, 7, 4", len(f.Actions), len(f.Operators), len(f.KnownFlags))
	}
	native := nativeArch(t)
	found := false
	for _, a := range f.Archs {
		arch, err := parseArch(specs.Arch(a))
		if err != nil {
			t.Errorf("arch %s: %v", a, err)
		}
		found = found || arch == native
	}
	if !found {
		t.Errorf("archs %v miss the native architecture", f.Archs)
	}
	for _, flag := range f.SupportedFlags {
		if !slices.Contains(f.KnownFlags, flag) {
			t.Errorf("supported flag %s is not known", flag)
		}
		c := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a",
			Flags:    []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(flag)},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}}
		if _, err := Compile(c); err != nil {
			t.Errorf("supported flag %s: %v", flag, err)
		}
	}
}
