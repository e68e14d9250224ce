// Package snapshottest is the conformance suite every snapshot.Snapshotter
// implementation passes. It works through real mounts, so it needs root
// and the kernel features of the implementation under test. It expects
// the on-disk layout berth's snapshotters share: each snapshot in a
// directory directly under root, and nothing else there.
package snapshottest

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

// NewFunc opens the snapshotter under test on root and db; it is called
// again with the same arguments to test reopening.
type NewFunc func(t *testing.T, root string, db *bolt.DB) snapshot.Snapshotter

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, newSnapshotter NewFunc) {
	if os.Geteuid() != 0 {
		t.Fatal("the snapshot conformance suite mounts filesystems: run it as root")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Chain", testChain},
		{"ViewReadOnly", testViewReadOnly},
		{"Errors", testErrors},
		{"Remove", testRemove},
		{"Walk", testWalk},
		{"Labels", testLabels},
		{"Usage", testUsage},
		{"Reopen", testReopen},
		{"CrashLeftovers", testCrashLeftovers},
		{"HundredLayers", testHundredLayers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newEnv(t, newSnapshotter)) })
	}
}

// The trees of the three layers of testChain, as tree describes them.
var (
	state1 = map[string]string{
		"a.txt":    "file 644 a1",
		"mod":      "file 644 v1",
		"dir":      "dir",
		"dir/keep": "file 644 k",
		"dir/del":  "file 644 d",
		"bin":      "file 755 #!/bin/sh",
		"link":     "link -> a.txt",
		"h1":       "file 644 hard",
		"h2":       "file 644 hard",
	}
	state2 = merge(state1, map[string]string{
		"b.txt":    "file 644 b2",
		"mod":      "file 644 v2",
		"dir/del":  "",
		"newdir":   "dir",
		"newdir/x": "file 644 x",
		"bin":      "file 700 #!/bin/sh",
	})
	state3 = merge(state2, map[string]string{
		"c.txt":     "file 644 c3",
		"a.txt":     "",
		"mod":       "file 644 v3",
		"dir/keep":  "",
		"dir/fresh": "file 644 f",
	})
)

