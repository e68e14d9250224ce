package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	ok, err := mountinfo.Mounted(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestBindReadOnlyAndUnmountAll(t *testing.T) {
	src, target := t.TempDir(), t.TempDir()
	t.Cleanup(func() {
		if err := UnmountAll(target); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Two mounts stacked on one target: a writable bind under a read-only one.
	mounts := []Mount{
		{Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
		{Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid"}},
	}
	if err := MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(data) != "x" {
		t.Fatalf("read through bind: %q %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through a read-only bind: %v, want EROFS", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if mounted(t, target) {
		t.Error("target still mounted after UnmountAll")
	}
	if err := UnmountAll(target); err != nil {
		t.Errorf("UnmountAll of an unmounted dir: %v", err)
	}
	if err := UnmountAll(filepath.Join(target, "missing")); err != nil {
		t.Errorf("UnmountAll of a missing dir: %v", err)
	}
}

func TestMountAllUndoesOnFailure(t *testing.T) {
	src, target := t.TempDir(), t.TempDir()
	t.Cleanup(func() { _ = UnmountAll(target) })
	mounts := []Mount{
		{Type: "bind", Source: src, Options: []string{"rbind"}},
		{Type: "bind", Source: filepath.Join(src, "missing"), Options: []string{"rbind"}},
	}
	if err := MountAll(mounts, target); err == nil {
		t.Fatal("MountAll with a missing source succeeded")
	}
	if mounted(t, target) {
		t.Error("MountAll left its first mount after the second failed")
	}
}

func TestWithTempMount(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var root string
	boom := errors.New("boom")
	err := WithTempMount(context.Background(), []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, func(r string) error {
		root = r
		if data, err := os.ReadFile(filepath.Join(r, "f")); err != nil || string(data) != "x" {
			t.Errorf("read in temp mount: %q %v", data, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("WithTempMount: %v, want fn's error", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp mount dir %s still there: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
		t.Errorf("source damaged: %v", err)
	}
}

func TestOverlayOptionsTooLong(t *testing.T) {
	target := t.TempDir()
	// 1000 layers cannot fit even relative to their common directory.
	var lowers []string
	for i := range 1000 {
		lowers = append(lowers, fmt.Sprintf("/var/lib/berth/snapshots/%d/fs", i))
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(lowers, ":")}}
	err := m.Mount(target)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("mount of 1000 layers: %v, want an invalid-argument error naming the limit", err)
	}
	// Layers with nothing in common but / cannot be shortened.
	lowers = nil
	for i := range 400 {
		lowers = append(lowers, fmt.Sprintf("/d%d/layer-with-a-long-name", i))
	}
	m.Options = []string{"ro", "lowerdir=" + strings.Join(lowers, ":")}
	if err := m.Mount(target); !errdefs.IsInvalidArgument(err) {
		t.Errorf("mount of unrelated long layers: %v, want invalid argument", err)
	}
	if mounted(t, target) {
		t.Error("failed mount left target mounted")
	}
}

// TestOverlayMountsRelative: an overlay given absolute layer paths is
// mounted with them relative to their common directory (what mountinfo
// shows), works as the absolute one would, and the caller's working
// directory does not change.
func TestOverlayMountsRelative(t *testing.T) {
	base, target := t.TempDir(), t.TempDir()
	for _, d := range []string{"1/fs", "2/fs", "2/work"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "1/fs/lower"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(base, "1/fs"), "upperdir=" + filepath.Join(base, "2/fs"), "workdir=" + filepath.Join(base, "2/work"),
	}}
	if err := m.Mount(target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnmountAll(target); err != nil {
			t.Error(err)
		}
	})
	if now, _ := os.Getwd(); now != wd {
		t.Errorf("working directory changed from %s to %s", wd, now)
	}
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(target))
	if err != nil || len(infos) != 1 {
		t.Fatalf("mountinfo of %s: %v, %v", target, infos, err)
	}
	opts := infos[0].VFSOptions
	if !strings.Contains(opts, "lowerdir=1/fs,") || !strings.Contains(opts, "upperdir=2/fs,") || !strings.Contains(opts, "workdir=2/work") || strings.Contains(opts, base) {
		t.Errorf("overlay options in mountinfo: %q, want layers relative to %s", opts, base)
	}
	if _, err := os.Stat(filepath.Join(target, "lower")); err != nil {
		t.Errorf("lower layer's file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "upper"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "2/fs/upper")); err != nil {
		t.Errorf("a write through the mount did not land in the upper layer: %v", err)
	}
}
