package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeOf describes every entry under dir, one line each: path, type,
// mode, owner, size, mtime of files, content or link target.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := rel + " " + fi.Mode().String() + " " + strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid))
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + fi.ModTime().UTC().Format(time.RFC3339) + " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestUnpackContextReused syncs a second context into a directory that
// holds a first one: the result is exactly what unpacking the second
// into a new directory gives, files that did not change keep their
// inode, and a hard link cannot reach a file the first left behind.
func TestUnpackContextReused(t *testing.T) {
	owned := func(e tarEntry, uid, gid int) tarEntry { e.hdr.Uid, e.hdr.Gid = uid, gid; return e }
	first := tarOf(t,
		dirEntry(".", 0o755),
		file("Dockerfile", "FROM scratch\n", 0o644),
		file("same", "unchanged", 0o644),
		file("shorter", "a long first version", 0o644),
		file("longer", "short", 0o644),
		file("mode", "x", 0o644),
		owned(file("owner", "x", 0o644), 1000, 1000),
		file("gone", "removed by the second", 0o644),
		dirEntry("olddir", 0o755),
		file("olddir/f", "in a removed directory", 0o644),
		file("becomes-dir", "a file first", 0o644),
		dirEntry("becomes-file", 0o755),
		file("becomes-file/f", "x", 0o644),
		link(tar.TypeSymlink, "sym", "first-target"),
		link(tar.TypeSymlink, "implied", "/etc"),
		dirEntry("private", 0o700),
		file("private/f", "x", 0o600),
		file("secret", "the first context's", 0o600),
		dirEntry("keep", 0o750),
		file("keep/stale", "x", 0o644),
		file("keep/f", "x", 0o644),
	)
	second := tarOf(t,
		dirEntry(".", 0o750),
		file("Dockerfile", "FROM scratch\n", 0o644),
		file("same", "unchanged", 0o644),
		file("shorter", "short", 0o644),
		file("longer", strings.Repeat("grown ", 30000), 0o644),
		file("mode", "x", 0o755),
		file("owner", "x", 0o644),
		dirEntry("becomes-dir", 0o711),
		file("becomes-dir/f", "now a directory", 0o644),
		file("becomes-file", "now a file", 0o644),
		link(tar.TypeSymlink, "sym", "second-target"),
		file("implied/f", "the symlink left by the first is not followed", 0o644),
		file("private/f", "its directory is implied now", 0o644),
		dirEntry("keep", 0o755),
		file("keep/f", "x", 0o644),
		file("dup", "given twice: the first", 0o644),
		file("dup", "given twice: the second", 0o644),
	)
	tmp := t.TempDir()
	want, err := extractContext(context.Background(), tmp, bytes.NewReader(second))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "reused")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unpackContext(context.Background(), dir, false, bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	sameIno := inode(t, filepath.Join(dir, "same"))
	shorterIno := inode(t, filepath.Join(dir, "shorter"))
	if err := unpackContext(context.Background(), dir, true, bytes.NewReader(second)); err != nil {
		t.Fatal(err)
	}
	got, wantTree := treeOf(t, dir), treeOf(t, want)
	if strings.Join(got, "\n") != strings.Join(wantTree, "\n") {
		t.Errorf("synced over the first context:\n%s\nunpacked into a new directory:\n%s", strings.Join(got, "\n"), strings.Join(wantTree, "\n"))
	}
	for _, d := range []string{dir, want} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: the context directory's mode is %v, want the entry's 0750", d, fi.Mode().Perm())
		}
	}
	if inode(t, filepath.Join(dir, "same")) != sameIno || inode(t, filepath.Join(dir, "shorter")) != shorterIno {
		t.Error("files already there were made again instead of rewritten in place")
	}

	// A hard link to a name only the earlier context had is refused, as
	// it is in a new directory.
	steal := tarOf(t, link(tar.TypeLink, "stolen", "same"))
	if err := unpackContext(context.Background(), dir, true, bytes.NewReader(steal)); err == nil {
		t.Error("a hard link reached a file an earlier context left behind")
	}
}

