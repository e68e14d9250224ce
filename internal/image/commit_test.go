package image

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
)

// prepareContainer makes an active snapshot on img's layers, as a
// container's writable layer, removed when the test ends.
func (e *transferEnv) prepareContainer(key string, img metadata.Image) []snapshot.Mount {
	e.t.Helper()
	parent, err := e.svc.SnapshotKey(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	mounts, err := e.sn.Prepare(e.ctx, key, parent)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := e.sn.Remove(e.ctx, key); err != nil {
			e.t.Errorf("remove %s: %v", key, err)
		}
	})
	return mounts
}

// layerEntries lists the entries of an image's top layer blob.
func (e *transferEnv) layerEntries(img metadata.Image) map[string]string {
	e.t.Helper()
	m, err := e.svc.Manifest(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := e.cs.Open(e.ctx, m.Layers[len(m.Layers)-1].Digest)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	plain, _, err := archive.Decompress(f)
	if err != nil {
		e.t.Fatal(err)
	}
	defer plain.Close()
	return tarEntries(e.t, plain)
}

// TestCommit changes a container's snapshot (a file added, one changed,
// one deleted) and commits it: the new layer holds exactly those changes,
// the image's unpacked tree is the container's, and its config, history,
// parent and name are right. Committing again without changes adds an
// empty history entry and no layer.
func TestCommit(t *testing.T) {
	busybox, _ := testImages(t)
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		e := newTransferEnv(t, kind)
		base := e.addImage(busybox, "busybox:latest")
		mounts := e.prepareContainer("ctr-1", base)
		root := e.mount(mounts)
		if err := os.MkdirAll(filepath.Join(root, "new/dir"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "new/dir/file.txt"), []byte("hello\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("changed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(root, "etc/group")); err != nil {
			t.Fatal(err)
		}
		want := treeOf(t, root)
		e.unmount(root)

		id, err := e.svc.Commit(e.ctx, CommitOptions{
			Snapshot: "ctr-1", Parent: base.ID, Changes: []string{`CMD ["/bin/true"]`},
			Author: "tester <t@example.com>", Comment: "my change", CreatedBy: "sh", Ref: "committed:1",
		})
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		img, err := e.svc.Resolve(e.ctx, "committed:1")
		if err != nil || img.ID != id {
			t.Fatalf("committed:1 is %s (%v), want %s", img.ID, err, id)
		}
		if img.Parent != base.ID {
			t.Errorf("parent %s, want %s", img.Parent, base.ID)
		}
		pconf, _ := e.svc.ConfigOf(e.ctx, base)
		conf, err := e.svc.ConfigOf(e.ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(conf.RootFS.DiffIDs) != 2 || conf.RootFS.DiffIDs[0] != pconf.RootFS.DiffIDs[0] {
			t.Errorf("diff ids %v, want the parent's %v and one more", conf.RootFS.DiffIDs, pconf.RootFS.DiffIDs)
		}
		last := conf.History[len(conf.History)-1]
		if len(conf.History) != len(pconf.History)+1 || last.Author != "tester <t@example.com>" || last.Comment != "my change" || last.CreatedBy != "sh" || last.EmptyLayer {
			t.Errorf("history %+v", conf.History)
		}
		raw, err := e.svc.RawConfig(e.ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		var top struct {
			Comment string `json:"comment"`
		}
		if json.Unmarshal(raw, &top); top.Comment != "my change" {
			t.Errorf("image comment %q, want the commit message (image inspect shows it)", top.Comment)
		}
		if conf.Author != "tester <t@example.com>" || !reflect.DeepEqual(conf.Config.Cmd, []string{"/bin/true"}) ||
			conf.Config.Labels["org.berth.test"] != "busybox" || !reflect.DeepEqual(conf.Config.Env, pconf.Config.Env) {
			t.Errorf("config %+v", conf)
		}

		// The layer holds the three changes and the directories above them.
		var files, dirs []string
		for name, v := range e.layerEntries(img) {
			if strings.HasPrefix(v, "5") {
				dirs = append(dirs, name)
			} else {
				files = append(files, strings.TrimSpace(name+" "+strings.TrimSpace(v[1:])))
			}
		}
		sort.Strings(files)
		if want := []string{"etc/.wh.group", "etc/hostname changed", "new/dir/file.txt hello"}; !slices.Equal(files, want) {
			t.Errorf("layer files %q, want %q", files, want)
		}
		for _, d := range dirs {
			if !slices.Contains([]string{"etc", "new", "new/dir"}, d) {
				t.Errorf("layer has unexpected directory %s", d)
			}
		}
		// The new image is unpacked and shows the container's tree.
		got := treeOf(t, e.mountImage(img))
		if d := diffTrees(want, got); d != "" {
			t.Errorf("committed image differs from the container:\n%s", d)
		}

		// No changes: an empty history entry, no layer, same snapshot.
		e.prepareContainer("ctr-2", img)
		id2, err := e.svc.Commit(e.ctx, CommitOptions{Snapshot: "ctr-2", Parent: img.ID, Comment: "nothing"})
		if err != nil {
			t.Fatal(err)
		}
		img2, _ := e.svc.Resolve(e.ctx, id2.String())
		conf2, _ := e.svc.ConfigOf(e.ctx, img2)
		if !reflect.DeepEqual(conf2.RootFS.DiffIDs, conf.RootFS.DiffIDs) || !conf2.History[len(conf2.History)-1].EmptyLayer {
			t.Errorf("empty commit: diff ids %v, history %+v", conf2.RootFS.DiffIDs, conf2.History)
		}
		k1, _ := e.svc.SnapshotKey(e.ctx, img)
		if k2, err := e.svc.SnapshotKey(e.ctx, img2); err != nil || k2 != k1 {
			t.Errorf("empty commit's snapshot %q (%v), want %q", k2, err, k1)
		}

		// A committed image saves and loads like any other.
		var buf bytes.Buffer
		if err := e.svc.Save(e.ctx, &buf, []string{"committed:1"}); err != nil {
			t.Fatal(err)
		}
		dst := newTransferEnv(t, kind)
		loaded, err := dst.svc.Load(dst.ctx, &buf, nil)
		if err != nil || len(loaded) != 1 || loaded[0].ID != id {
			t.Fatalf("load of the committed image: %+v, %v", loaded, err)
		}
		limg, _ := dst.svc.Resolve(dst.ctx, id.String())
		if d := diffTrees(want, treeOf(t, dst.mountImage(limg))); d != "" {
			t.Errorf("loaded committed image differs:\n%s", d)
		}
	})
}

// TestCommitConfigAndErrors commits with a container config and checks
// the errors for a missing snapshot, a wrong parent and a bad change.
func TestCommitConfigAndErrors(t *testing.T) {
	busybox, _ := testImages(t)
	e := newTransferEnv(t, "overlay")
	base := e.addImage(busybox, "busybox:latest")
	e.prepareContainer("ctr", base)
	pconf, _ := e.svc.ConfigOf(e.ctx, base)
	cfg := pconf.Config
	cfg.Env = append(cfg.Env, "FROM_CONTAINER=1")
	cfg.Labels = nil
	id, err := e.svc.Commit(e.ctx, CommitOptions{Snapshot: "ctr", Parent: base.ID, Config: &cfg, Changes: []string{"LABEL x=y"}})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := e.svc.Resolve(e.ctx, id.String())
	conf, _ := e.svc.ConfigOf(e.ctx, img)
	if !slices.Contains(conf.Config.Env, "FROM_CONTAINER=1") || !reflect.DeepEqual(conf.Config.Labels, map[string]string{"x": "y"}) {
		t.Errorf("config %+v", conf.Config)
	}
	if tags, _ := e.svc.RepoTags(e.ctx, id); len(tags) != 0 {
		t.Errorf("commit without ref is tagged %v", tags)
	}
	if conf.Author != "" {
		t.Errorf("author %q", conf.Author)
	}

	before := e.images()
	for _, c := range []struct {
		what  string
		opts  CommitOptions
		class func(error) bool
		want  string
	}{
		{"missing snapshot", CommitOptions{Snapshot: "nope", Parent: base.ID}, errdefs.IsNotFound, "nope"},
		{"wrong parent", CommitOptions{Snapshot: "ctr"}, errdefs.IsInvalidArgument, "not on the parent image's layers"},
		{"missing parent", CommitOptions{Snapshot: "ctr", Parent: digest.FromString("x")}, errdefs.IsNotFound, "parent image"},
		{"bad change", CommitOptions{Snapshot: "ctr", Parent: base.ID, Changes: []string{"COPY a b"}}, errdefs.IsInvalidArgument, "COPY is not a valid change command"},
		{"bad ref", CommitOptions{Snapshot: "ctr", Parent: base.ID, Ref: "UPPER:case"}, errdefs.IsInvalidArgument, "invalid reference"},
	} {
		_, err := e.svc.Commit(e.ctx, c.opts)
		if err == nil || !c.class(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.what, err, c.want)
		}
	}
	if after := e.images(); !slices.Equal(before, after) {
		t.Errorf("failed commits changed the images: %v -> %v", before, after)
	}
	// A committed snapshot is not a container's: diffing it is refused.
	key, _ := e.svc.SnapshotKey(e.ctx, base)
	if _, err := e.svc.DiffSnapshot(e.ctx, key); !errdefs.IsInvalidArgument(err) {
		t.Errorf("diff of a committed snapshot: %v", err)
	}
}

// TestCommitFromScratch commits a snapshot made from nothing, as docker
// commit of a container of an empty image.
func TestCommitFromScratch(t *testing.T) {
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		e := newTransferEnv(t, kind)
		mounts, err := e.sn.Prepare(e.ctx, "scratch", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.sn.Remove(e.ctx, "scratch") })
		root := e.mount(mounts)
		if err := os.WriteFile(filepath.Join(root, "only"), []byte("1"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.unmount(root)
		id, err := e.svc.Commit(e.ctx, CommitOptions{Snapshot: "scratch", Ref: "scratch:1"})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := e.svc.Resolve(e.ctx, id.String())
		conf, _ := e.svc.ConfigOf(e.ctx, img)
		host := HostPlatform()
		if len(conf.RootFS.DiffIDs) != 1 || conf.OS != host.OS || conf.Architecture != host.Architecture || img.Parent != "" {
			t.Errorf("config %+v, parent %q", conf, img.Parent)
		}
		if got := e.layerEntries(img); len(got) != 1 || got["only"] != "0 1" {
			t.Errorf("layer %v, want just the file", got)
		}
	})
}
