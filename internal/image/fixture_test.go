package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/snapshot/native"
	"github.com/berth-project/berth/internal/snapshot/overlay"
	"github.com/berth-project/berth/internal/testutil"
)

// transferEnv is a Service over a fresh data root (content store,
// metadata database, overlay or native snapshotter) for the save, load,
// import, export and commit tests.
type transferEnv struct {
	t    *testing.T
	ctx  context.Context
	root string
	svc  *Service
	cs   *content.Store
	db   *metadata.DB
	sn   snapshot.Snapshotter
	kind string
}

// snapshotterKinds are the snapshotters the core tests run against.
var snapshotterKinds = []string{"overlay", "native"}

// forEachSnapshotter runs fn as a subtest for each snapshotter.
func forEachSnapshotter(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, k := range snapshotterKinds {
		t.Run(k, func(t *testing.T) { fn(t, k) })
	}
}

func newTransferEnv(t *testing.T, kind string) *transferEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("image tests need root (real mounts)")
	}
	root := t.TempDir()
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() {
		infos, err := mountinfo.GetMounts(nil)
		if err != nil {
			t.Errorf("read mounts: %v", err)
			return
		}
		for _, m := range infos {
			if strings.Contains(m.Mountpoint+" "+m.Source+" "+m.VFSOptions+" "+m.Root, root) {
				t.Errorf("mount left behind: %s on %s (%s)", m.Source, m.Mountpoint, m.VFSOptions)
			}
		}
	})
	e := &transferEnv{t: t, ctx: context.Background(), root: root, kind: kind}
	var err error
	if e.cs, err = content.Open(filepath.Join(root, "content"), filepath.Join(root, "tmp")); err != nil {
		t.Fatal(err)
	}
	if e.db, err = metadata.Open(filepath.Join(root, "metadata.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	snaps := filepath.Join(root, "snapshots")
	switch kind {
	case "overlay":
		if err := overlay.Supported(snaps); err != nil {
			t.Fatalf("overlayfs, which this machine has, does not mount: %v", err)
		}
		e.sn, err = overlay.New(snaps, e.db.Bolt())
	case "native":
		e.sn, err = native.New(snaps, e.db.Bolt())
	default:
		t.Fatalf("unknown snapshotter %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sn.Close() })
	e.svc = New(Config{Content: e.cs, DB: e.db, Snapshotter: e.sn, Overlay: kind == "overlay", TmpDir: filepath.Join(root, "tmp")})
	return e
}

// fixtures are the test images, built once per process.
var fixtures struct {
	once           sync.Once
	busybox, multi v1.Image
	err            error
}

func testImages(t *testing.T) (busybox, multi v1.Image) {
	t.Helper()
	fixtures.once.Do(func() {
		if fixtures.busybox, fixtures.err = testutil.BusyboxImage(); fixtures.err != nil {
			return
		}
		fixtures.multi, fixtures.err = testutil.MultiLayerImage()
	})
	if fixtures.err != nil {
		t.Fatalf("build fixture images: %v", fixtures.err)
	}
	return fixtures.busybox, fixtures.multi
}

// addImage puts img into the stores the way a pull does (blobs, unpacked
// layers, record) without going through Load, and tags it with names.
func (e *transferEnv) addImage(img v1.Image, names ...string) metadata.Image {
	t := e.t
	t.Helper()
	put := func(data []byte, d v1.Hash) {
		if err := e.cs.WriteBlob(e.ctx, bytes.NewReader(data), ocispec.Descriptor{Digest: digest.Digest(d.String()), Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
	}
	cfgRaw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	put(cfgRaw, cfgName)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var diffIDs []digest.Digest
	for _, l := range layers {
		d, _ := l.DiffID()
		diffIDs = append(diffIDs, digest.Digest(d.String()))
	}
	chain := ChainIDs(diffIDs)
	for i, l := range layers {
		dg, _ := l.Digest()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		desc := ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(dg.String()), Size: size}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		err = e.cs.WriteBlob(e.ctx, rc, desc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		lu := layerToUnpack{chainID: chain[i], diffID: diffIDs[i]}
		if i > 0 {
			lu.parent = chain[i-1]
		}
		if err := e.svc.unpackBlob(e.ctx, desc, lu, nil); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	md, _ := img.Digest()
	put(raw, md)
	mt, _ := img.MediaType()
	rec := metadata.Image{ID: digest.Digest(cfgName.String()), Manifest: ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(md.String()), Size: int64(len(raw))}}
	err = e.db.Update(func(tx *metadata.Tx) error {
		if err := tx.PutImage(rec); err != nil {
			return err
		}
		for _, n := range names {
			ref, err := ParseReference(n)
			if err != nil {
				return err
			}
			if err := tx.SetTag(ref.String(), rec.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err = e.svc.Resolve(e.ctx, rec.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// mountImage mounts a read-only view of img's layers and returns where;
// it is unmounted and removed when the test ends.
func (e *transferEnv) mountImage(img metadata.Image) string {
	e.t.Helper()
	key, err := e.svc.SnapshotKey(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	viewKey := "test-view-" + randomHex(4)
	mounts, err := e.sn.View(e.ctx, viewKey, key)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := e.sn.Remove(e.ctx, viewKey); err != nil {
			e.t.Errorf("remove view: %v", err)
		}
	})
	return e.mount(mounts)
}

// mount mounts mounts on a new directory under the data root, unmounted
// when the test ends.
func (e *transferEnv) mount(mounts []snapshot.Mount) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.root, "mnt-")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := snapshot.UnmountAll(dir); err != nil {
			e.t.Errorf("unmount: %v", err)
			return
		}
		os.Remove(dir)
	})
	return dir
}

// unmount detaches a directory mount returned before the test ends.
func (e *transferEnv) unmount(dir string) {
	e.t.Helper()
	if err := snapshot.UnmountAll(dir); err != nil {
		e.t.Fatal(err)
	}
}

// images returns the IDs of the recorded images, sorted.
func (e *transferEnv) images() []string {
	e.t.Helper()
	list, err := e.svc.List(e.ctx, ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID.String())
	}
	sort.Strings(ids)
	return ids
}

// assertEmptyAfterGC checks that, after a GC, the stores hold no image, no
// snapshot and no blob, and that no load left a temporary directory.
func (e *transferEnv) assertEmptyAfterGC() {
	e.t.Helper()
	if ids := e.images(); len(ids) != 0 {
		e.t.Errorf("images recorded: %v", ids)
	}
	if _, err := e.svc.GC(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	var snaps []string
	_ = e.sn.Walk(e.ctx, func(_ context.Context, i snapshot.Info) error { snaps = append(snaps, i.Name); return nil })
	if len(snaps) > 0 {
		e.t.Errorf("snapshots left after GC: %v", snaps)
	}
	var blobs []string
	_ = e.cs.Walk(e.ctx, func(i content.Info) error { blobs = append(blobs, i.Digest.String()); return nil })
	if len(blobs) > 0 {
		e.t.Errorf("blobs left after GC: %v", blobs)
	}
	tmp, _ := filepath.Glob(filepath.Join(e.root, "tmp", "berth-load-*"))
	if len(tmp) > 0 {
		e.t.Errorf("load left temporary directories: %v", tmp)
	}
}

// treeOf describes every entry under root, one line per path: type,
// mode, owner, and content digest or link target; a second name of a
// hard-linked file says which one it shares its inode with.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			if first, ok := inodes[st.Ino]; ok && st.Nlink > 1 {
				desc += " link=" + first
				break
			}
			inodes[st.Ino] = rel
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " " + hex.EncodeToString(sum[:8])
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffTrees lists how two trees differ, or returns "".
func diffTrees(a, b map[string]string) string {
	var lines []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			lines = append(lines, "- "+k+" "+v)
		} else if v != w {
			lines = append(lines, "~ "+k+" "+v+" | "+w)
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			lines = append(lines, "+ "+k+" "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tarEntries lists the entries of a tar as "name type [content]".
func tarEntries(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		v := string(rune(hdr.Typeflag))
		switch hdr.Typeflag {
		case tar.TypeReg:
			v += " " + string(data)
		case tar.TypeSymlink, tar.TypeLink:
			v += " " + hdr.Linkname
		}
		out[strings.TrimSuffix(hdr.Name, "/")] = v
	}
}
