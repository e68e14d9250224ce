package snapshottest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/internal/snapshot"
)

// env is one snapshotter under test with the root and database it uses.
type env struct {
	t    *testing.T
	ctx  context.Context
	root string
	db   *bolt.DB
	open NewFunc
	sn   snapshot.Snapshotter
}

func newEnv(t *testing.T, open NewFunc) *env {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "snapshots")
	// Registered before any mount's cleanup, so it runs after all of them.
	t.Cleanup(func() {
		if leaks := mountsMentioning(t, root); len(leaks) > 0 {
			t.Errorf("mounts left behind:\n\t%s", strings.Join(leaks, "\n\t"))
		}
	})
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, ctx: context.Background(), root: root, db: db, open: open}
	e.reopen()
	return e
}

// reopen closes the snapshotter (if open) and opens it again on the same
// root and database.
func (e *env) reopen() {
	e.t.Helper()
	if e.sn != nil {
		if err := e.sn.Close(); err != nil {
			e.t.Fatalf("close: %v", err)
		}
	}
	sn := e.open(e.t, e.root, e.db)
	if sn == nil {
		e.t.Fatal("newSnapshotter returned nil")
	}
	e.t.Cleanup(func() { sn.Close() })
	e.sn = sn
}

// mountsMentioning lists the mounts whose mount point, source, root or
// options mention path.
func mountsMentioning(t *testing.T, path string) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatalf("read mounts: %v", err)
	}
	var out []string
	for _, m := range infos {
		line := fmt.Sprintf("%s %s %s %s %s", m.Mountpoint, m.Root, m.FSType, m.Source, m.VFSOptions)
		if strings.Contains(line, path) {
			out = append(out, line)
		}
	}
	return out
}

// mount mounts mounts in a new temporary directory, unmounted when the test
// ends (or earlier with unmount).
func (e *env) mount(mounts []snapshot.Mount) string {
	e.t.Helper()
	dir := e.t.TempDir()
	e.t.Cleanup(func() {
		if err := snapshot.UnmountAll(dir); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	if err := snapshot.MountAll(mounts, dir); err != nil {
		e.t.Fatalf("mount %+v: %v", mounts, err)
	}
	return dir
}

func (e *env) unmount(dir string) {
	e.t.Helper()
	if err := snapshot.UnmountAll(dir); err != nil {
		e.t.Fatalf("unmount: %v", err)
	}
}

// layer prepares an active snapshot from parent, applies change through
// a real mount, and commits it as name.
func (e *env) layer(name, parent string, change func(root string)) {
	e.t.Helper()
	key := name + "-active"
	mounts, err := e.sn.Prepare(e.ctx, key, parent)
	if err != nil {
		e.t.Fatalf("prepare %s: %v", key, err)
	}
	dir := e.mount(mounts)
	change(dir)
	e.unmount(dir)
	if err := e.sn.Commit(e.ctx, name, key); err != nil {
		e.t.Fatalf("commit %s: %v", key, err)
	}
}

// view makes a view of parent, mounts it and returns the mount point.
func (e *env) view(key, parent string) string {
	e.t.Helper()
	mounts, err := e.sn.View(e.ctx, key, parent)
	if err != nil {
		e.t.Fatalf("view %s of %s: %v", key, parent, err)
	}
	return e.mount(mounts)
}

// rootEntries lists the names in the snapshotter's root.
func (e *env) rootEntries() []string {
	e.t.Helper()
	entries, err := os.ReadDir(e.root)
	if err != nil {
		e.t.Fatalf("read root: %v", err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

func (e *env) walk() map[string]snapshot.Info {
	e.t.Helper()
	out := map[string]snapshot.Info{}
	err := e.sn.Walk(e.ctx, func(_ context.Context, i snapshot.Info) error {
		out[i.Name] = i
		return nil
	})
	if err != nil {
		e.t.Fatalf("walk: %v", err)
	}
	return out
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

func remove(t *testing.T, root, name string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
		t.Fatalf("remove %s: %v", name, err)
	}
}

// tree describes every entry below root: "dir", "file <mode> <content>" or
// "link -> <target>".
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			out[rel] = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %o %s", fi.Mode().Perm(), data)
		default:
			out[rel] = "other " + fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", root, err)
	}
	return out
}

// checkTree fails t unless the tree at root is exactly want.
func checkTree(t *testing.T, what, root string, want map[string]string) {
	t.Helper()
	got := tree(t, root)
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (want %q)", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: got %q, want %q", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s (%q)", k, g))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// wantErr fails t unless err is of class want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}