// merge returns base with changes applied; "" deletes.
func merge(base, changes map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// buildChain commits l1, l2 and l3 with the changes state1..3 describe:
// file adds, modifies, deletions, a directory replaced by a fresh one, a
// mode change, a symlink and hard links.
func buildChain(t *testing.T, e *env) {
	e.layer("l1", "", func(r string) {
		write(t, r, "a.txt", "a1")
		write(t, r, "mod", "v1")
		write(t, r, "dir/keep", "k")
		write(t, r, "dir/del", "d")
		write(t, r, "bin", "#!/bin/sh")
		if err := os.Chmod(filepath.Join(r, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("a.txt", filepath.Join(r, "link")); err != nil {
			t.Fatal(err)
		}
		write(t, r, "h1", "hard")
		if err := os.Link(filepath.Join(r, "h1"), filepath.Join(r, "h2")); err != nil {
			t.Fatal(err)
		}
		checkTree(t, "layer 1 as written", r, state1)
	})
	e.layer("l2", "l1", func(r string) {
		checkTree(t, "layer 2 before changes", r, state1)
		write(t, r, "b.txt", "b2")
		write(t, r, "mod", "v2")
		remove(t, r, "dir/del")
		write(t, r, "newdir/x", "x")
		if err := os.Chmod(filepath.Join(r, "bin"), 0o700); err != nil {
			t.Fatal(err)
		}
	})
	e.layer("l3", "l2", func(r string) {
		checkTree(t, "layer 3 before changes", r, state2)
		write(t, r, "c.txt", "c3")
		remove(t, r, "a.txt")
		write(t, r, "mod", "v3")
		remove(t, r, "dir")
		write(t, r, "dir/fresh", "f")
	})
}

func testChain(t *testing.T, e *env) {
	buildChain(t, e)
	for i, c := range []struct {
		parent string
		want   map[string]string
	}{{"l1", state1}, {"l2", state2}, {"l3", state3}} {
		dir := e.view(fmt.Sprintf("v%d", i+1), c.parent)
		checkTree(t, "view of "+c.parent, dir, c.want)
		if c.parent != "l3" && inodeOf(t, filepath.Join(dir, "h1")) != inodeOf(t, filepath.Join(dir, "h2")) {
			t.Errorf("view of %s: h1 and h2 are no longer hard links", c.parent)
		}
	}
	// A committed snapshot's own mounts show it read-only.
	mounts, err := e.sn.Mounts(e.ctx, "l3")
	if err != nil {
		t.Fatalf("mounts of l3: %v", err)
	}
	checkTree(t, "mounts of committed l3", e.mount(mounts), state3)

	// An active snapshot's Mounts are the ones Prepare returned.
	prepared, err := e.sn.Prepare(e.ctx, "rw", "l3")
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.sn.Mounts(e.ctx, "rw")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(prepared) != fmt.Sprint(again) {
		t.Errorf("mounts of rw: got %v, Prepare returned %v", again, prepared)
	}
	dir := e.mount(again)
	write(t, dir, "new", "n")
	checkTree(t, "active over l3", dir, merge(state3, map[string]string{"new": "file 644 n"}))
	// Writing in the active snapshot changed none of its parents.
	checkTree(t, "view of l3 after writing its child", e.view("v3-again", "l3"), state3)
}

func testViewReadOnly(t *testing.T, e *env) {
	buildChain(t, e)
	for _, parent := range []string{"", "l1", "l3"} {
		dir := e.view("view-"+parent, parent)
		err := os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644)
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("write into view of %q: got %v, want EROFS", parent, err)
		}
		if parent != "" {
			err = os.Remove(filepath.Join(dir, "mod"))
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("remove from view of %q: got %v, want EROFS", parent, err)
			}
		}
	}
	// Writing through a view's mount is refused; UpperDir refuses it too.
	mounts, err := e.sn.Mounts(e.ctx, "view-l1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := snapshot.UpperDir(mounts); !errdefs.IsInvalidArgument(err) {
		t.Errorf("upper dir of a view: got %v, want invalid argument", err)
	}
}

