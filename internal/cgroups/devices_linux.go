package cgroups

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setDevicesV1 makes a v1 devices cgroup hold the effective rules of list.
// When the cgroup already denies by default and so does the target, only
// the differences are written, so a running container never briefly loses
// a device it keeps (an update); otherwise the list is reset with "a"
// first, which is what happens on a new cgroup.
func setDevicesV1(dir string, list []specs.LinuxDeviceCgroup) error {
	target, err := computeDeviceRules(list)
	if err != nil {
		return err
	}
	cur, err := readFile(dir, "devices.list")
	if err != nil {
		return err
	}
	curRules, denyMode, perr := parseDevicesList(cur)
	if !target.defaultAllow && denyMode && perr == nil {
		// Allow first: a device kept under a different rule (a wildcard
		// replacing a specific entry, or the reverse) stays usable
		// throughout. Meanwhile the container has at most the union of
		// the old and new lists.
		for _, t := range target.exceptions {
			if err := writeFile(dir, "devices.allow", t.String()); err != nil {
				return err
			}
		}
		for _, c := range curRules {
			var keep uint8
			for _, t := range target.exceptions {
				if t.sameDevices(c) {
					keep = t.access
				}
			}
			if drop := c.access &^ keep; drop != 0 {
				c.access = drop
				if err := writeFile(dir, "devices.deny", c.String()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	reset, except := "devices.deny", "devices.allow"
	if target.defaultAllow {
		reset, except = "devices.allow", "devices.deny"
	}
	if err := writeFile(dir, reset, "a"); err != nil {
		return err
	}
	for _, t := range target.exceptions {
		if err := writeFile(dir, except, t.String()); err != nil {
			return err
		}
	}
	return nil
}

// deviceProgramName marks the device filters this package attaches, so a
// later Set replaces them and leaves other programs alone.
const deviceProgramName = "berth_devices"

// setDevicesV2 compiles list into an eBPF device filter and attaches it to
// the cgroup with BPF_F_ALLOW_MULTI (the attachment outlives this process),
// then detaches the filters a previous Set attached. Between the two steps
// both filters apply, which can only deny more, never allow more.
func setDevicesV2(dir string, list []specs.LinuxDeviceCgroup) error {
	rules, err := computeDeviceRules(list)
	if err != nil {
		return err
	}
	insts, err := deviceFilterProgram(rules)
	if err != nil {
		return err
	}
	prog, err := bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, insts, "Apache", deviceProgramName)
	if err != nil {
		return fmt.Errorf("load device filter: %w", err)
	}
	defer unix.Close(prog)
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)
	old, err := bpfProgQuery(fd, unix.BPF_CGROUP_DEVICE)
	if err != nil {
		return fmt.Errorf("query device filters of %s: %w", dir, err)
	}
	if err := bpfProgAttach(fd, prog, unix.BPF_CGROUP_DEVICE, unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		if err := detachDeviceProgram(fd, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replace device filter of %s: %w", dir, err)
	}
	return nil
}

// deviceProgramIsOurs opens program id and reports whether it is one of
// our device filters; if so, it returns the program's file descriptor,
// which the caller closes. A program gone in the meantime is not ours.
func deviceProgramIsOurs(id uint32) (int, bool, error) {
	p, err := bpfProgGetFDByID(id)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, false, nil
		}
		return -1, false, err
	}
	name, err := bpfProgName(p)
	if err != nil || name != deviceProgramName {
		unix.Close(p)
		if err != nil {
			return -1, false, fmt.Errorf("inspect program %d: %w", id, err)
		}
		return -1, false, nil
	}
	return p, true, nil
}

// detachDeviceProgram detaches program id from the cgroup fd if it is one
// of ours.
func detachDeviceProgram(fd int, id uint32) error {
	p, ours, err := deviceProgramIsOurs(id)
	if err != nil || !ours {
		return err
	}
	defer unix.Close(p)
	err = bpfProgDetach(fd, p, unix.BPF_CGROUP_DEVICE)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("detach program %d: %w", id, err)
	}
	return nil
}
