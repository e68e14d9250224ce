package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/mountopt"
)

// parseMountOptions splits a local volume's "o" option (comma separated)
// as mount(8) does; "remount" is refused.
func parseMountOptions(o string) (mountopt.Parsed, error) {
	var words []string
	for _, w := range strings.Split(o, ",") {
		switch w {
		case "":
		case "remount":
			return mountopt.Parsed{}, errors.New("mount option remount is not allowed")
		default:
			words = append(words, w)
		}
	}
	return mountopt.Parse(words), nil
}

// isMounted reports whether dir is a mount point.
func isMounted(dir string) (bool, error) {
	ok, err := mountinfo.Mounted(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return ok, err
}

// mountVolume mounts a local volume made with driver options on dir: the
// device of the given type with o's flags and data, or with o=bind a bind
// of the device (a host path).
func mountVolume(dir string, opts map[string]string) error {
	typ, dev := opts["type"], opts["device"]
	mo, err := parseMountOptions(opts["o"])
	if err != nil {
		return fmt.Errorf("error while mounting volume '%s': %w: %w", dir, err, os.ErrInvalid)
	}
	fail := func(flags uintptr, data string, err error) error {
		return fmt.Errorf("error while mounting volume '%s': failed to mount local volume: mount %s:%s, flags: %#x, data: %s: %w", dir, dev, dir, flags, data, err)
	}
	if mo.Flags&unix.MS_BIND != 0 {
		if !filepath.IsAbs(dev) {
			return fail(mo.Flags, "", fmt.Errorf("bind device %q is not an absolute path: %w", dev, os.ErrInvalid))
		}
		bind := unix.MS_BIND | mo.Flags&unix.MS_REC
		if err := unix.Mount(dev, dir, "", bind, ""); err != nil {
			return fail(bind, "", err)
		}
		if rest := mo.Flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unix.Unmount(dir, unix.MNT_DETACH)
				return fail(unix.MS_REMOUNT|unix.MS_BIND|rest, "", err)
			}
		}
	} else {
		data := mo.Data
		if typ == "nfs" || typ == "nfs4" {
			if data, err = resolveAddr(data); err != nil {
				return fail(mo.Flags, mo.Data, err)
			}
		}
		if err := unix.Mount(dev, dir, typ, mo.Flags, data); err != nil {
			return fail(mo.Flags, data, err)
		}
	}
	for _, p := range mo.Propagation {
		if err := unix.Mount("", dir, "", p, ""); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
			return fail(p, "", err)
		}
	}
	return nil
}

// resolveAddr replaces a host name in an nfs addr= option by its address,
// as the kernel's nfs client wants one.
func resolveAddr(data string) (string, error) {
	words := strings.Split(data, ",")
	for i, w := range words {
		host, ok := strings.CutPrefix(w, "addr=")
		if !ok || net.ParseIP(host) != nil {
			continue
		}
		ip, err := net.ResolveIPAddr("ip", host)
		if err != nil {
			return "", fmt.Errorf("resolve nfs server %s: %w", host, err)
		}
		words[i] = "addr=" + ip.String()
	}
	return strings.Join(words, ","), nil
}

// unmountVolume unmounts dir; not mounted is no error, busy falls back to
// a lazy unmount.
func unmountVolume(dir string) error {
	err := unix.Unmount(dir, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		return nil
	}
	return fmt.Errorf("unmount %s: %w", dir, err)
}

// unmountUnder lazily unmounts every mount at or below dir, deepest first,
// so that removing dir never reaches into a mounted filesystem.
func unmountUnder(dir string) error {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].Mountpoint) > len(ms[j].Mountpoint) })
	for _, m := range ms {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

// checkPropagation checks that a bind with shared or slave propagation
// comes from a mount that can propagate (Docker's check, with its words).
func checkPropagation(source, prop string) error {
	var want string
	switch prop {
	case "shared", "rshared":
		want = "a shared mount"
	case "slave", "rslave":
		want = "a shared or slave mount"
	default:
		return nil
	}
	real, err := filepath.EvalSymlinks(source)
	if err != nil {
		return fmt.Errorf("bind source %s: %w", source, err)
	}
	ms, err := mountinfo.GetMounts(mountinfo.ParentsFilter(real))
	if err != nil {
		return fmt.Errorf("bind source %s: %w", source, err)
	}
	var best *mountinfo.Info
	for _, m := range ms {
		if best == nil || len(m.Mountpoint) > len(best.Mountpoint) {
			best = m
		}
	}
	if best == nil {
		return fmt.Errorf("bind source %s: no mount holds it", source)
	}
	shared := strings.Contains(best.Optional, "shared:")
	slave := strings.Contains(best.Optional, "master:")
	if shared || (slave && want != "a shared mount") {
		return nil
	}
	return invalid("path %s is mounted on %s but it is not %s", source, best.Mountpoint, want)
}

// recursiveReadOnlySupported reports whether the kernel has
// mount_setattr(2), which recursive read-only binds (rro) need.
var recursiveReadOnlySupported = sync.OnceValue(func() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
})

// devOf returns the device of the filesystem dir is on.
func devOf(dir string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return 0, false
	}
	return st.Dev, true
}

// statIDs returns the device, inode and link count of a file.
func statIDs(info fs.FileInfo) (dev, ino, nlink uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Dev, st.Ino, uint64(st.Nlink)
	}
	return 0, 0, 1
}
