package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// jail is a root inside a parent directory that also holds a sentinel
// file and directory, which no layer may touch.
type jail struct {
	parent, root, sentinel, outdir string
	before                         map[string]outsideNode
}

// outsideNode includes ctime, so a chmod, chown or xattr change shows.
type outsideNode struct {
	node
	Ctime unix.Timespec
}

func newJail(t testing.TB) *jail {
	t.Helper()
	parent := t.TempDir()
	j := &jail{
		parent:   parent,
		root:     filepath.Join(parent, "root"),
		sentinel: filepath.Join(parent, "sentinel"),
		outdir:   filepath.Join(parent, "outdir"),
	}
	must(t, os.Mkdir(j.root, 0o755))
	must(t, os.WriteFile(j.sentinel, []byte("do not touch"), 0o644))
	must(t, os.Mkdir(j.outdir, 0o755))
	must(t, os.WriteFile(filepath.Join(j.outdir, "keep"), []byte("keep"), 0o600))
	// Clean up whatever the layer made, even a directory left read-only.
	t.Cleanup(func() { unix.Chmod(j.root, 0o755) })
	j.before = j.outside(t)
	return j
}

// outside records everything under parent except root, and parent itself.
func (j *jail) outside(t testing.TB) map[string]outsideNode {
	t.Helper()
	out := map[string]outsideNode{}
	err := filepath.Walk(j.parent, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := outsideNode{node: node{Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Size: st.Size, Mtime: st.Mtim, Nlink: uint64(st.Nlink), Xattrs: xattrString(t, p)}, Ctime: st.Ctim}
		if p == j.root {
			out[p] = outsideNode{} // its contents are the layer's
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Sum = string(b)
		}
		out[p] = n
		return nil
	})
	if err != nil {
		t.Fatalf("record outside: %v", err)
	}
	return out
}

func (j *jail) check(t testing.TB) {
	t.Helper()
	after := j.outside(t)
	for p, b := range j.before {
		a, ok := after[p]
		if !ok {
			t.Errorf("outside root: %s was removed", p)
		} else if a != b {
			t.Errorf("outside root: %s changed:\n before %+v\n after  %+v", p, b, a)
		}
	}
	for p := range after {
		if _, ok := j.before[p]; !ok {
			t.Errorf("outside root: %s was created", p)
		}
	}
}

func (j *jail) apply(t testing.TB, opts ApplyOptions, entries ...entry) error {
	t.Helper()
	_, err := Apply(context.Background(), j.root, bytes.NewReader(makeTar(t, entries...)), opts)
	j.check(t)
	return err
}

func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("apply succeeded, want an error")
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error %q is not ErrInvalidArgument", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
}

func lexists(p string) bool { _, err := os.Lstat(p); return err == nil }

func bothModes(t *testing.T, fn func(t *testing.T, opts ApplyOptions)) {
	t.Run("delete", func(t *testing.T) { fn(t, ApplyOptions{Whiteouts: WhiteoutDelete}) })
	t.Run("overlay", func(t *testing.T) { fn(t, ApplyOptions{Whiteouts: WhiteoutOverlay}) })
}

func TestHostileDotDotName(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		for _, name := range []string{"../x", "../sentinel", "a/../../x", "./../outdir/keep", ".."} {
			j := newJail(t)
			err := j.apply(t, opts, file(name, "evil"))
			wantInvalid(t, err, `apply layer: entry "`+name+`": path escapes root`)
		}
	})
}

func TestHostileAbsoluteNameIsConfined(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		j := newJail(t)
		must(t, j.apply(t, opts, file(j.sentinel, "evil"), file("/../../x", "x")))
		b, err := os.ReadFile(filepath.Join(j.root, j.sentinel))
		if err != nil || string(b) != "evil" {
			t.Errorf("absolute name not placed inside root: %q %v", b, err)
		}
		if !lexists(filepath.Join(j.root, "x")) {
			t.Error("/../../x not placed at root/x")
		}
	})
}

