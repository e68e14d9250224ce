package testutil

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// busyboxCandidates are where busybox-static installs busybox, in order of
// preference (/bin is a symlink to /usr/bin on merged-/usr systems).
var busyboxCandidates = []string{"/usr/bin/busybox", "/bin/busybox"}

// busybox is the host's static busybox and its applet names, found once per
// process.
var busybox struct {
	once    sync.Once
	path    string
	applets []string
	err     error
}

// hostBusybox returns the path of the host's static busybox and the names of
// its applets.
func hostBusybox() (string, []string, error) {
	busybox.once.Do(func() {
		busybox.path, busybox.applets, busybox.err = findBusybox()
	})
	return busybox.path, busybox.applets, busybox.err
}

func findBusybox() (string, []string, error) {
	var path string
	for _, p := range busyboxCandidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			path = p
			break
		}
	}
	if path == "" {
		return "", nil, fmt.Errorf("find busybox: none of %s exists (install busybox-static)", strings.Join(busyboxCandidates, ", "))
	}
	if err := checkStatic(path); err != nil {
		return "", nil, err
	}
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return "", nil, fmt.Errorf("list busybox applets: %s --list: %w", path, err)
	}
	var applets []string
	for _, name := range strings.Fields(string(out)) {
		// The list names busybox itself, which is the file, not a link.
		if name != "busybox" && !strings.Contains(name, "/") {
			applets = append(applets, name)
		}
	}
	if len(applets) == 0 {
		return "", nil, fmt.Errorf("list busybox applets: %s --list printed none", path)
	}
	return path, applets, nil
}

// checkStatic fails when the binary at path needs a dynamic loader, which a
// busybox-only rootfs does not have.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("check busybox is static: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("check busybox is static: %s is dynamically linked (install busybox-static)", path)
		}
	}
	return nil
}

// Users and groups of the busybox rootfs.
const (
	// UserUID and UserGID are the ids of the unprivileged user "berth".
	UserUID = 1000
	UserGID = 1000
	// NobodyUID and NobodyGID are the ids of "nobody" and "nogroup".
	NobodyUID = 65534
	NobodyGID = 65534
)

var rootfsFiles = []struct {
	path, data string
	mode       os.FileMode
}{
	{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n" +
		"berth:x:1000:1000:berth:/home/berth:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644},
	{"etc/group", "root:x:0:\ntty:x:5:\nberth:x:1000:\nnogroup:x:65534:\n", 0o644},
	{"etc/hostname", "berth\n", 0o644},
}

// BusyboxRootfs builds a minimal root filesystem at dir (created if needed,
// expected empty) from the host's static busybox: bin/busybox with a
// relative symlink bin/<applet> for each of its applets (so /bin/sh and
// /bin/true exist), the directories proc, sys, dev, tmp (mode 1777), etc,
// root (0700) and home/berth, and etc/passwd, etc/group and etc/hostname
// with root, the user berth (UserUID) and nobody (NobodyUID).
//
// Creating hundreds of symlinks is slow on some filesystems (half a
// millisecond each on ext4 in a VM), so the applet links are hard links to
// the symlinks of a template rootfs built once per process in the cache
// directory (see CleanupCache); bin/busybox, the directories and the etc
// files are the rootfs' own. When dir is on another filesystem than the
// cache, the symlinks are created instead.
func BusyboxRootfs(dir string) error {
	src, applets, err := hostBusybox()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("build busybox rootfs: %w", err)
	}
	if err := rootfsSkeleton(dir, src); err != nil {
		return fmt.Errorf("build busybox rootfs: %w", err)
	}
	tmpl, err := cached(&cache.template, buildTemplate)
	if err != nil {
		return err
	}
	for i, a := range applets {
		err := os.Link(filepath.Join(tmpl, "bin", a), filepath.Join(dir, "bin", a))
		if err != nil && i == 0 && errors.Is(err, syscall.EXDEV) {
			return linkApplets(dir, applets)
		}
		if err != nil {
			return fmt.Errorf("build busybox rootfs: link applet: %w", err)
		}
	}
	return nil
}

// rootfsSkeleton makes everything of a busybox rootfs at dir except the
// applet links.
func rootfsSkeleton(dir, busyboxPath string) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
		{"tmp", 0o777 | os.ModeSticky}, {"etc", 0o755}, {"root", 0o700}, {"home/berth", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// Chmod: MkdirAll applies the umask and cannot set the sticky bit.
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, "home/berth"), UserUID, UserGID); err != nil {
			return err
		}
	}
	if err := copyFile(busyboxPath, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return err
	}
	for _, f := range rootfsFiles {
		if err := os.WriteFile(filepath.Join(dir, f.path), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// linkApplets creates the symlink bin/<applet> -> busybox for each applet.
func linkApplets(dir string, applets []string) error {
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return fmt.Errorf("build busybox rootfs: link applet: %w", err)
		}
	}
	return nil
}

// buildTemplate makes, in the cache directory, a template rootfs holding only
// the applet symlinks.
func buildTemplate(cache string) (string, error) {
	_, applets, err := hostBusybox()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "rootfs")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return "", fmt.Errorf("build rootfs template: %w", err)
	}
	if err := linkApplets(dir, applets); err != nil {
		return "", fmt.Errorf("build rootfs template: %w", err)
	}
	return dir, nil
}

// copyFile copies the regular file src to a new file dst with mode perm.
// A copy, not a hard link: a test that writes to its rootfs must not be able
// to change the host's binary.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}
