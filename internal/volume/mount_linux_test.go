package volume

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/volume"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, s *Store, name string, opts map[string]string) {
	t.Helper()
	if _, err := s.Create(context.Background(), volume.CreateRequest{Name: name, DriverOpts: opts}); err != nil {
		t.Fatal(err)
	}
}

func vol(name, dest string, opts ...string) container.Mount {
	return container.Mount{Type: TypeVolume, Name: name, Destination: dest, RW: true, Options: opts}
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// imageTree makes a root filesystem with /data holding one of each kind of
// file, with owners, modes, times and an xattr to keep, and symlinks that
// point out of the root.
func imageTree(t *testing.T, rootfs, outside string) {
	t.Helper()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	data := filepath.Join(rootfs, "data")
	must(t, os.MkdirAll(filepath.Join(data, "sub", "deep"), 0o755))
	must(t, os.WriteFile(filepath.Join(data, "file"), []byte("hello"), 0o600))
	must(t, os.Chmod(filepath.Join(data, "file"), 0o640))
	must(t, os.Chown(filepath.Join(data, "file"), 1001, 1002))
	must(t, unix.Setxattr(filepath.Join(data, "file"), "user.k", []byte("v"), 0))
	must(t, os.Link(filepath.Join(data, "file"), filepath.Join(data, "hard")))
	must(t, os.WriteFile(filepath.Join(data, "setuid"), []byte("#!"), 0o755))
	must(t, os.Chown(filepath.Join(data, "setuid"), 1000, 1000))
	must(t, unix.Chmod(filepath.Join(data, "setuid"), 0o4755)) // os.Chmod drops the bit
	must(t, os.WriteFile(filepath.Join(data, "sub", "deep", "x"), []byte("x"), 0o644))
	must(t, os.Chmod(filepath.Join(data, "sub"), 0o700))
	must(t, os.Symlink("/etc", filepath.Join(data, "abs")))
	must(t, os.Lchown(filepath.Join(data, "abs"), 1003, 1003))
	must(t, os.Symlink("../../../../../../"+outside, filepath.Join(data, "rel")))
	must(t, unix.Mkfifo(filepath.Join(data, "fifo"), 0o600))
	must(t, unix.Chmod(filepath.Join(data, "fifo"), 0o620)) // past the umask
	for _, p := range []string{"file", "sub/deep/x", "sub"} {
		must(t, os.Chtimes(filepath.Join(data, p), mtime, mtime))
	}
	must(t, os.Chown(data, 1000, 1000))
	must(t, os.Chmod(data, 0o750))
	must(t, os.Chtimes(data, mtime, mtime))
	// Destinations that are symlinks: one staying inside the root, two
	// that would leave it if followed on the host.
	must(t, os.Symlink("data", filepath.Join(rootfs, "alias")))
	must(t, os.Symlink(outside, filepath.Join(rootfs, "evil")))
	must(t, os.Symlink("../../../../../../../../"+outside, filepath.Join(rootfs, "dots")))
}

func TestCopyUp(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	rootfs, outside := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600))
	imageTree(t, rootfs, outside)
	for _, n := range []string{"vdata", "valias", "vevil", "vdots", "vnocopy", "vmissing"} {
		create(t, s, n, nil)
	}
	ms := []container.Mount{
		vol("vdata", "/data"), vol("valias", "/alias"), vol("vevil", "/evil"), vol("vdots", "/dots"),
		vol("vnocopy", "/data", OptNoCopy), vol("vmissing", "/nothing/here"),
	}
	must(t, s.Mount(ctx, "c1", rootfs, ms))

	for _, n := range []string{"vdata", "valias"} {
		d := s.dataDir(n)
		if got := entries(t, d); !slices.Equal(got, []string{"abs", "fifo", "file", "hard", "rel", "setuid", "sub"}) {
			t.Errorf("%s: entries %v", n, got)
		}
		if st := lstat(t, d); st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != 0o750 || st.Mtim.Sec != time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Unix() {
			t.Errorf("%s: volume root uid %d gid %d mode %o mtime %d; want the image directory's", n, st.Uid, st.Gid, st.Mode&0o7777, st.Mtim.Sec)
		}
		file := lstat(t, filepath.Join(d, "file"))
		if file.Uid != 1001 || file.Gid != 1002 || file.Mode&0o7777 != 0o640 || file.Mtim.Sec != time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Unix() {
			t.Errorf("%s: file uid %d gid %d mode %o mtime %d", n, file.Uid, file.Gid, file.Mode&0o7777, file.Mtim.Sec)
		}
		if b, _ := os.ReadFile(filepath.Join(d, "file")); string(b) != "hello" {
			t.Errorf("%s: file content %q", n, b)
		}
		buf := make([]byte, 8)
		if sz, err := unix.Getxattr(filepath.Join(d, "file"), "user.k", buf); err != nil || string(buf[:sz]) != "v" {
			t.Errorf("%s: xattr user.k = %q, %v", n, buf[:max(sz, 0)], err)
		}
		if hard := lstat(t, filepath.Join(d, "hard")); hard.Ino != file.Ino {
			t.Errorf("%s: hard link copied as a separate file", n)
		}
		if st := lstat(t, filepath.Join(d, "setuid")); st.Mode&0o7777 != 0o4755 || st.Uid != 1000 {
			t.Errorf("%s: setuid file mode %o uid %d", n, st.Mode&0o7777, st.Uid)
		}
		if st := lstat(t, filepath.Join(d, "sub")); st.Mode&0o7777 != 0o700 {
			t.Errorf("%s: sub mode %o", n, st.Mode&0o7777)
		}
		if b, _ := os.ReadFile(filepath.Join(d, "sub", "deep", "x")); string(b) != "x" {
			t.Errorf("%s: deep file %q", n, b)
		}
		if st := lstat(t, filepath.Join(d, "fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o7777 != 0o620 {
			t.Errorf("%s: fifo mode %o", n, st.Mode)
		}
		for link, target := range map[string]string{"abs": "/etc", "rel": "../../../../../../" + outside} {
			st := lstat(t, filepath.Join(d, link))
			got, _ := os.Readlink(filepath.Join(d, link))
			if st.Mode&unix.S_IFMT != unix.S_IFLNK || got != target {
				t.Errorf("%s: %s is %o -> %q, want a symlink to %q", n, link, st.Mode, got, target)
			}
		}
		if st := lstat(t, filepath.Join(d, "abs")); st.Uid != 1003 {
			t.Errorf("%s: symlink owner %d", n, st.Uid)
		}
	}
	for _, n := range []string{"vevil", "vdots", "vnocopy", "vmissing"} {
		if got := entries(t, s.dataDir(n)); len(got) != 0 {
			t.Errorf("%s got %v, want nothing copied", n, got)
		}
	}
	if got := entries(t, outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside the root changed: %v", got)
	}
	if r, _ := s.get("vdata"); !r.Populated {
		t.Error("vdata not marked populated")
	}
	if r, _ := s.get("vmissing"); r.Populated {
		t.Error("vmissing marked populated with nothing copied")
	}

	// Once: emptied, vdata is not filled again; vmissing, never populated,
	// is filled once the image has the directory.
	must(t, s.Unmount(ctx, "c1", ms))
	must(t, emptyDir(s.dataDir("vdata")))
	must(t, os.MkdirAll(filepath.Join(rootfs, "nothing", "here"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "nothing", "here", "f"), nil, 0o644))
	must(t, s.Mount(ctx, "c2", rootfs, ms))
	if got := entries(t, s.dataDir("vdata")); len(got) != 0 {
		t.Errorf("vdata filled a second time: %v", got)
	}
	if got := entries(t, s.dataDir("vmissing")); !slices.Equal(got, []string{"f"}) {
		t.Errorf("vmissing = %v, want [f]", got)
	}
	must(t, s.Unmount(ctx, "c2", ms))

	if err := s.Mount(ctx, "c3", rootfs, []container.Mount{vol("nosuch", "/data")}); !errdefs.IsNotFound(err) {
		t.Errorf("Mount of a missing volume = %v", err)
	}
}