// TestContextDirPool unpacks through the pool: the same directory is
// handed out again once given back and holds only the newest context, a
// build running meanwhile gets one of its own, removed after, a failed
// unpack leaves nothing, and prune removes the kept directories.
func TestContextDirPool(t *testing.T) {
	scratch := t.TempDir()
	p := &contextDirPool{root: filepath.Join(scratch, "build-contexts"), tmp: filepath.Join(scratch, "tmp")}
	if err := os.Mkdir(p.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, releaseA, err := p.unpack(ctx, bytes.NewReader(tarOf(t, file("Dockerfile", "FROM a\n", 0o644), file("a", "a", 0o644))))
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := p.unpack(ctx, bytes.NewReader(tarOf(t, file("Dockerfile", "FROM b\n", 0o644))))
	if err != nil {
		t.Fatal(err)
	}
	c, releaseC, err := p.unpack(ctx, bytes.NewReader(tarOf(t, file("Dockerfile", "FROM c\n", 0o644))))
	if err != nil {
		t.Fatal(err)
	}
	if a == b || filepath.Dir(a) != p.root || filepath.Dir(b) != p.root {
		t.Errorf("two builds at once got %s and %s, want two kept directories of their own", a, b)
	}
	if filepath.Dir(c) != p.tmp {
		t.Errorf("a third build at once got %s, want a directory under %s", c, p.tmp)
	}
	releaseC()
	if _, err := os.Stat(c); !os.IsNotExist(err) {
		t.Errorf("the third build's directory is still there after it: %v", err)
	}
	releaseA()
	again, releaseAgain, err := p.unpack(ctx, bytes.NewReader(tarOf(t, file("Dockerfile", "FROM d\n", 0o644))))
	if err != nil {
		t.Fatal(err)
	}
	if again != a {
		t.Errorf("the next build got %s, want the given back %s", again, a)
	}
	if got := treeOf(t, again); len(got) != 1 || !strings.HasSuffix(got[0], "FROM d\n") {
		t.Errorf("the reused directory holds %q, want only the new Dockerfile", got)
	}
	releaseAgain()

	if _, _, err := p.unpack(ctx, strings.NewReader("not a tar at all, just words and more words to fill a block")); err == nil {
		t.Fatal("a malformed context unpacked")
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Errorf("a failed unpack left its directory: %v", err)
	}
	if err := p.prune(); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(p.root)
	if len(left) != 1 || filepath.Join(p.root, left[0].Name()) != b {
		t.Errorf("after prune %s holds %v, want only the busy %s", p.root, left, filepath.Base(b))
	}
	releaseB()
	if err := p.prune(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(p.root); len(left) != 0 {
		t.Errorf("after prune with no build running %s holds %v", p.root, left)
	}
	if left, _ := os.ReadDir(p.tmp); len(left) != 0 {
		t.Errorf("%s holds %v after every build", p.tmp, left)
	}
}

// TestUnpackContextManyDirs writes files into more directories than the
// writer keeps open (maxContextDirFDs), going back and forth between
// them, so that its descriptors are closed and reopened on the way: every
// file lands where it should, fresh and synced over itself.
func TestUnpackContextManyDirs(t *testing.T) {
	n := maxContextDirFDs*2 + 7
	var entries []tarEntry
	for round := range 2 {
		for i := range n {
			entries = append(entries, file(fmt.Sprintf("d%03d/sub/f%d", i, round), fmt.Sprintf("%d/%d", i, round), 0o644))
		}
	}
	data := tarOf(t, entries...)
	tmp := t.TempDir()
	dir, err := extractContext(context.Background(), tmp, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		for round := range 2 {
			for i := range n {
				p := filepath.Join(dir, fmt.Sprintf("d%03d/sub/f%d", i, round))
				if got, err := os.ReadFile(p); err != nil || string(got) != fmt.Sprintf("%d/%d", i, round) {
					t.Fatalf("%s: %s: %q %v", what, p, got, err)
				}
			}
		}
	}
	check("fresh")
	if err := unpackContext(context.Background(), dir, true, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	check("synced")
}

// TestUnpackContextSetgid unpacks under a setgid directory owned by
// another group: a new entry takes that group from it, so the writer
// gives every entry the header's owner explicitly, even the daemon's own.
func TestUnpackContextSetgid(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "ctx")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const otherGID = 4242
	if err := os.Chown(dir, 0, otherGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	data := tarOf(t, file("f", "x", 0o644), dirEntry("d", 0o755), file("d/g", "y", 0o644))
	if err := unpackContext(context.Background(), dir, false, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"f", "d", "d/g"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != uint32(os.Getegid()) {
			t.Errorf("%s: group %d, want the header's %d (not the setgid directory's %d)", p, gid, os.Getegid(), otherGID)
		}
	}
}
