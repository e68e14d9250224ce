package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts an overlay at a new directory and unmounts it when
// the test ends. upper "" mounts the lowers read-only.
func mountOverlay(t *testing.T, lowers []string, upper string) string {
	t.Helper()
	merged := t.TempDir()
	opts := "lowerdir=" + strings.Join(lowers, ":")
	flags := uintptr(0)
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + t.TempDir()
	} else {
		flags = unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", merged, "overlay", flags, opts+",redirect_dir=off,metacopy=off,index=off"); err != nil {
		if err == unix.ENODEV {
			t.Skip("kernel lacks overlayfs")
		}
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil && err != unix.EINVAL {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	return merged
}

// view is what a person sees of a tree: type, mode and content per path.
func view(t *testing.T, root string) map[string]string {
	t.Helper()
	tr, _ := snapshot(t, root)
	out := map[string]string{}
	for p, n := range tr {
		out[p] = string(rune('0'+n.Mode>>12)) + " " + n.Sum + n.Link
	}
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

var (
	baseLayer = func(t testing.TB) []byte {
		return makeTar(t,
			dir("keep/"), file("keep/a", "a"),
			file("gone", "gone"),
			dir("gonedir/"), file("gonedir/x", "x"),
			dir("opq/"), file("opq/old1", "1"), dir("opq/sub/"), file("opq/sub/old2", "2"),
			file("linked", "linked content"),
		)
	}
	topLayer = func(t testing.TB) []byte {
		return makeTar(t,
			whiteout(".wh.gone"),
			whiteout(".wh.gonedir"),
			dir("opq/"), file("opq/new", "new"),
			whiteout("opq/.wh..wh..opq"), // after opq/new, which it must keep
			dir("opq/sub/"), file("opq/sub/new2", "new2"),
			file("fresh", "fresh"), whiteout(".wh.fresh"), // same layer: fresh stays
			hardlink("hl", "linked"), // target only in the lower layer
			file("implied/deep/file", "deep"),
		)
	}
	wantMerged = []string{"fresh", "hl", "implied", "implied/deep", "implied/deep/file", "keep", "keep/a", "linked", "opq", "opq/new", "opq/sub", "opq/sub/new2"}
)

func TestWhiteoutDelete(t *testing.T) {
	root := t.TempDir()
	apply(t, root, baseLayer(t), ApplyOptions{})
	apply(t, root, topLayer(t), ApplyOptions{})
	v := view(t, root)
	if got := keys(v); !reflect.DeepEqual(got, wantMerged) {
		t.Fatalf("tree after whiteouts:\n got  %v\n want %v", got, wantMerged)
	}
	if v["hl"] != v["linked"] {
		t.Error("hl differs from linked")
	}
	var a, b unix.Stat_t
	must(t, unix.Lstat(filepath.Join(root, "hl"), &a))
	must(t, unix.Lstat(filepath.Join(root, "linked"), &b))
	if a.Ino != b.Ino {
		t.Error("hl is not a hard link of linked")
	}
}

func TestWhiteoutOverlay(t *testing.T) {
	l1, u2 := t.TempDir(), t.TempDir()
	opts := ApplyOptions{Whiteouts: WhiteoutOverlay}
	apply(t, l1, baseLayer(t), opts)
	opts.Lowers = []string{l1}
	apply(t, u2, topLayer(t), opts)

	for _, w := range []string{"gone", "gonedir"} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(u2, w), &st))
		if !isWhiteoutDev(&st) || st.Uid != 0 {
			t.Errorf("%s in upper: mode %o rdev %d, want a 0/0 char device", w, st.Mode, st.Rdev)
		}
	}
	if got := xattrString(t, filepath.Join(u2, "opq")); got != `trusted.overlay.opaque="y";` {
		t.Errorf("opq xattrs %s", got)
	}
	if lexists(filepath.Join(u2, "fresh")) == false {
		t.Error("fresh was whited out by its own layer")
	}
	// The upper got a copy of linked to link to.
	if b, _ := os.ReadFile(filepath.Join(u2, "linked")); string(b) != "linked content" {
		t.Errorf("copied-up linked is %q", b)
	}

	merged := mountOverlay(t, []string{u2, l1}, "")
	v := view(t, merged)
	if got := keys(v); !reflect.DeepEqual(got, wantMerged) {
		t.Fatalf("merged view:\n got  %v\n want %v", got, wantMerged)
	}
	// Same view as the native snapshotter's.
	native := t.TempDir()
	apply(t, native, baseLayer(t), ApplyOptions{})
	apply(t, native, topLayer(t), ApplyOptions{})
	if nv := view(t, native); !reflect.DeepEqual(nv, v) {
		t.Errorf("overlay and native views differ:\n overlay %v\n native  %v", v, nv)
	}
}

