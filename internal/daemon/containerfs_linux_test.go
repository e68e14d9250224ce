package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

// These tests drive the cp view on plain directories: no daemon, but real
// openat2 resolution, a real private mount namespace and real bind mounts.

// cfsTree makes a small container root in a temporary directory:
//
//	bin/busybox  bin/sh -> busybox  bin/abs -> /bin/busybox
//	etc/passwd   etc/group  lib -> usr/lib  usr/lib/libc.so
//	up -> ../../../..  loop1 -> loop2  loop2 -> loop1  tmp/
func cfsTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "usr/lib", "tmp/dir"} {
		cfsMust(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for name, data := range map[string]string{
		"bin/busybox":     "#!busybox",
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1001::/home/berth:/bin/sh\n",
		"etc/group":       "root:x:0:\nstaff:x:1001:\n",
		"usr/lib/libc.so": "libc",
	} {
		cfsMust(t, os.WriteFile(filepath.Join(root, name), []byte(data), 0o644))
	}
	for name, target := range map[string]string{
		"bin/sh": "busybox", "bin/abs": "/bin/busybox", "lib": "usr/lib",
		"up": "../../../..", "loop1": "loop2", "loop2": "loop1",
	} {
		cfsMust(t, os.Symlink(target, filepath.Join(root, name)))
	}
	return root
}

func cfsMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cfsPlainView is a view of dir without a namespace of its own.
func cfsPlainView(t *testing.T, dir string) *ctrView {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	cfsMust(t, err)
	v := &ctrView{root: fd, ns: -1}
	t.Cleanup(v.Close)
	return v
}

func TestViewResolve(t *testing.T) {
	v := cfsPlainView(t, cfsTree(t))
	for in, want := range map[string]string{
		"/bin/sh":            "/bin/busybox",
		"/bin/abs":           "/bin/busybox",
		"/lib/libc.so":       "/usr/lib/libc.so",
		"/up":                "/",
		"/up/etc/passwd":     "/etc/passwd",
		"/bin/../../../etc":  "/etc",
		"/missing/a/../b":    "/missing/b",
		"/lib/missing/x":     "/usr/lib/missing/x",
		"/tmp/dir/../../bin": "/bin",
	} {
		got, err := v.resolve(in)
		if err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := v.resolve("/loop1"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("resolve of a symlink loop: %v, want ELOOP", err)
	}
	if _, err := v.resolve("/etc/passwd/x"); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("resolve through a file: %v, want ENOTDIR", err)
	}
}

func TestViewStat(t *testing.T) {
	v := cfsPlainView(t, cfsTree(t))
	st, loc, err := v.stat("bin/sh")
	if err != nil || st.Name != "sh" || st.Mode&os.ModeSymlink == 0 || st.LinkTarget != "/bin/busybox" || loc != "/bin/sh" {
		t.Errorf("stat bin/sh = %+v, %q, %v", st, loc, err)
	}
	st, _, err = v.stat("/etc/passwd")
	if err != nil || st.Name != "passwd" || !st.Mode.IsRegular() || st.Size != int64(len("root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1001::/home/berth:/bin/sh\n")) || st.Mode.Perm() != 0o644 {
		t.Errorf("stat /etc/passwd = %+v, %v", st, err)
	}
	st, loc, err = v.stat("/lib/")
	if err != nil || st.Name != "lib" || !st.Mode.IsDir() || loc != "/usr/lib" {
		t.Errorf("stat /lib/ = %+v, %q, %v", st, loc, err)
	}
	st, loc, err = v.stat("/up/.")
	if err != nil || st.Name != "." || !st.Mode.IsDir() || loc != "/" {
		t.Errorf("stat /up/. = %+v, %q, %v", st, loc, err)
	}
	if _, _, err := v.stat("/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat /nope: %v, want not-exist", err)
	}
	if _, _, err := v.stat("/etc/passwd/"); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("stat /etc/passwd/: %v, want ENOTDIR", err)
	}
}

// cfsTarEntries reads a tar into name -> header and name -> content.
func cfsTarEntries(t *testing.T, r io.Reader) ([]string, map[string]*tar.Header, map[string]string) {
	t.Helper()
	var names []string
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, hdrs, data
		}
		cfsMust(t, err)
		b, err := io.ReadAll(tr)
		cfsMust(t, err)
		names = append(names, hdr.Name)
		hdrs[hdr.Name], data[hdr.Name] = hdr, string(b)
	}
}

