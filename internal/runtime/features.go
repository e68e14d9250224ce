package runtime

import (
	"fmt"
	"os"
	"sort"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/runtime/nsinit"
	"github.com/berth-project/berth/internal/seccomp"
)

// Config returns the spec the container was created with.
func (c *Container) Config() (*specs.Spec, error) {
	spec, err := c.state.spec()
	if err == nil && (spec == nil || spec.Process == nil) {
		err = fmt.Errorf("container %s: its state holds no spec with a process: %w", c.state.ID, errdefs.ErrDataLoss)
	}
	return spec, err
}

// Features describes what this runtime supports, in the runtime spec's
// features.md format ("berth-runtime features").
func Features() *features.Features {
	yes := true
	no := false
	var caps []string
	for _, c := range capability.ListKnown() {
		caps = append(caps, "CAP_"+upper(c.String()))
	}
	var mountOpts []string
	for o := range nsinit.MountOptionNames() {
		mountOpts = append(mountOpts, o)
	}
	sort.Strings(mountOpts)
	_, apparmor := os.Stat("/sys/kernel/security/apparmor")
	_, selinux := os.Stat("/sys/fs/selinux/enforce")
	aa := apparmor == nil
	se := selinux == nil
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mountOpts,
		Linux: &features.Linux{
			Namespaces:      []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities:    caps,
			Cgroup:          &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no, Rdma: &no},
			Seccomp:         seccomp.Features(),
			Apparmor:        &features.Apparmor{Enabled: &aa},
			Selinux:         &features.Selinux{Enabled: &se},
			IntelRdt:        &features.IntelRdt{Enabled: &no},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &no}},
		},
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