// TestOverlayDiff changes files through a real overlay mount and checks that
// the upper's diff, applied onto the lower, gives the merged view.
func TestOverlayDiff(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	richTree(t, lower)
	merged := mountOverlay(t, []string{lower}, upper)
	p := func(rel string) string { return filepath.Join(merged, rel) }
	must(t, os.WriteFile(p("etc/passwd"), []byte("changed\n"), 0o644))
	must(t, os.Remove(p("fifo")))
	must(t, os.RemoveAll(p("etc/sub")))
	must(t, os.RemoveAll(p("srv/data")))
	must(t, os.Mkdir(p("srv/data"), 0o700)) // overlay makes it opaque
	must(t, os.WriteFile(p("srv/data/z"), []byte("z"), 0o600))
	must(t, os.Chmod(p("etc/empty"), 0o600))
	must(t, os.MkdirAll(p("new/dir"), 0o755))
	must(t, os.WriteFile(p("new/dir/f"), []byte("f"), 0o644))
	must(t, os.Link(p("new/dir/f"), p("new/g")))
	must(t, os.Symlink("x", p("tmp/l")))

	changes, err := OverlayChanges(context.Background(), upper, []string{lower})
	must(t, err)
	want := []Change{
		{Modify, "/etc"}, {Modify, "/etc/empty"}, {Modify, "/etc/passwd"}, {Delete, "/etc/sub"},
		{Delete, "/fifo"}, {Add, "/new"}, {Add, "/new/dir"}, {Add, "/new/dir/f"}, {Add, "/new/g"},
		{Modify, "/srv"}, {Modify, "/srv/data"}, {Delete, "/srv/data/a"}, {Add, "/srv/data/z"},
		{Modify, "/tmp"}, {Add, "/tmp/l"},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("overlay changes:\n got  %v\n want %v", changes, want)
	}

	var diff bytes.Buffer
	must(t, WriteOverlayDiff(context.Background(), &diff, upper))
	var again bytes.Buffer
	must(t, WriteOverlayDiff(context.Background(), &again, upper))
	if !bytes.Equal(diff.Bytes(), again.Bytes()) {
		t.Error("overlay diff is not reproducible")
	}
	if !bytes.Contains(diff.Bytes(), []byte("srv/data/.wh..wh..opq")) || !bytes.Contains(diff.Bytes(), []byte(".wh.fifo")) {
		t.Error("overlay diff lacks its whiteouts")
	}
	wantTar := writeTree(t, merged)

	// Native: a full copy of lower plus the diff.
	target := t.TempDir()
	apply(t, target, writeTree(t, lower), ApplyOptions{})
	apply(t, target, diff.Bytes(), ApplyOptions{})
	if !bytes.Equal(writeTree(t, target), wantTar) {
		compareTrees(t, snap(t, merged), snap(t, target))
		t.Error("lower + overlay diff (native) differs from the merged view")
	}

	// Overlay: the diff into a fresh upper over the same lower.
	u2 := t.TempDir()
	apply(t, u2, diff.Bytes(), ApplyOptions{Whiteouts: WhiteoutOverlay, Lowers: []string{lower}})
	m2 := mountOverlay(t, []string{u2, lower}, "")
	if !bytes.Equal(writeTree(t, m2), wantTar) {
		compareTrees(t, snap(t, merged), snap(t, m2))
		t.Error("lower + overlay diff (overlay) differs from the merged view")
	}
}

func snap(t testing.TB, root string) tree { tr, _ := snapshot(t, root); return tr }

func TestWriteDiff(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	richTree(t, lower)
	apply(t, upper, writeTree(t, lower), ApplyOptions{})
	p := func(rel string) string { return filepath.Join(upper, rel) }
	must(t, os.WriteFile(p("etc/passwd"), []byte("changed\n"), 0o644))
	must(t, os.Chmod(p("etc/empty"), 0o600))
	must(t, os.Remove(p("fifo")))
	must(t, os.RemoveAll(p("etc/sub")))
	must(t, os.RemoveAll(p("empty")))
	must(t, os.WriteFile(p("empty"), []byte("now a file"), 0o644)) // dir -> file
	must(t, os.Remove(p("sgid")))
	must(t, os.MkdirAll(p("sgid/in"), 0o755))                     // file -> dir
	must(t, os.WriteFile(p("srv/b"), []byte("rewritten"), 0o640)) // in place: srv keeps its mtime
	must(t, os.Remove(p("srv/data/a")))
	must(t, os.WriteFile(p("srv/data/z"), []byte("z"), 0o600)) // all old entries gone: opaque
	must(t, unix.Setxattr(p("suid"), "user.new", []byte("1"), 0))
	must(t, os.WriteFile(p("new1"), []byte("pair"), 0o644))
	must(t, os.Link(p("new1"), p("new2")))

	changes, err := Changes(context.Background(), lower, upper)
	must(t, err)
	want := []Change{
		{Modify, "/c"}, {Modify, "/empty"}, {Modify, "/etc"}, {Modify, "/etc/empty"}, {Modify, "/etc/passwd"}, {Delete, "/etc/sub"},
		{Delete, "/fifo"}, {Add, "/new1"}, {Add, "/new2"}, {Modify, "/sgid"}, {Add, "/sgid/in"},
		{Modify, "/srv/b"}, {Modify, "/srv/data"}, {Delete, "/srv/data/a"}, {Add, "/srv/data/z"}, {Modify, "/suid"},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("changes:\n got  %v\n want %v", changes, want)
	}

	var diff bytes.Buffer
	must(t, WriteDiff(context.Background(), &diff, lower, upper))
	var again bytes.Buffer
	must(t, WriteDiff(context.Background(), &again, lower, upper))
	if !bytes.Equal(diff.Bytes(), again.Bytes()) {
		t.Error("diff is not reproducible")
	}
	for _, s := range []string{"srv/data/.wh..wh..opq", ".wh.fifo", "etc/.wh.sub"} {
		if !bytes.Contains(diff.Bytes(), []byte(s)) {
			t.Errorf("diff lacks %s", s)
		}
	}
	if bytes.Contains(diff.Bytes(), []byte("abs-link")) {
		t.Error("diff holds an unchanged entry")
	}
	target := t.TempDir()
	apply(t, target, writeTree(t, lower), ApplyOptions{})
	apply(t, target, diff.Bytes(), ApplyOptions{})
	if !bytes.Equal(writeTree(t, target), writeTree(t, upper)) {
		compareTrees(t, snap(t, upper), snap(t, target))
		t.Error("lower + diff differs from upper")
	}
}
