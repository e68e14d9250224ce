package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry is one tar entry of a hand-made layer.
type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}, body: body}
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: time.Unix(1700000000, 0)}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: time.Unix(1700000000, 0)}}
}

func whiteout(name string) entry { return file(name, "") }

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func apply(t testing.TB, root string, data []byte, opts ApplyOptions) {
	t.Helper()
	if _, err := Apply(context.Background(), root, bytes.NewReader(data), opts); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func writeTree(t testing.TB, root string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTree(context.Background(), &buf, root); err != nil {
		t.Fatalf("write tree: %v", err)
	}
	return buf.Bytes()
}

// node is what a test compares of one file.
type node struct {
	Mode     uint32
	Uid, Gid uint32
	Size     int64
	Mtime    unix.Timespec
	Rdev     uint64
	Link     string
	Xattrs   string
	Sum      string
	Nlink    uint64
}

type tree map[string]node

// snapshot records every entry under root (root itself excluded) and the
// hard link groups (paths sharing an inode).
func snapshot(t testing.TB, root string) (tree, [][]string) {
	t.Helper()
	out := tree{}
	inodes := map[uint64][]string{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Mtime: st.Mtim, Rdev: st.Rdev, Nlink: uint64(st.Nlink)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Sum, n.Size = hex.EncodeToString(s[:]), st.Size
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFLNK:
			n.Link, _ = os.Readlink(p)
		}
		n.Xattrs = xattrString(t, p)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			n.Nlink = 0 // depends on subdirectories only
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	var groups [][]string
	for _, g := range inodes {
		sort.Strings(g)
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i][0] < groups[j][0] })
	return out, groups
}

func xattrString(t testing.TB, p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		fmt.Fprintf(&b, "%s=%q;", name, v[:m])
	}
	return b.String()
}

func compareTrees(t testing.TB, want, got tree) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		if w != g {
			t.Errorf("%s:\n want %+v\n got  %+v", p, w, g)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected", p)
		}
	}
}

// capability is a version 2 security.capability value granting
// CAP_NET_BIND_SERVICE, effective.
func capability() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// richTree fills dir with every kind of entry Apply must preserve.
func richTree(t testing.TB, dir string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	must(t, os.MkdirAll(p("etc/sub"), 0o755))
	must(t, os.MkdirAll(p("tmp"), 0o755))
	must(t, os.MkdirAll(p("srv/data"), 0o755))
	must(t, os.MkdirAll(p("empty"), 0o755))
	must(t, os.WriteFile(p("etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(p("etc/sub/big"), bytes.Repeat([]byte("berth!"), 50000), 0o600))
	must(t, os.WriteFile(p("etc/empty"), nil, 0o444))
	must(t, os.WriteFile(p("suid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.WriteFile(p("sgid"), []byte("x"), 0o755))
	must(t, os.WriteFile(p("ping"), []byte("ELF"), 0o755))
	must(t, os.WriteFile(p("srv/data/a"), []byte("shared"), 0o640))
	must(t, os.Link(p("srv/data/a"), p("srv/b")))
	must(t, os.Link(p("srv/data/a"), p("c")))
	must(t, os.Symlink("passwd", p("etc/rel-link")))
	must(t, os.Symlink("/etc/passwd", p("abs-link")))
	must(t, os.Symlink("nowhere/at/all", p("dangling")))
	must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	must(t, unix.Mkfifo(p("fifo"), 0o600))
	must(t, unix.Setxattr(p("etc/passwd"), "user.berth", []byte("v1"), 0))
	must(t, unix.Setxattr(p("etc/sub"), "user.dir", []byte("d"), 0))
	must(t, unix.Setxattr(p("srv/data/a"), "trusted.berth", []byte{0, 1, 2}, 0))
	must(t, os.Lchown(p("etc/sub/big"), 1000, 1001))
	must(t, os.Lchown(p("srv"), 12345, 54321))
	must(t, os.Lchown(p("abs-link"), 7, 8))
	must(t, os.Lchown(p("fifo"), 33, 33))
	must(t, os.Lchown(p("suid"), 0, 0))
	must(t, os.Chmod(p("suid"), 0o4755|os.ModeSetuid))
	must(t, unix.Chmod(p("suid"), 0o4755))
	must(t, unix.Chmod(p("sgid"), 0o2755))
	must(t, unix.Chmod(p("tmp"), 0o1777))
	must(t, unix.Chmod(p("srv/data"), 0o2750))
	must(t, unix.Setxattr(p("ping"), "security.capability", capability(), 0))
	// Times last, deepest first, each with nanoseconds.
	var all []string
	must(t, filepath.Walk(dir, func(q string, _ os.FileInfo, err error) error {
		all = append(all, q)
		return err
	}))
	for i := len(all) - 1; i >= 0; i-- {
		ts := []unix.Timespec{{Sec: 1600000000 + int64(i), Nsec: 123456789}, {Sec: 1500000000 + int64(i)*7, Nsec: int64(i)*1000 + 1}}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, all[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}
