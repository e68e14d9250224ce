package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// errNotDevice is returned by deviceAt for a path that exists but is not a
// device node (or FIFO).
var errNotDevice = errors.New("not a device node")

// deviceAt describes the device node at path (not following a final
// symlink) as a spec device at the same path: type, numbers, permission
// bits and owner.
func deviceAt(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return specs.LinuxDevice{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFIFO:
		typ = "p"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     path,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// devicesFromPath returns the spec devices and device cgroup rules for
// --device onHost:inContainer:perms, as Docker does: a symlink on the host
// is resolved first; a device node maps to inContainer; a directory maps
// every device node below it to the same place under inContainer.
func devicesFromPath(onHost, inContainer, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	resolved := onHost
	if fi, err := os.Lstat(onHost); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if p, err := filepath.EvalSymlinks(onHost); err == nil {
			resolved = p
		}
	}
	d, err := deviceAt(resolved)
	if err == nil {
		d.Path = inContainer
		return []specs.LinuxDevice{d}, []specs.LinuxDeviceCgroup{allowRule(d, perms)}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	if errors.Is(err, errNotDevice) {
		if fi, statErr := os.Stat(resolved); statErr == nil && fi.IsDir() {
			_ = filepath.WalkDir(resolved, func(p string, _ fs.DirEntry, _ error) error {
				d, err := deviceAt(p)
				if err != nil {
					return nil // not a device: skip it, as Docker does
				}
				d.Path = filepath.Join(inContainer, strings.TrimPrefix(p, resolved))
				devs = append(devs, d)
				rules = append(rules, allowRule(d, perms))
				return nil
			})
		}
	}
	if len(devs) > 0 {
		return devs, rules, nil
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return nil, nil, invalidf("error gathering device information while adding custom device %q: %v", onHost, err)
}

// allowRule is the device cgroup rule that lets the container use d with
// the access perms.
func allowRule(d specs.LinuxDevice, perms string) specs.LinuxDeviceCgroup {
	major, minor := d.Major, d.Minor
	return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: perms}
}

// hostDevices returns every device node under /dev for a privileged
// container, the way Docker walks it: the pts, shm, fd and mqueue
// directories (mounted by the runtime) and console are skipped, as are
// FIFOs, symlinks and nodes that vanish during the walk.
func hostDevices() ([]specs.LinuxDevice, error) {
	return devicesUnder("/dev")
}

func devicesUnder(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list host devices: %w", err)
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := devicesUnder(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case e.Name() == "console":
			continue
		default:
			d, err := deviceAt(p)
			if errors.Is(err, errNotDevice) || errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list host devices: %w", err)
			}
			if d.Type == "p" {
				continue
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// blockDevice returns the major and minor numbers of the block device at
// path (following symlinks), for the blkio settings.
func blockDevice(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, fmt.Errorf("%s is not a block device", path)
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))), nil
}