func TestViewArchive(t *testing.T) {
	v := cfsPlainView(t, cfsTree(t))
	ctx := context.Background()
	archiveOf := func(loc, name string) ([]string, map[string]*tar.Header, map[string]string) {
		t.Helper()
		var buf bytes.Buffer
		cfsMust(t, v.archive(ctx, &buf, loc, name))
		return cfsTarEntries(t, &buf)
	}
	names, _, data := archiveOf("/etc", "etc")
	if !slices.Equal(names, []string{"etc/", "etc/group", "etc/passwd"}) || !strings.HasPrefix(data["etc/passwd"], "root:") {
		t.Errorf("archive of /etc: %q", names)
	}
	names, hdrs, _ := archiveOf("/bin/sh", "sh")
	if !slices.Equal(names, []string{"sh"}) || hdrs["sh"].Typeflag != tar.TypeSymlink || hdrs["sh"].Linkname != "busybox" {
		t.Errorf("archive of the symlink /bin/sh: %q %+v", names, hdrs["sh"])
	}
	names, _, data = archiveOf("/usr/lib/libc.so", "libc.so")
	if !slices.Equal(names, []string{"libc.so"}) || data["libc.so"] != "libc" {
		t.Errorf("archive of a file: %q %q", names, data)
	}
	names, _, _ = archiveOf("/usr", ".")
	if !slices.Equal(names, []string{"./", "./lib/", "./lib/libc.so"}) {
		t.Errorf("archive of /usr as .: %q", names)
	}
}

// cfsTarOf builds a tar of hdrs, each regular file holding its name.
func cfsTarOf(t *testing.T, hdrs ...*tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		cfsMust(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(h.Name))
			cfsMust(t, err)
		}
	}
	cfsMust(t, tw.Close())
	return &buf
}

func TestViewExtract(t *testing.T) {
	root := cfsTree(t)
	outside := t.TempDir() // a host directory the tars aim at
	cfsMust(t, os.Symlink("/../../../.."+outside, filepath.Join(root, "tmp", "evil")))
	cfsMust(t, os.Symlink("/../../../.."+outside+"/sub", filepath.Join(root, "tmp", "dangling")))
	cfsMust(t, os.MkdirAll(filepath.Join(root, outside), 0o755))
	v := cfsPlainView(t, root)
	ctx := context.Background()
	extract := func(dir string, opts extractOpts, hdrs ...*tar.Header) error {
		t.Helper()
		d, err := v.extractionDir(dir)
		if err != nil {
			return err
		}
		return v.extract(ctx, d, cfsTarOf(t, hdrs...), opts)
	}
	reg := func(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeReg, Name: name} }

	for _, tc := range []struct {
		name string
		hdrs []*tar.Header
		msg  string
	}{
		{"climbing name", []*tar.Header{reg("../escaped")}, `"../escaped" is outside of "/tmp"`},
		{"climbing name inside", []*tar.Header{reg("a/../../../escaped")}, "is outside of"},
		{"climbing hard link", []*tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: "../etc/passwd"}}, `invalid hardlink "h" -> "../etc/passwd"`},
		{"whiteout", []*tar.Header{reg(".wh.dir")}, "whiteout files cannot be copied"},
	} {
		err := extract("/tmp", extractOpts{}, tc.hdrs...)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want an invalid-argument error with %q", tc.name, err, tc.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "escaped")); err == nil {
		t.Error("a refused entry was written")
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", "dir")); err != nil {
		t.Errorf("a refused whiteout removed its target: %v", err)
	}

	// Symlinks, old and new, lead inside the root only; a dangling one is
	// not followed to create directories.
	if err := extract("/tmp", extractOpts{}, reg("dangling/x")); !errdefs.IsInvalidArgument(err) {
		t.Errorf("extraction through a dangling symlink: %v", err)
	}
	cfsMust(t, extract("/tmp", extractOpts{},
		reg("evil/pwned"),
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "s", Linkname: "/etc"},
		reg("s/owned"),
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "up2", Linkname: "../../../../../.."},
		reg("up2/top"),
	))
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("extraction wrote outside the root: %v", entries)
	}
	for _, p := range []string{outside + "/pwned", "etc/owned", "top"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s is not inside the root: %v", p, err)
		}
	}

	// Owners: replaced unless kept.
	cfsMust(t, extract("/tmp/dir", extractOpts{owner: &[2]int{0, 0}}, &tar.Header{Typeflag: tar.TypeReg, Name: "owned", Uid: 1234, Gid: 4321}))
	cfsMust(t, extract("/tmp/dir", extractOpts{}, &tar.Header{Typeflag: tar.TypeReg, Name: "kept", Uid: 1234, Gid: 4321}))
	for name, want := range map[string]uint32{"owned": 0, "kept": 1234} {
		var st unix.Stat_t
		cfsMust(t, unix.Lstat(filepath.Join(root, "tmp/dir", name), &st))
		if st.Uid != want {
			t.Errorf("%s is owned by %d, want %d", name, st.Uid, want)
		}
	}

	// The container's user, looked up in its own /etc/passwd.
	for spec, want := range map[string][2]int{"": {0, 0}, "berth": {1000, 1001}, "berth:staff": {1000, 1001}, "7:8": {7, 8}} {
		uid, gid, err := v.user(spec)
		if err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("user %q = %d:%d %v, want %v", spec, uid, gid, err, want)
		}
	}
	if _, _, err := v.user("nobody-here"); err == nil {
		t.Error("an unknown user name resolved")
	}

	// Docker's checks of the destination and of dir/non-dir overwrites.
	if _, err := v.extractionDir("/etc/passwd"); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "extraction point is not a directory") {
		t.Errorf("extract into a file: %v", err)
	}
	if _, err := v.extractionDir("/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("extract into a missing directory: %v", err)
	}
	err := extract("/tmp", extractOpts{noOverwriteDirNonDir: true}, reg("dir"))
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), `cannot overwrite directory "/tmp/dir" with non-directory "/tmp"`) {
		t.Errorf("file over a directory: %v", err)
	}
	err = extract("/", extractOpts{noOverwriteDirNonDir: true}, &tar.Header{Typeflag: tar.TypeDir, Name: "etc/passwd/"})
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "cannot overwrite non-directory") {
		t.Errorf("directory over a file: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp/dir")); err != nil || !fi.IsDir() {
		t.Errorf("the refused overwrite changed /tmp/dir: %v", err)
	}
}

func TestViewMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (mount namespaces)")
	}
	root := cfsTree(t)
	vol, ro, conf := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "app.conf")
	cfsMust(t, os.WriteFile(filepath.Join(vol, "v.txt"), []byte("volume"), 0o644))
	cfsMust(t, os.WriteFile(conf, []byte("conf"), 0o644))
	// /lib is a symlink to usr/lib: the mount must land in usr/lib.
	mounts := []container.Mount{
		{Type: "bind", Source: ro, Destination: "/data/ro"},
		{Type: "volume", Source: vol, Destination: "/data", RW: true},
		{Type: "bind", Source: conf, Destination: "/lib/app.conf", RW: true},
		{Type: "tmpfs", Destination: "/run"},
	}
	v := &ctrView{root: -1, ns: -1}
	t.Cleanup(v.Close)
	cfsMust(t, v.openAt(root, mounts))

	if st, _, err := v.stat("/data/v.txt"); err != nil || st.Size != 6 {
		t.Errorf("stat of a file in the volume: %+v %v", st, err)
	}
	if st, _, err := v.stat("/usr/lib/app.conf"); err != nil || st.Size != 4 {
		t.Errorf("stat of a bound file: %+v %v", st, err)
	}
	if _, err := v.open("/data/ro/x", unix.O_CREAT|unix.O_WRONLY); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a read-only bind: %v, want EROFS", err)
	}
	d, err := v.extractionDir("/data")
	cfsMust(t, err)
	cfsMust(t, v.extract(context.Background(), d, cfsTarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "new.txt"}), extractOpts{}))
	if b, err := os.ReadFile(filepath.Join(vol, "new.txt")); err != nil || string(b) != "new.txt" {
		t.Errorf("extraction into the volume: %q %v", b, err)
	}
	var buf bytes.Buffer
	cfsMust(t, v.archive(context.Background(), &buf, "/", "."))
	names, _, _ := cfsTarEntries(t, &buf)
	if !slices.Contains(names, "./data/v.txt") || !slices.Contains(names, "./usr/lib/app.conf") {
		t.Errorf("archive of / misses the mounts' content: %q", names)
	}

	// The host sees none of it.
	for _, dir := range []string{root, vol, ro} {
		if m, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); err != nil || len(m) != 0 {
			t.Errorf("the view's mounts show on the host under %s: %v %v", dir, m, err)
		}
	}
	// Docker makes missing mount points; tmpfs mounts are not part of cp.
	// A mount point below another mount is made in that mount.
	for _, p := range []string{root + "/data", vol + "/ro", root + "/usr/lib/app.conf"} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("mount point %s was not made: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "run")); err == nil {
		t.Error("a tmpfs mount point was made")
	}
	v.Close()
	if _, err := os.Lstat(filepath.Join(root, "data", "v.txt")); err == nil {
		t.Error("the volume's content is in the root's own directory")
	}
}