// TestCopyUpNonEmpty checks that a volume with content is left alone and
// counts as populated.
func TestCopyUpNonEmpty(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	rootfs := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(rootfs, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "d", "image"), nil, 0o644))
	create(t, s, "full", nil)
	must(t, os.WriteFile(filepath.Join(s.dataDir("full"), "mine"), nil, 0o644))
	must(t, s.Mount(ctx, "c1", rootfs, []container.Mount{vol("full", "/d")}))
	if got := entries(t, s.dataDir("full")); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("non-empty volume = %v, want [mine]", got)
	}
	if r, _ := s.get("full"); !r.Populated {
		t.Error("non-empty volume not marked populated")
	}
}

func mountOf(t *testing.T, dir string) *mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		return nil
	}
	return ms[0]
}

func TestDriverOptionVolumes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	rootfs := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(rootfs, "x"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "x", "hello"), []byte("hi"), 0o644))
	create(t, s, "tv", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000,nodev"})
	dir := s.dataDir("tv")
	ms := []container.Mount{vol("tv", "/x")}

	must(t, s.Mount(ctx, "c1", rootfs, ms))
	m := mountOf(t, dir)
	if m == nil || m.FSType != "tmpfs" || !strings.Contains(m.VFSOptions, "size=1024k") || !strings.Contains(m.VFSOptions, "uid=1000") || !strings.Contains(m.Options, "nodev") {
		t.Fatalf("tmpfs volume mount %+v", m)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hello")); string(b) != "hi" {
		t.Errorf("tmpfs volume not copied up: %q", b)
	}
	must(t, s.Mount(ctx, "c2", rootfs, ms))
	must(t, s.Mount(ctx, "c2", rootfs, ms)) // twice for one container counts once
	if r, _ := s.get("tv"); !slices.Equal(r.MountedBy, []string{"c1", "c2"}) {
		t.Errorf("holders %v", r.MountedBy)
	}
	must(t, s.Unmount(ctx, "c1", ms))
	if mountOf(t, dir) == nil {
		t.Fatal("unmounted while c2 still holds it")
	}
	must(t, s.Unmount(ctx, "c2", ms))
	if mountOf(t, dir) != nil {
		t.Fatal("still mounted after its last holder")
	}
	must(t, s.Unmount(ctx, "c2", ms)) // again: no error

	// A fresh tmpfs is new again: copied up again.
	must(t, s.Mount(ctx, "c1", rootfs, ms))
	if b, _ := os.ReadFile(filepath.Join(dir, "hello")); string(b) != "hi" {
		t.Errorf("remounted tmpfs volume not copied up: %q", b)
	}
	// Removing the container drops its hold.
	must(t, s.Release(ctx, "c1", ms, false))
	if mountOf(t, dir) != nil {
		t.Error("still mounted after its holder was released")
	}

	// A failing mount undoes those made before it in the same call.
	create(t, s, "badv", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "nosuchoption=1"})
	err := s.Mount(ctx, "c1", rootfs, []container.Mount{vol("tv", "/x"), vol("badv", "/y")})
	if err == nil || !strings.Contains(err.Error(), "error while mounting volume '"+s.dataDir("badv")+"': failed to mount local volume") {
		t.Errorf("Mount with a bad tmpfs option = %v", err)
	}
	if mountOf(t, dir) != nil {
		t.Error("the mount before the failing one was not undone")
	}
	if r, _ := s.get("tv"); len(r.MountedBy) != 0 {
		t.Errorf("holders after the undo: %v", r.MountedBy)
	}

	// A bind of a host directory; removing the volume never touches it.
	host := t.TempDir()
	must(t, os.WriteFile(filepath.Join(host, "existing"), []byte("keep"), 0o644))
	create(t, s, "bv", map[string]string{"type": "none", "device": host, "o": "bind,ro"})
	must(t, s.Mount(ctx, "c1", rootfs, []container.Mount{vol("bv", "/x")}))
	if got := entries(t, s.dataDir("bv")); !slices.Equal(got, []string{"existing"}) {
		t.Errorf("bind volume shows %v, want the host's [existing] and no copy-up", got)
	}
	if err := os.WriteFile(filepath.Join(s.dataDir("bv"), "w"), nil, 0o644); !errorsIsROFS(err) {
		t.Errorf("write into the o=bind,ro volume: %v, want read-only", err)
	}
	must(t, s.Remove(ctx, "bv", false)) // still mounted: unmounted first
	if b, err := os.ReadFile(filepath.Join(host, "existing")); err != nil || string(b) != "keep" {
		t.Errorf("host directory of a removed bind volume: %q, %v", b, err)
	}

	// An empty read-only one cannot take the image's content: it starts
	// without.
	emptyHost := t.TempDir()
	create(t, s, "rov", map[string]string{"type": "none", "device": emptyHost, "o": "bind,ro"})
	must(t, s.Mount(ctx, "c1", rootfs, []container.Mount{vol("rov", "/x")}))
	if got := entries(t, s.dataDir("rov")); len(got) != 0 {
		t.Errorf("read-only empty volume shows %v", got)
	}
	must(t, s.Release(ctx, "c1", nil, false))
	if mountOf(t, s.dataDir("rov")) != nil {
		t.Error("rov still mounted after release")
	}
}

