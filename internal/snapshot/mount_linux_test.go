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
