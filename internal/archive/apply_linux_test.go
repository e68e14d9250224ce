package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	richTree(t, src)
	data := writeTree(t, src)
	if !bytes.Equal(data, writeTree(t, src)) {
		t.Fatal("writing the same tree twice gave different bytes")
	}
	apply(t, dst, data, ApplyOptions{})
	want, wantLinks := snapshot(t, src)
	got, gotLinks := snapshot(t, dst)
	// The fixture really has what must survive.
	if !strings.Contains(want["ping"].Xattrs, "security.capability") || want["suid"].Mode&0o7777 != 0o4755 ||
		want["srv"].Uid != 12345 || want["null"].Rdev == 0 || want["abs-link"].Uid != 7 {
		t.Fatalf("fixture lacks what it should test: %+v", want)
	}
	compareTrees(t, want, got)
	if len(wantLinks) != 1 || len(wantLinks[0]) != 3 {
		t.Fatalf("source hard link groups %v", wantLinks)
	}
	if len(gotLinks) != 1 || len(gotLinks[0]) != 3 || gotLinks[0][0] != wantLinks[0][0] {
		t.Errorf("hard links: want %v, got %v", wantLinks, gotLinks)
	}
	if !bytes.Equal(data, writeTree(t, dst)) {
		t.Error("the applied tree does not write the same tar as its source")
	}
}

func TestApplyReplaces(t *testing.T) {
	root := t.TempDir()
	apply(t, root, makeTar(t, dir("d/"), file("d/x", "x"), file("f", "f"), symlink("s", "f"), dir("k/"), file("k/child", "c")), ApplyOptions{})
	d := file("d", "now a file")
	d.hdr.ModTime = time.Unix(2000, 5)
	d.hdr.AccessTime = time.Unix(3000, 7)
	d.hdr.Format = tar.FormatPAX
	k := dir("k/")
	k.hdr.Mode = 0o700
	k.hdr.ModTime = time.Unix(4000, 0)
	dd := dir("dd/")
	dd.hdr.ModTime = time.Unix(5000, 0)
	dd2 := file("dd", "file replacing a dir of the same layer")
	dd2.hdr.ModTime = time.Unix(6000, 0)
	apply(t, root, makeTar(t, d, dir("f/"), file("s", "s"), k, dd, dd2), ApplyOptions{})

	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(root, "d"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mtim != (unix.Timespec{Sec: 2000, Nsec: 5}) || st.Atim != (unix.Timespec{Sec: 3000, Nsec: 7}) {
		t.Errorf("d: mode %o mtime %v atime %v", st.Mode, st.Mtim, st.Atim)
	}
	must(t, unix.Lstat(filepath.Join(root, "f"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("f is not a directory")
	}
	must(t, unix.Lstat(filepath.Join(root, "s"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("s is not a file")
	}
	must(t, unix.Lstat(filepath.Join(root, "k"), &st))
	if st.Mode&0o7777 != 0o700 || st.Mtim.Sec != 4000 || !lexists(filepath.Join(root, "k/child")) {
		t.Errorf("k: mode %o mtime %d, child kept %v", st.Mode&0o7777, st.Mtim.Sec, lexists(filepath.Join(root, "k/child")))
	}
	must(t, unix.Lstat(filepath.Join(root, "dd"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mtim.Sec != 6000 {
		t.Errorf("dd: mode %o mtime %d, want a file with mtime 6000", st.Mode, st.Mtim.Sec)
	}
}

func TestCompression(t *testing.T) {
	data := bytes.Repeat([]byte("layer "), 10000)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		var z bytes.Buffer
		w, err := Compress(&z, c)
		must(t, err)
		_, err = w.Write(data)
		must(t, err)
		must(t, w.Close())
		if got := DetectCompression(z.Bytes()); got != c {
			t.Errorf("%v detected as %v", c, got)
		}
		r, got, err := Decompress(&z)
		must(t, err)
		if got != c {
			t.Errorf("%v: Decompress says %v", c, got)
		}
		out, err := io.ReadAll(r)
		must(t, err)
		must(t, r.Close())
		if !bytes.Equal(out, data) {
			t.Errorf("%v: round trip differs", c)
		}
	}
	if s := Zstd.String() + Gzip.String() + Uncompressed.String(); s != "zstdgzipuncompressed" {
		t.Errorf("names %s", s)
	}
	// Short and empty streams are uncompressed.
	for _, in := range [][]byte{nil, {0x1f}} {
		r, c, err := Decompress(bytes.NewReader(in))
		must(t, err)
		if out, _ := io.ReadAll(r); c != Uncompressed || !bytes.Equal(out, in) {
			t.Errorf("%x: %v %x", in, c, out)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(ents)
}

// TestNoFDLeak runs valid, hostile and broken layers and the writers, and
// checks that no file descriptor is left open.
func TestNoFDLeak(t *testing.T) {
	src := t.TempDir()
	richTree(t, src)
	tree := writeTree(t, src)
	layers := [][]byte{
		tree, baseLayer(t), topLayer(t), tree[:len(tree)/2],
		makeTar(t, symlink("a", ".."), file("a/x", "x"), hardlink("h", "../x")),
		makeTar(t, symlink("etc", "/etc"), file("etc/passwd", "x")),
		makeTar(t, whiteout("d/.wh..wh..opq"), hardlink("l", "missing")),
	}
	run := func() {
		lower := t.TempDir()
		apply(t, lower, baseLayer(t), ApplyOptions{Whiteouts: WhiteoutOverlay})
		for _, opts := range []ApplyOptions{{}, {Whiteouts: WhiteoutOverlay, Lowers: []string{lower}}} {
			for _, l := range layers {
				Apply(context.Background(), t.TempDir(), bytes.NewReader(l), opts) //nolint:errcheck // some fail on purpose
			}
		}
		writeTree(t, src)
		must(t, WriteDiff(context.Background(), io.Discard, lower, src))
		_, err := Changes(context.Background(), lower, src)
		must(t, err)
		_, err = OverlayChanges(context.Background(), src, []string{lower})
		must(t, err)
	}
	run() // warm up whatever the runtime opens once
	before := openFDs(t)
	run()
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors before, %d after", before, after)
	}
}
