package image

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// saveArchive saves names from e into a file and returns its path.
func saveArchive(t *testing.T, e *transferEnv, names ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "images.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := e.svc.Save(e.ctx, f, names); err != nil {
		t.Fatalf("save %v: %v", names, err)
	}
	return p
}

// TestSaveLoadRoundTrip saves two images into one archive, loads it into
// an empty store and checks IDs, names and the unpacked files (whiteouts,
// opaque directory, hard link) through real mounts.
func TestSaveLoadRoundTrip(t *testing.T) {
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		busybox, multi := testImages(t)
		src := newTransferEnv(t, kind)
		mi := src.addImage(multi, "berth-test/multi:v1")
		bi := src.addImage(busybox, "busybox:latest", "busybox:1")
		archivePath := saveArchive(t, src, "berth-test/multi:v1", "busybox")
		// Save measured the gzip layers and cached their sizes.
		ml, _ := multi.Layers()
		top, _ := ml[2].Uncompressed()
		_, topSize, _ := v1.SHA256(top)
		top.Close()
		key, _ := src.svc.SnapshotKey(src.ctx, mi)
		if info, err := src.sn.Stat(src.ctx, key); err != nil || info.Labels[labelTarSize] != strconv.FormatInt(topSize, 10) {
			t.Errorf("tar size label of %s: %v (%v), want %d", key, info.Labels, err, topSize)
		}

		dst := newTransferEnv(t, kind)
		f, err := os.Open(archivePath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var steps int
		loaded, err := dst.svc.Load(dst.ctx, f, func(Progress) { steps++ })
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if steps == 0 {
			t.Error("load reported no progress")
		}
		if len(loaded) != 2 || loaded[0].ID != mi.ID || loaded[1].ID != bi.ID {
			t.Fatalf("loaded %+v, want %s then %s", loaded, mi.ID, bi.ID)
		}
		if !slices.Equal(loaded[0].Names, []string{"berth-test/multi:v1"}) || !slices.Equal(loaded[1].Names, []string{"busybox:1", "busybox:latest"}) {
			t.Errorf("names: %v and %v", loaded[0].Names, loaded[1].Names)
		}
		for _, want := range []struct {
			name string
			id   digest.Digest
		}{{"berth-test/multi:v1", mi.ID}, {"busybox", bi.ID}, {"busybox:1", bi.ID}} {
			img, err := dst.svc.Resolve(dst.ctx, want.name)
			if err != nil || img.ID != want.id {
				t.Errorf("resolve %s after load: %s, %v; want %s", want.name, img.ID, err, want.id)
			}
		}
		for _, pair := range [][2]string{{"berth-test/multi:v1", "multi"}, {"busybox", "busybox"}} {
			a, _ := src.svc.Resolve(src.ctx, pair[0])
			b, _ := dst.svc.Resolve(dst.ctx, pair[0])
			ta, tb := treeOf(t, src.mountImage(a)), treeOf(t, dst.mountImage(b))
			if d := diffTrees(ta, tb); d != "" {
				t.Errorf("%s: unpacked trees differ after save and load:\n%s", pair[1], d)
			}
		}
		img, _ := dst.svc.Resolve(dst.ctx, "berth-test/multi:v1")
		checkMultiLayer(t, dst.mountImage(img))

		// The loaded manifest is the one Save wrote: uncompressed layers.
		m, err := dst.svc.Manifest(dst.ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		conf, _ := dst.svc.ConfigOf(dst.ctx, img)
		for i, l := range m.Layers {
			if l.MediaType != ocispec.MediaTypeImageLayer || l.Digest != conf.RootFS.DiffIDs[i] {
				t.Errorf("layer %d: %s %s, want uncompressed with digest %s", i, l.MediaType, l.Digest, conf.RootFS.DiffIDs[i])
			}
		}

		// Saving the loaded images again gives the same bytes.
		again := saveArchive(t, dst, "berth-test/multi:v1", "busybox")
		a, _ := os.ReadFile(archivePath)
		b, _ := os.ReadFile(again)
		if !bytes.Equal(a, b) {
			t.Error("saving the loaded images again gives a different archive")
		}
	})
}

