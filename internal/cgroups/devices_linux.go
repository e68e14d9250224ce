package cgroups

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
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
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         deviceProgramName,
		Type:         ebpf.CGroupDevice,
		License:      "Apache",
		Instructions: insts,
	})
	if err != nil {
		return fmt.Errorf("load device filter: %w", err)
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("query device filters of %s: %w", dir, err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, ap := range old.Programs {
		if err := detachDeviceProgram(fd, ap.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replace device filter of %s: %w", dir, err)
	}
	return nil
}

// detachDeviceProgram detaches program id from the cgroup fd if it is one
// of ours.
func detachDeviceProgram(fd int, id ebpf.ProgramID) error {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("open program %d: %w", id, err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return fmt.Errorf("inspect program %d: %w", id, err)
	}
	if info.Name != deviceProgramName {
		return nil
	}
	err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("detach program %d: %w", id, err)
	}
	return nil
}
