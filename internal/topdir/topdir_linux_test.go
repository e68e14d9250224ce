package topdir

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// flagsOf returns dir's inode flags.
func flagsOf(t *testing.T, dir string) uint32 {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatalf("get flags of %s: %v", dir, err)
	}
	return flags
}

// TestMark marks a directory on /var/tmp's file system (ext4 on the
// machines berth is tested on) and checks the flag is set, twice in a
// row, and that its other flags are kept.
func TestMark(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "berth-topdir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("/var/tmp is not on ext4 (file system magic %#x): FS_TOPDIR_FL is ext4's", st.Type)
	}
	before := flagsOf(t, dir)
	for range 2 {
		if err := Mark(dir); err != nil {
			t.Fatal(err)
		}
	}
	after := flagsOf(t, dir)
	if after&FSTopdirFL == 0 {
		t.Errorf("flags %#x after Mark: no FS_TOPDIR_FL", after)
	}
	if after&^FSTopdirFL != before&^FSTopdirFL {
		t.Errorf("Mark changed other flags: %#x -> %#x", before, after)
	}
}

// TestMarkUnsupported marks a directory on a tmpfs, which has no such
// flag: nothing to do, no error. A missing directory is an error.
func TestMarkUnsupported(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := Mark(dir); err != nil {
		t.Errorf("Mark on a tmpfs: %v", err)
	}
	if err := Mark(dir + "/missing"); err == nil {
		t.Error("Mark of a missing directory succeeded")
	}
}
