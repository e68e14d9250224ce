package native

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCopyTreeKeepsMetadata copies a tree holding every kind of file with
// unusual owners, modes, times and xattrs, and compares each entry.
func TestCopyTreeKeepsMetadata(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sticky"), 0o755))
	must(os.Chmod(filepath.Join(src, "sticky"), 0o1777))
	must(os.WriteFile(filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chown(filepath.Join(src, "setuid"), 1000, 1001))
	must(os.Chmod(filepath.Join(src, "setuid"), 0o4755))
	must(unix.Lsetxattr(filepath.Join(src, "setuid"), "user.note", []byte("kept"), 0))
	must(unix.Lsetxattr(filepath.Join(src, "setuid"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(src, "sticky", "a"), []byte("hard"), 0o600))
	must(os.Link(filepath.Join(src, "sticky", "a"), filepath.Join(src, "b")))
	must(os.Symlink("../escape", filepath.Join(src, "link")))
	must(os.Lchown(filepath.Join(src, "link"), 7, 8))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(src, "whiteout"), unix.S_IFCHR, 0))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	for _, p := range []string{"setuid", "link", "null", "fifo", "sticky/a", "sticky", ""} {
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}

	dst := filepath.Join(t.TempDir(), "dst")
	must(CopyTree(context.Background(), dst, src))

	err := filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		must(err)
		rel, _ := filepath.Rel(src, p)
		var a, b unix.Stat_t
		must(unix.Lstat(p, &a))
		must(unix.Lstat(filepath.Join(dst, rel), &b))
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev || a.Size != b.Size || a.Nlink != b.Nlink {
			t.Errorf("%s: copy has mode %#o owner %d:%d rdev %d size %d links %d, source %#o %d:%d %d %d %d",
				rel, b.Mode, b.Uid, b.Gid, b.Rdev, b.Size, b.Nlink, a.Mode, a.Uid, a.Gid, a.Rdev, a.Size, a.Nlink)
		}
		if a.Mtim != b.Mtim {
			t.Errorf("%s: mtime %v, want %v", rel, b.Mtim, a.Mtim)
		}
		return nil
	})
	must(err)
	var a, b unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "b"), &a))
	must(unix.Lstat(filepath.Join(dst, "sticky", "a"), &b))
	if a.Ino != b.Ino {
		t.Error("hard links were copied as separate files")
	}
	for name, want := range map[string]string{"user.note": "kept", "trusted.overlay.opaque": "y"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dst, "setuid"), name, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("xattr %s: %q %v, want %q", name, buf[:n], err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "../escape" {
		t.Errorf("symlink: %q %v", target, err)
	}
}

func TestCopyTreeRefusesExistingDestination(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	if err := CopyTree(context.Background(), dst, src); err == nil {
		t.Error("CopyTree into an existing directory succeeded")
	}
}