// TestSaveReadByOtherImplementations reads a saved archive with
// go-containerregistry's docker-archive reader and its OCI layout reader,
// independent implementations, and checks every digest.
func TestSaveReadByOtherImplementations(t *testing.T) {
	busybox, multi := testImages(t)
	e := newTransferEnv(t, "overlay")
	e.addImage(multi, "berth-test/multi:v1")
	e.addImage(busybox, "busybox:latest")
	archivePath := saveArchive(t, e, "berth-test/multi:v1", "busybox:latest")
	opener := func() (io.ReadCloser, error) { return os.Open(archivePath) }

	for _, c := range []struct {
		tag string
		img v1.Image
	}{{"berth-test/multi:v1", multi}, {"busybox:latest", busybox}} {
		tag, err := name.NewTag(c.tag)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tarball.Image(opener, &tag)
		if err != nil {
			t.Fatalf("docker-archive reader: %s: %v", c.tag, err)
		}
		compareImages(t, "docker-archive "+c.tag, got, c.img, false)
	}

	dir := t.TempDir()
	untar(t, archivePath, dir)
	var lay struct {
		Version string `json:"imageLayoutVersion"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil || json.Unmarshal(b, &lay) != nil || lay.Version != "1.0.0" {
		t.Errorf("oci-layout: %s, %v", b, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index.json has %d entries, want 2", len(im.Manifests))
	}
	for i, want := range []struct {
		full, ref string
		img       v1.Image
	}{{"docker.io/berth-test/multi:v1", "v1", multi}, {"docker.io/library/busybox:latest", "latest", busybox}} {
		d := im.Manifests[i]
		if d.Annotations[annotationImageName] != want.full || d.Annotations[annotationRefName] != want.ref {
			t.Errorf("index.json entry %d annotations %v, want %s and %s", i, d.Annotations, want.full, want.ref)
		}
		got, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		compareImages(t, "oci layout "+want.full, got, want.img, true)
	}
	var entries []dockerManifestEntry
	b, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || !slices.Equal(entries[0].RepoTags, []string{"berth-test/multi:v1"}) || !strings.HasPrefix(entries[0].Config, "blobs/sha256/") {
		t.Errorf("manifest.json: %s", b)
	}
	var repos map[string]map[string]string
	b, _ = os.ReadFile(filepath.Join(dir, "repositories"))
	if err := json.Unmarshal(b, &repos); err != nil || repos["busybox"]["latest"] == "" || repos["berth-test/multi"]["v1"] == "" {
		t.Errorf("repositories: %s, %v", b, err)
	}
}

// compareImages checks that got (read back from an archive) has want's
// config and diffs; blobIsDiff says the reader gives the layer blobs as
// stored, which must be the uncompressed diffs.
func compareImages(t *testing.T, what string, got, want v1.Image, blobIsDiff bool) {
	t.Helper()
	gc, err := got.ConfigName()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	wc, _ := want.ConfigName()
	if gc != wc {
		t.Errorf("%s: config %s, want %s", what, gc, wc)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("%s: %d layers, want %d", what, len(gl), len(wl))
	}
	for i := range gl {
		wd, _ := wl[i].DiffID()
		if gd, err := gl[i].DiffID(); err != nil || gd != wd {
			t.Errorf("%s: layer %d diff id %s (%v), want %s", what, i, gd, err, wd)
		}
		if blobIsDiff {
			if gd, err := gl[i].Digest(); err != nil || gd != wd {
				t.Errorf("%s: layer %d blob digest %s (%v), want the diff id %s", what, i, gd, err, wd)
			}
		}
		rc, err := gl[i].Uncompressed()
		if err != nil {
			t.Fatalf("%s: layer %d: %v", what, i, err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || h != wd {
			t.Errorf("%s: layer %d content %s (%v), want %s", what, i, h, err, wd)
		}
	}
}

// untar extracts a saved archive (a flat tree of files) into dir.
func untar(t *testing.T, archivePath, dir string) {
	t.Helper()
	f, err := os.Open(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := extractArchive(t.Context(), f, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for n, file := range a.files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file.path, p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSaveByIDAndErrors saves an image by ID (no names in the archive)
// and checks that an unknown name fails before anything is written.
func TestSaveByIDAndErrors(t *testing.T) {
	busybox, _ := testImages(t)
	e := newTransferEnv(t, "overlay")
	bi := e.addImage(busybox, "busybox:latest")
	dir := t.TempDir()
	untar(t, saveArchive(t, e, bi.ID.Encoded()[:12]), dir)
	b, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	var entries []dockerManifestEntry
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) != 1 || entries[0].RepoTags != nil || entries[0].Config != blobPath(bi.ID) {
		t.Errorf("manifest.json of a save by ID: %s (%v)", b, err)
	}
	var idx ocispec.Index
	b, _ = os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 || len(idx.Manifests[0].Annotations) != 0 {
		t.Errorf("index.json of a save by ID: %s (%v)", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "repositories")); !os.IsNotExist(err) {
		t.Errorf("a save without names has a repositories file: %v", err)
	}

	var out bytes.Buffer
	err := e.svc.Save(e.ctx, &out, []string{"busybox:latest", "nosuch:tag"})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "nosuch:tag") {
		t.Errorf("save of a missing image: %v, want a not-found error naming it", err)
	}
	if out.Len() != 0 {
		t.Errorf("a failed save wrote %d bytes", out.Len())
	}
	if err := e.svc.Save(e.ctx, &out, nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("save of nothing: %v", err)
	}
}