func TestHostileSymlinkOutIsNotFollowed(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		for _, target := range []string{"", "../sentinel", "../../../../sentinel"} {
			j := newJail(t)
			if target == "" {
				target = j.sentinel
			}
			// The link itself may exist; replacing it must not write through it.
			must(t, j.apply(t, opts, symlink("evil", target), file("evil", "replaced")))
			if b, _ := os.ReadFile(filepath.Join(j.root, "evil")); string(b) != "replaced" {
				t.Errorf("evil is %q", b)
			}
		}
	})
}

func TestHostileWriteThroughSymlinkParent(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		j := newJail(t)
		// a -> the real parent (absolute): a/sentinel resolves inside root.
		err := j.apply(t, opts, symlink("a", j.parent), file("a/sentinel", "evil"))
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("unexpected error class: %v", err)
		}
		j = newJail(t)
		// b -> "..": b/sentinel is root/sentinel.
		must(t, j.apply(t, opts, symlink("b", ".."), file("b/sentinel", "evil")))
		if b, _ := os.ReadFile(filepath.Join(j.root, "sentinel")); string(b) != "evil" {
			t.Errorf("root/sentinel is %q", b)
		}
		j = newJail(t)
		// A chain of links, and /proc magic links, stay inside too.
		must(t, j.apply(t, opts, symlink("c", "d"), symlink("d", "../../.."), file("c/outdir/keep", "evil"),
			symlink("p", "/proc/self/root"+j.parent), dir("p/")))
		if b, _ := os.ReadFile(filepath.Join(j.root, "outdir/keep")); string(b) != "evil" {
			t.Errorf("root/outdir/keep is %q", b)
		}
		j = newJail(t)
		// etc -> /etc is, inside the root, a link to itself.
		wantInvalid(t, j.apply(t, opts, symlink("etc", "/etc"), file("etc/passwd", "root::0:0::/:/bin/sh\n")),
			`entry "etc/passwd": parent directory "etc": too many levels of symbolic links`)
	})
}

func TestHostileHardLinkOut(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		j := newJail(t)
		wantInvalid(t, j.apply(t, opts, hardlink("h", "../sentinel")), "path escapes root")
		j = newJail(t)
		wantInvalid(t, j.apply(t, opts, hardlink("h", j.sentinel)), "target does not exist")
		j = newJail(t)
		wantInvalid(t, j.apply(t, opts, symlink("s", j.parent), hardlink("h", "s/sentinel")), "target does not exist")
		j = newJail(t)
		// A link to a symlink pointing out is a second name of the symlink,
		// and a file written on that name replaces it.
		must(t, j.apply(t, opts, symlink("s", "../sentinel"), hardlink("h", "s"), file("h", "evil")))
		if b, _ := os.ReadFile(filepath.Join(j.root, "h")); string(b) != "evil" {
			t.Errorf("h is %q", b)
		}
	})
}

func TestHostileWhiteouts(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		for _, name := range []string{"../.wh.sentinel", "sub/.wh...", ".wh..", "a/../../.wh.outdir"} {
			j := newJail(t)
			err := j.apply(t, opts, whiteout(name))
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%s: want invalid argument, got %v", name, err)
			}
		}
		// Through links: confined to the root (or refused, where overlay mode
		// would have to create a directory where the link is).
		for _, w := range []string{"s/.wh.sentinel", "s/outdir/.wh..wh..opq", "u/.wh.keep", "u/.wh..wh..opq"} {
			j := newJail(t)
			err := j.apply(t, opts, symlink("s", j.parent), symlink("u", "../outdir"), whiteout(w))
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Errorf("%s: %v", w, err)
			}
		}
	})
}

