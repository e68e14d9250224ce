package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/snapshot"
)

// TestExportSnapshot exports an image's snapshot and checks the tar
// against the image's tree through a mount: the same paths, the hard link
// as a link entry, no whiteout.
func TestExportSnapshot(t *testing.T) {
	_, multi := testImages(t)
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		e := newTransferEnv(t, kind)
		img := e.addImage(multi, "multi:1")
		key, err := e.svc.SnapshotKey(e.ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := e.svc.ExportSnapshot(e.ctx, &buf, key); err != nil {
			t.Fatal(err)
		}
		entries := tarEntries(t, &buf)
		tree := treeOf(t, e.mountImage(img))
		for p := range tree {
			if _, ok := entries[p]; !ok {
				t.Errorf("export lacks %s", p)
			}
		}
		for p := range entries {
			if _, ok := tree[p]; !ok {
				t.Errorf("export has %s, which the image has not", p)
			}
			if strings.Contains(p, ".wh.") {
				t.Errorf("export has a whiteout %s", p)
			}
		}
		a, h := entries["data/a.txt"], entries["data/hard"]
		if !(a == "0 alpha\n" && h == string(rune(tar.TypeLink))+" data/a.txt") && !(h == "0 alpha\n" && a == string(rune(tar.TypeLink))+" data/hard") {
			t.Errorf("hard link pair exported as %q and %q", a, h)
		}
		if entries["etc/motd"] != "0 two\n" || entries["data/sym"] != "2 a.txt" {
			t.Errorf("motd %q, sym %q", entries["etc/motd"], entries["data/sym"])
		}
	})
}

// TestExportRunningContainer exports a container's snapshot while its own
// writable mount stays in use: the export shows its changes and the
// container can still write.
func TestExportRunningContainer(t *testing.T) {
	busybox, _ := testImages(t)
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		e := newTransferEnv(t, kind)
		img := e.addImage(busybox, "busybox:latest")
		mounts := e.prepareContainer("ctr", img)
		root := e.mount(mounts)
		if err := os.WriteFile(filepath.Join(root, "added.txt"), []byte("added\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(root, "etc/group")); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := e.svc.Export(e.ctx, &buf, mounts); err != nil {
			t.Fatal(err)
		}
		entries := tarEntries(t, &buf)
		if entries["added.txt"] != "0 added\n" {
			t.Errorf("added.txt exported as %q", entries["added.txt"])
		}
		if _, ok := entries["etc/group"]; ok {
			t.Error("the deleted etc/group is exported")
		}
		if _, ok := entries["bin/busybox"]; !ok {
			t.Error("bin/busybox is not exported")
		}
		if err := os.WriteFile(filepath.Join(root, "after.txt"), nil, 0o644); err != nil {
			t.Errorf("the container cannot write after the export: %v", err)
		}
	})
}

func TestReadOnlyMount(t *testing.T) {
	for _, c := range []struct{ in, want snapshot.Mount }{
		{snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/l2:/l1", "upperdir=/u", "workdir=/w"}},
			snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "ro", "lowerdir=/u:/l2:/l1"}}},
		{snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{"upperdir=/u", "workdir=/w", "rw"}},
			snapshot.Mount{Type: "bind", Source: "/u", Options: []string{"ro", "rbind"}}},
		{snapshot.Mount{Type: "bind", Source: "/s", Options: []string{"rbind", "rw"}},
			snapshot.Mount{Type: "bind", Source: "/s", Options: []string{"rbind", "ro"}}},
		{snapshot.Mount{Type: "bind", Source: "/s", Options: []string{"ro", "rbind"}},
			snapshot.Mount{Type: "bind", Source: "/s", Options: []string{"ro", "rbind"}}},
	} {
		got := readOnlyMount(c.in)
		if got.Type != c.want.Type || got.Source != c.want.Source || strings.Join(got.Options, ",") != strings.Join(c.want.Options, ",") {
			t.Errorf("readOnlyMount(%+v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}