func testErrors(t *testing.T, e *env) {
	ctx := e.ctx
	buildChain(t, e)
	if _, err := e.sn.Prepare(ctx, "active", "l3"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.View(ctx, "view", "l3"); err != nil {
		t.Fatal(err)
	}
	before := e.rootEntries()

	_, err := e.sn.Stat(ctx, "nope")
	wantErr(t, "stat unknown", err, errdefs.ErrNotFound)
	_, err = e.sn.Mounts(ctx, "nope")
	wantErr(t, "mounts unknown", err, errdefs.ErrNotFound)
	_, err = e.sn.Usage(ctx, "nope")
	wantErr(t, "usage unknown", err, errdefs.ErrNotFound)
	wantErr(t, "remove unknown", e.sn.Remove(ctx, "nope"), errdefs.ErrNotFound)
	wantErr(t, "commit unknown", e.sn.Commit(ctx, "x", "nope"), errdefs.ErrNotFound)
	_, err = e.sn.Update(ctx, snapshot.Info{Name: "nope"})
	wantErr(t, "update unknown", err, errdefs.ErrNotFound)
	_, err = e.sn.Prepare(ctx, "x", "nope")
	wantErr(t, "prepare from unknown parent", err, errdefs.ErrNotFound)
	_, err = e.sn.View(ctx, "x", "nope")
	wantErr(t, "view of unknown parent", err, errdefs.ErrNotFound)

	_, err = e.sn.Prepare(ctx, "active", "l3")
	wantErr(t, "prepare existing key", err, errdefs.ErrAlreadyExists)
	_, err = e.sn.View(ctx, "l1", "")
	wantErr(t, "view under a committed name", err, errdefs.ErrAlreadyExists)
	wantErr(t, "commit to existing name", e.sn.Commit(ctx, "l1", "active"), errdefs.ErrAlreadyExists)

	_, err = e.sn.Prepare(ctx, "x", "active")
	wantErr(t, "prepare from active parent", err, errdefs.ErrConflict)
	_, err = e.sn.View(ctx, "x", "view")
	wantErr(t, "view of a view", err, errdefs.ErrConflict)
	wantErr(t, "commit a view", e.sn.Commit(ctx, "x", "view"), errdefs.ErrConflict)
	wantErr(t, "commit a committed", e.sn.Commit(ctx, "x", "l1"), errdefs.ErrConflict)
	err = e.sn.Remove(ctx, "l2")
	wantErr(t, "remove a parent", err, errdefs.ErrConflict)
	if err != nil && !(strings.Contains(err.Error(), `"l2"`) && strings.Contains(err.Error(), `"l3"`)) {
		t.Errorf("remove a parent: error %q does not name the snapshot and its child", err)
	}

	for _, key := range []string{"", "a\x00b", "line\nbreak", "bad\xffutf8", strings.Repeat("k", snapshot.MaxKeyLen+1)} {
		_, err = e.sn.Prepare(ctx, key, "")
		wantErr(t, fmt.Sprintf("prepare %.20q", key), err, errdefs.ErrInvalidArgument)
		_, err = e.sn.Stat(ctx, key)
		wantErr(t, fmt.Sprintf("stat %.20q", key), err, errdefs.ErrInvalidArgument)
	}
	_, err = e.sn.Prepare(ctx, "x", "a\x00b")
	wantErr(t, "prepare from bad parent", err, errdefs.ErrInvalidArgument)
	wantErr(t, "commit to empty name", e.sn.Commit(ctx, "", "active"), errdefs.ErrInvalidArgument)
	_, err = e.sn.Update(ctx, snapshot.Info{Name: "l1", Parent: "x"}, "parent")
	wantErr(t, "update parent", err, errdefs.ErrInvalidArgument)

	// Failed calls changed nothing.
	if after := e.rootEntries(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("failed calls changed root: before %v, after %v", before, after)
	}
	if got := len(e.walk()); got != 5 {
		t.Errorf("after failed calls: %d snapshots, want 5", got)
	}
	for key, kind := range map[string]snapshot.Kind{"active": snapshot.KindActive, "view": snapshot.KindView, "l1": snapshot.KindCommitted, "l2": snapshot.KindCommitted} {
		if info, err := e.sn.Stat(ctx, key); err != nil || info.Kind != kind {
			t.Errorf("stat %s after failed calls: %+v, %v; want kind %s", key, info, err, kind)
		}
	}
}

func testRemove(t *testing.T, e *env) {
	ctx := e.ctx
	buildChain(t, e)
	if _, err := e.sn.Prepare(ctx, "active", "l3"); err != nil {
		t.Fatal(err)
	}
	dir := e.view("view", "l2")
	wantErr(t, "remove l3 with an active child", e.sn.Remove(ctx, "l3"), errdefs.ErrConflict)
	wantErr(t, "remove l2 with a view", e.sn.Remove(ctx, "l2"), errdefs.ErrConflict)
	e.unmount(dir)
	for _, key := range []string{"active", "view", "l3", "l2", "l1"} {
		if err := e.sn.Remove(ctx, key); err != nil {
			t.Fatalf("remove %s: %v", key, err)
		}
		_, err := e.sn.Stat(ctx, key)
		wantErr(t, "stat removed "+key, err, errdefs.ErrNotFound)
	}
	if names := e.rootEntries(); len(names) != 0 {
		t.Errorf("root not empty after removing everything: %v", names)
	}
	if leaks := mountsMentioning(t, e.root); len(leaks) > 0 {
		t.Errorf("mounts left after removing everything: %v", leaks)
	}
	if got := e.walk(); len(got) != 0 {
		t.Errorf("walk after removing everything: %v", got)
	}
	// A removed name can be used again.
	e.layer("l1", "", func(r string) { write(t, r, "again", "1") })
	checkTree(t, "recreated l1", e.view("v", "l1"), map[string]string{"again": "file 644 1"})
}

func testWalk(t *testing.T, e *env) {
	ctx := e.ctx
	buildChain(t, e)
	if _, err := e.sn.Prepare(ctx, "active", "l3"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.View(ctx, "view", "l1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Prepare(ctx, "empty", ""); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"l1": "committed ", "l2": "committed l1", "l3": "committed l2",
		"active": "active l3", "view": "view l1", "empty": "active ",
	}
	got := map[string]string{}
	for name, info := range e.walk() {
		got[name] = info.Kind.String() + " " + info.Parent
		if info.Created.IsZero() || info.Updated.Before(info.Created) {
			t.Errorf("walk %s: bad times created %v updated %v", name, info.Created, info.Updated)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("walk: got %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	err := e.sn.Walk(ctx, func(context.Context, snapshot.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("walk whose fn fails: %v after %d calls, want stop after 1", err, n)
	}
}

func testLabels(t *testing.T, e *env) {
	ctx := e.ctx
	if _, err := e.sn.Prepare(ctx, "a", "", snapshot.WithLabels(map[string]string{"x": "1", "y": "2"})); err != nil {
		t.Fatal(err)
	}
	info, err := e.sn.Stat(ctx, "a")
	if err != nil || fmt.Sprint(info.Labels) != "map[x:1 y:2]" {
		t.Fatalf("stat after prepare with labels: %+v, %v", info, err)
	}
	info.Labels["x"] = "changed by caller"
	if again, _ := e.sn.Stat(ctx, "a"); again.Labels["x"] != "1" {
		t.Errorf("changing a returned label map changed the snapshot: %v", again.Labels)
	}
	updated, err := e.sn.Update(ctx, snapshot.Info{Name: "a", Labels: map[string]string{"x": "3", "z": "ignored"}}, "labels.x", "labels.y")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(updated.Labels) != "map[x:3]" {
		t.Errorf("update labels.x and labels.y: labels %v, want map[x:3]", updated.Labels)
	}
	if !updated.Updated.After(info.Updated) || !updated.Created.Equal(info.Created) {
		t.Errorf("update times: created %v->%v, updated %v->%v", info.Created, updated.Created, info.Updated, updated.Updated)
	}
	if st, _ := e.sn.Stat(ctx, "a"); fmt.Sprint(st.Labels) != "map[x:3]" {
		t.Errorf("stat after update: labels %v", st.Labels)
	}
	replaced, err := e.sn.Update(ctx, snapshot.Info{Name: "a", Labels: map[string]string{"w": "4"}})
	if err != nil || fmt.Sprint(replaced.Labels) != "map[w:4]" {
		t.Errorf("update without field paths: %v, %v; want labels map[w:4]", replaced.Labels, err)
	}
	if err := e.sn.Commit(ctx, "c", "a", snapshot.WithLabels(map[string]string{"committed": "yes"})); err != nil {
		t.Fatal(err)
	}
	if st, err := e.sn.Stat(ctx, "c"); err != nil || fmt.Sprint(st.Labels) != "map[committed:yes]" {
		t.Errorf("labels after commit: %v, %v; want map[committed:yes]", st.Labels, err)
	}
}

func testUsage(t *testing.T, e *env) {
	ctx := e.ctx
	mounts, err := e.sn.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	u0, err := e.sn.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	dir := e.mount(mounts)
	write(t, dir, "big", strings.Repeat("b", 1<<20))
	write(t, dir, "small", strings.Repeat("s", 1000))
	u1, err := e.sn.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if want := (snapshot.Usage{Size: u0.Size + 1<<20 + 1000, Inodes: u0.Inodes + 2}); u1 != want {
		t.Errorf("usage after writing 1 MiB + 1000 bytes in 2 files: %+v, want %+v (from %+v)", u1, want, u0)
	}
	if err := os.Link(filepath.Join(dir, "big"), filepath.Join(dir, "big2")); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.sn.Usage(ctx, "a"); u != u1 {
		t.Errorf("usage after a hard link: %+v, want %+v as before", u, u1)
	}
	e.unmount(dir)
	if err := e.sn.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if u, err := e.sn.Usage(ctx, "c"); err != nil || u != u1 {
		t.Errorf("usage of the committed snapshot: %+v, %v; want %+v", u, err, u1)
	}
	mounts, err = e.sn.Prepare(ctx, "child", "c")
	if err != nil {
		t.Fatal(err)
	}
	c0, err := e.sn.Usage(ctx, "child")
	if err != nil {
		t.Fatal(err)
	}
	dir = e.mount(mounts)
	write(t, dir, "more", strings.Repeat("m", 4096))
	if u, _ := e.sn.Usage(ctx, "child"); u.Size != c0.Size+4096 || u.Inodes != c0.Inodes+1 {
		t.Errorf("child usage after writing 4096 bytes: %+v, want %d bytes, %d inodes", u, c0.Size+4096, c0.Inodes+1)
	}
}

func testReopen(t *testing.T, e *env) {
	ctx := e.ctx
	buildChain(t, e)
	mounts, err := e.sn.Prepare(ctx, "active", "l3", snapshot.WithLabels(map[string]string{"k": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := e.mount(mounts)
	write(t, dir, "unsaved", "u")
	e.unmount(dir)
	if _, err := e.sn.View(ctx, "view", "l2"); err != nil {
		t.Fatal(err)
	}
	usage, err := e.sn.Usage(ctx, "l2")
	if err != nil {
		t.Fatal(err)
	}
	before := e.walk()
	e.reopen()
	after := e.walk()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("snapshots after reopening:\n\t%v\nwant\n\t%v", after, before)
	}
	if u, err := e.sn.Usage(ctx, "l2"); err != nil || u != usage {
		t.Errorf("usage of l2 after reopening: %+v, %v; want %+v", u, err, usage)
	}
	for key, want := range map[string]map[string]string{
		"active": merge(state3, map[string]string{"unsaved": "file 644 u"}),
		"view":   state2,
	} {
		mounts, err := e.sn.Mounts(ctx, key)
		if err != nil {
			t.Fatalf("mounts of %s after reopening: %v", key, err)
		}
		checkTree(t, key+" after reopening", e.mount(mounts), want)
	}
	// New snapshots do not collide with the old ones.
	e.layer("l4", "l3", func(r string) { write(t, r, "four", "4") })
	checkTree(t, "new layer after reopening", e.view("v4", "l4"), merge(state3, map[string]string{"four": "file 644 4"}))
	checkTree(t, "old layer after reopening", e.view("v1", "l1"), state1)
}

func testCrashLeftovers(t *testing.T, e *env) {
	ctx := e.ctx
	e.layer("l1", "", func(r string) { write(t, r, "f", "1") })
	if _, err := e.sn.Prepare(ctx, "active", "l1"); err != nil {
		t.Fatal(err)
	}
	kept := e.rootEntries()
	if len(kept) != 2 {
		t.Fatalf("root holds %v, want one entry per snapshot", kept)
	}
	if err := e.sn.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash may leave: a snapshot directory whose record was never
	// committed, a half-built one, one half-removed, a stray file.
	for _, p := range []string{"99999/fs/file", ".tmp-123/fs/deep/file", ".rm-7/fs/x", "stray"} {
		write(t, e.root, p, "leftover")
	}
	e.reopen()
	if got := e.rootEntries(); fmt.Sprint(got) != fmt.Sprint(kept) {
		t.Errorf("root after reopening: %v, want only %v", got, kept)
	}
	checkTree(t, "l1 after cleaning leftovers", e.view("v", "l1"), map[string]string{"f": "file 644 1"})
}

func testHundredLayers(t *testing.T, e *env) {
	const n = 100
	want := map[string]string{}
	parent := ""
	for i := range n {
		name := fmt.Sprintf("layer-%03d", i)
		e.layer(name, parent, func(r string) {
			write(t, r, name, name)
			write(t, r, "top", name)
			if i == 50 {
				remove(t, r, "layer-010")
			}
		})
		want[name] = "file 644 " + name
		parent = name
	}
	delete(want, "layer-010")
	want["top"] = fmt.Sprintf("file 644 layer-%03d", n-1)
	checkTree(t, "view of 100 layers", e.view("view", parent), want)

	mounts, err := e.sn.Prepare(e.ctx, "active", parent)
	if err != nil {
		t.Fatal(err)
	}
	dir := e.mount(mounts)
	write(t, dir, "written", "w")
	checkTree(t, "active over 100 layers", dir, merge(want, map[string]string{"written": "file 644 w"}))
}