func TestHostileMetadataThroughLinks(t *testing.T) {
	bothModes(t, func(t *testing.T, opts ApplyOptions) {
		j := newJail(t)
		old := time.Unix(1000, 0)
		l := symlink("l", j.sentinel)
		l.hdr.Uid, l.hdr.Gid, l.hdr.ModTime = 4242, 4242, old
		d := dir("d/")
		d.hdr.Mode, d.hdr.Uid, d.hdr.ModTime = 0o777, 4242, old
		dev := entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "f", Mode: 0o666, Uid: 4242, ModTime: old}}
		x := symlink("x", j.sentinel)
		x.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.evil": "1"}
		must(t, j.apply(t, opts,
			l,                         // chown and utimes of a link never reach its target
			symlink("d", j.outdir), d, // a directory entry over a link replaces the link
			symlink("f", j.sentinel), dev, // as does a fifo
			x, // xattrs of a link are set on the link
			symlink("r", j.outdir), hardlink("r2", "r"),
		))
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(j.root, "l"), &st))
		if st.Uid != 4242 || st.Mtim.Sec != 1000 {
			t.Errorf("link l: uid %d mtime %d, want 4242 1000", st.Uid, st.Mtim.Sec)
		}
		must(t, unix.Lstat(filepath.Join(j.root, "d"), &st))
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o777 != 0o777 || st.Uid != 4242 {
			t.Errorf("d: mode %o uid %d", st.Mode, st.Uid)
		}
		if xattrString(t, filepath.Join(j.root, "x")) != `trusted.evil="1";` {
			t.Errorf("x xattrs: %s", xattrString(t, filepath.Join(j.root, "x")))
		}
	})
}

func TestHostileOverlayXattrsDropped(t *testing.T) {
	j := newJail(t)
	d := dir("d/")
	d.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.ok": "1"}
	must(t, j.apply(t, ApplyOptions{Whiteouts: WhiteoutOverlay}, d))
	if got := xattrString(t, filepath.Join(j.root, "d")); got != `user.ok="1";` {
		t.Errorf("xattrs %s", got)
	}
}

func TestHostileRootEntry(t *testing.T) {
	j := newJail(t)
	wantInvalid(t, j.apply(t, ApplyOptions{}, file(".", "x")), "names the root")
	j = newJail(t)
	r := dir("./")
	r.hdr.Mode = 0o700
	must(t, j.apply(t, ApplyOptions{}, r))
	if fi, _ := os.Stat(j.root); fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v", fi.Mode())
	}
}

func TestTruncatedAndCorrupt(t *testing.T) {
	good := makeTar(t, dir("d/"), file("d/f", strings.Repeat("x", 10000)), file("g", "g"))
	for _, n := range []int{700, 1500, 5000} {
		_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(good[:n]), ApplyOptions{})
		if !errdefs.IsDataLoss(err) {
			t.Errorf("truncated at %d: want data loss, got %v", n, err)
		}
	}
	bad := bytes.Clone(good)
	bad[512+100] ^= 0xff // the header checksum of d/f no longer matches
	if _, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(bad), ApplyOptions{}); !errdefs.IsDataLoss(err) {
		t.Errorf("bad header: want data loss, got %v", err)
	}

	for _, c := range []Compression{Gzip, Zstd} {
		var z bytes.Buffer
		w, err := Compress(&z, c)
		must(t, err)
		_, err = w.Write(good)
		must(t, err)
		must(t, w.Close())
		data := z.Bytes()
		data[len(data)/2] ^= 0x55
		data[len(data)/2+1] ^= 0x55
		r, got, err := Decompress(bytes.NewReader(data))
		if err == nil {
			if got != c {
				t.Errorf("detected %v, want %v", got, c)
			}
			_, err = Apply(context.Background(), t.TempDir(), r, ApplyOptions{})
			r.Close()
		}
		if !errdefs.IsDataLoss(err) {
			t.Errorf("corrupt %v: want data loss, got %v", c, err)
		}
	}
}
