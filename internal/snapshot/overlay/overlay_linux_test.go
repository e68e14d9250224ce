package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/snapshot"
)

// open returns an overlay snapshotter on a fresh root and database.
func open(t *testing.T) (*Snapshotter, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(dir, "snapshots")
	return newSnapshotter(t, root, db).(*Snapshotter), root
}

// mount mounts mounts in a temporary directory unmounted at the end of t.
func mount(t *testing.T, mounts []snapshot.Mount) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(dir); err != nil {
			t.Error(err)
		}
	})
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUpperDirIsTheLayer checks that an active snapshot's changes land in
// its upper dir as a plain tree with overlay whiteouts, that UpperDir finds
// it, and that Commit makes that very directory the layer.
func TestUpperDirIsTheLayer(t *testing.T) {
	ctx := context.Background()
	s, root := open(t)
	m, err := s.Prepare(ctx, "base-active", "")
	if err != nil {
		t.Fatal(err)
	}
	upper, lowers, err := snapshot.UpperDir(m)
	if err != nil || len(lowers) != 0 {
		t.Fatalf("upper dir of a parentless active: %q %v %v", upper, lowers, err)
	}
	// No mount needed: write the base layer straight into its upper dir.
	for _, p := range []string{"gone", "dir/old", "kept"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(upper, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(upper, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	baseUpper := upper
	if err := s.Commit(ctx, "base", "base-active"); err != nil {
		t.Fatal(err)
	}

	m, err = s.Prepare(ctx, "top-active", "base")
	if err != nil {
		t.Fatal(err)
	}
	upper, lowers, err = snapshot.UpperDir(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(upper, root+"/") || len(lowers) != 1 || !strings.HasPrefix(lowers[0], root+"/") {
		t.Fatalf("upper dir %q, lowers %v: want directories under %s", upper, lowers, root)
	}
	dir := mount(t, m)
	if err := os.Remove(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kept"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.UnmountAll(dir); err != nil {
		t.Fatal(err)
	}

	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("deleted file: want a 0/0 character device whiteout in the upper dir, got mode %#o rdev %d (%v)", st.Mode, st.Rdev, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(upper, "dir"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("recreated dir: want opaque xattr y, got %q (%v)", buf[:n], err)
	}
	if data, err := os.ReadFile(filepath.Join(upper, "kept")); err != nil || string(data) != "changed" {
		t.Errorf("modified file in the upper dir: %q, %v; want the whole new file", data, err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(upper, "kept"), "trusted.overlay.metacopy", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("modified file has a metacopy xattr (%v): upper dirs must hold whole files", err)
	}
	work := filepath.Join(filepath.Dir(upper), "work")
	if _, err := os.Stat(work); err != nil {
		t.Errorf("active snapshot has no work dir: %v", err)
	}

	if err := s.Commit(ctx, "top", "top-active"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(work); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir after commit: %v, want it removed", err)
	}
	m, err = s.View(ctx, "v", "base")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m[0].Type != "bind" || m[0].Source != baseUpper || !m[0].ReadOnly() {
		t.Errorf("view of the committed base layer: %+v, want a read-only bind of its upper dir %s (no copy)", m, baseUpper)
	}
	m, err = s.Mounts(ctx, "top")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m[0].Type != "overlay" || !m[0].ReadOnly() || !strings.Contains(strings.Join(m[0].Options, ","), "lowerdir="+upper+":") {
		t.Errorf("mounts of committed top: %+v, want a read-only overlay with %s on top", m, upper)
	}
	for _, o := range m[0].Options {
		if o == "index=on" || o == "metacopy=on" || strings.HasPrefix(o, "redirect_dir=on") {
			t.Errorf("overlay option %q keeps upper dirs from being plain trees", o)
		}
	}
	if !strings.Contains(strings.Join(m[0].Options, ","), "index=off") {
		t.Errorf("overlay options %v lack index=off", m[0].Options)
	}
}

// TestLongOptionsFallback checks that a chain whose overlay options pass
// the kernel's one-page limit still mounts.
func TestLongOptionsFallback(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	parent := ""
	for i := range 100 {
		m, err := s.Prepare(ctx, "active", parent)
		if err != nil {
			t.Fatal(err)
		}
		upper, _, err := snapshot.UpperDir(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(upper, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("layer-%d", i)
		if err := s.Commit(ctx, name, "active"); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	m, err := s.Prepare(ctx, "active", parent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(m[0].Options, ",")); n < os.Getpagesize() {
		t.Fatalf("options of 100 layers are %d bytes: the test needs more than a page (%d) to reach the fallback", n, os.Getpagesize())
	}
	dir := mount(t, m)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 100 {
		t.Fatalf("100-layer mount shows %d entries (%v), want 100", len(entries), err)
	}
}

func TestSupportedFailsOnOverlay(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(dir, "l"), "upperdir=" + filepath.Join(dir, "u"), "workdir=" + filepath.Join(dir, "w")}}
	merged := mount(t, []snapshot.Mount{m})
	// overlayfs cannot keep its upper dir on overlayfs.
	err := Supported(filepath.Join(merged, "root"))
	if !errdefs.IsNotImplemented(err) {
		t.Errorf("Supported on an overlay mount: %v, want not implemented", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(merged, "root")); len(entries) != 0 {
		t.Errorf("Supported left %v behind", entries)
	}
}

func TestNewRejectsBadRoot(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, root := range []string{"relative", "/tmp/a:b", "/tmp/a,b"} {
		if _, err := New(root, db); !errdefs.IsInvalidArgument(err) {
			t.Errorf("New(%q): %v, want invalid argument", root, err)
		}
	}
	if _, err := New(t.TempDir(), nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("New without a db: %v, want invalid argument", err)
	}
}