func errorsIsROFS(err error) bool {
	return err != nil && strings.Contains(err.Error(), "read-only file system")
}

func TestBindPropagationCheck(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	must(t, unix.Mount("tmpfs", src, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { unix.Unmount(src, unix.MNT_DETACH) })
	must(t, unix.Mount("", src, "", unix.MS_PRIVATE, ""))
	bind := func(prop string) []container.Mount {
		return []container.Mount{{Type: TypeBind, Source: src, Destination: "/b", RW: true, Propagation: prop}}
	}
	for prop, what := range map[string]string{"rshared": "a shared mount", "slave": "a shared or slave mount"} {
		err := s.Mount(ctx, "c1", "", bind(prop))
		if want := "path " + src + " is mounted on " + src + " but it is not " + what; err == nil || !errdefs.IsInvalidArgument(err) || message(err) != want {
			t.Errorf("%s bind of a private mount = %v, want %q", prop, err, want)
		}
	}
	must(t, s.Mount(ctx, "c1", "", bind("rprivate")))
	must(t, unix.Mount("", src, "", unix.MS_SHARED, ""))
	must(t, s.Mount(ctx, "c1", "", bind("rshared")))
	must(t, s.Mount(ctx, "c1", "", bind("rslave")))
}

func TestSpecMounts(t *testing.T) {
	ms := []container.Mount{
		{Type: TypeBind, Source: "/src", Destination: "/a/b", RW: true, Propagation: "rshared"},
		{Type: TypeVolume, Name: "v", Source: "/v/_data", Destination: "/a", Mode: "z", Options: []string{OptNoCopy}},
		{Type: TypeBind, Source: "/s2", Destination: "/c", Propagation: "rprivate", Options: []string{OptReadOnlyNonRecursive}, Mode: "ro,Z"},
		{Type: TypeBind, Source: "/s3", Destination: "/d", RW: true, Options: []string{OptNonRecursive}},
		{Type: TypeTmpfs, Destination: "/t", RW: true, Options: []string{"size=1m", "exec"}},
		{Type: TypeTmpfs, Destination: "/t2"},
		{Type: TypeBind, Source: "/s4", Destination: "/e", Propagation: "slave", Options: []string{OptReadOnlyForceRecursive}},
	}
	roVolume := []string{"rbind", "ro", "rprivate"}
	if recursiveReadOnlySupported() {
		roVolume = []string{"rbind", "ro", "rro", "rprivate"}
	}
	want := []specs.Mount{
		{Destination: "/a", Type: "bind", Source: "/v/_data", Options: roVolume},
		{Destination: "/c", Type: "bind", Source: "/s2", Options: []string{"rbind", "ro", "rprivate"}},
		{Destination: "/d", Type: "bind", Source: "/s3", Options: []string{"bind", "rprivate"}},
		{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "size=1m", "exec"}},
		{Destination: "/t2", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "ro"}},
		{Destination: "/e", Type: "bind", Source: "/s4", Options: []string{"rbind", "ro", "rro", "slave"}},
		{Destination: "/a/b", Type: "bind", Source: "/src", Options: []string{"rbind", "rshared"}},
	}
	got := SpecMounts(ms)
	if len(got) != len(want) {
		t.Fatalf("SpecMounts = %+v", got)
	}
	for i := range want {
		if got[i].Destination != want[i].Destination || got[i].Type != want[i].Type || got[i].Source != want[i].Source || !slices.Equal(got[i].Options, want[i].Options) {
			t.Errorf("spec mount %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	for _, tc := range []struct {
		props   []string
		current string
		want    string
	}{
		{[]string{"rprivate"}, "", ""},
		{[]string{"rshared", "rslave"}, "", "shared"},
		{[]string{"rslave"}, "", "rslave"},
		{[]string{"slave"}, "rprivate", "rslave"},
		{[]string{"rslave"}, "rshared", "rshared"},
		{[]string{"shared"}, "rslave", "shared"},
	} {
		var ms []container.Mount
		for _, p := range tc.props {
			ms = append(ms, container.Mount{Type: TypeBind, Propagation: p})
		}
		if got := RootfsPropagation(ms, tc.current); got != tc.want {
			t.Errorf("RootfsPropagation(%v, %q) = %q, want %q", tc.props, tc.current, got, tc.want)
		}
	}
}

// TestCopyUpLeavesNoFileDescriptors guards the copier's descriptor
// handling: a copy of a tree must close what it opened.
func TestCopyUpLeavesNoFileDescriptors(t *testing.T) {
	s, _ := newStore(t)
	rootfs := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(rootfs, "d", "a", "b", "c"), 0o755))
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(rootfs, "d", "a", "f"+string(rune('a'+i))), bytes.Repeat([]byte{1}, i), 0o644))
	}
	create(t, s, "fds", nil)
	before := entries(t, "/proc/self/fd")
	must(t, s.Mount(context.Background(), "c1", rootfs, []container.Mount{vol("fds", "/d")}))
	if after := entries(t, "/proc/self/fd"); len(after) > len(before) {
		t.Errorf("open descriptors %d before the copy-up, %d after", len(before), len(after))
	}
	if got := entries(t, filepath.Join(s.dataDir("fds"), "a")); len(got) != 21 {
		t.Errorf("copied %d entries, want 21", len(got))
	}
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	rootfs := t.TempDir()
	create(t, s, "tv", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
	resolveNamed(t, s, "alive", "tv", "plain")
	resolveNamed(t, s, "ghost", "tv", "plain")
	resolveNamed(t, s, "stopped", "tv")
	for _, id := range []string{"alive", "stopped"} {
		must(t, s.Mount(ctx, id, rootfs, []container.Mount{vol("tv", "/tv")}))
	}
	exists := func(id string) bool { return id != "ghost" }
	running := func(id string) bool { return id == "alive" }
	must(t, s.Reconcile(ctx, exists, running))
	r, _ := s.get("tv")
	if !slices.Equal(r.Users, []string{"alive", "stopped"}) || !slices.Equal(r.MountedBy, []string{"alive"}) {
		t.Errorf("tv after reconcile: users %v holders %v", r.Users, r.MountedBy)
	}
	if mountOf(t, s.dataDir("tv")) == nil {
		t.Error("tv unmounted though a running container holds it")
	}
	if u := users(t, s, "plain"); !slices.Equal(u, []string{"alive"}) {
		t.Errorf("plain users %v", u)
	}
	must(t, s.Reconcile(ctx, exists, func(string) bool { return false }))
	if mountOf(t, s.dataDir("tv")) != nil {
		t.Error("tv mounted with no running holder")
	}
}

// BenchmarkCopyUp copies a tree of 2,000 files of 4 KiB in 20 directories
// into a new volume per iteration.
func BenchmarkCopyUp(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "metadata.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := New(filepath.Join(dir, "volumes"), db)
	if err != nil {
		b.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	content := bytes.Repeat([]byte{7}, 4096)
	for d := range 20 {
		sub := filepath.Join(rootfs, "data", "d"+strconv.Itoa(d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(sub, "f"+strconv.Itoa(f)), content, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := range b.N {
		name := "bench" + strconv.Itoa(i)
		if _, err := s.Create(ctx, volume.CreateRequest{Name: name}); err != nil {
			b.Fatal(err)
		}
		if err := s.Mount(ctx, "c1", rootfs, []container.Mount{vol(name, "/data")}); err != nil {
			b.Fatal(err)
		}
	}
}
