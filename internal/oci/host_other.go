//go:build !linux

package oci

import (
	"fmt"
	"runtime"

	"github.com/berth-project/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Generate needs Linux: these stubs keep the package building elsewhere.

func errNotLinux(what string) error {
	return fmt.Errorf("%s on %s: %w", what, runtime.GOOS, errdefs.ErrNotImplemented)
}

func kernelVersion() (int, int, error) { return 0, 0, errNotLinux("kernel version") }

func cgroup2Only() bool { return false }

func apparmorEnabled() bool { return false }

func selinuxEnabled() bool { return false }

func readInRoot(root, path string) ([]byte, error) {
	return nil, errNotLinux("read " + path + " in a rootfs")
}

func devicesFromPath(onHost, inContainer, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	return nil, nil, errNotLinux("add device " + onHost)
}

func hostDevices() ([]specs.LinuxDevice, error) { return nil, errNotLinux("list host devices") }

func blockDevice(path string) (int64, int64, error) {
	return 0, 0, errNotLinux("stat block device " + path)
}

func hostHostname() string { return "" }
