package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/testutil"
)

// legacyArchive writes images with go-containerregistry's docker-archive
// writer (manifest.json, <digest>.tar.gz layers, config files).
func legacyArchive(t *testing.T, images map[string]v1.Image) []byte {
	t.Helper()
	m := map[name.Tag]v1.Image{}
	for n, img := range images {
		tag, err := name.NewTag(n)
		if err != nil {
			t.Fatal(err)
		}
		m[tag] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiWrite(m, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func configName(t *testing.T, img v1.Image) digest.Digest {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(h.String())
}

func (e *transferEnv) load(data []byte) ([]LoadedImage, error) {
	return e.svc.Load(e.ctx, bytes.NewReader(data), nil)
}

// loadedNames maps each loaded image ID to its names.
func loadedNames(loaded []LoadedImage) map[digest.Digest][]string {
	out := map[digest.Digest][]string{}
	for _, l := range loaded {
		out[l.ID] = l.Names
	}
	return out
}

// TestLoadDockerArchive loads a docker-archive written by another
// implementation (go-containerregistry), as is and gzip-compressed whole.
func TestLoadDockerArchive(t *testing.T) {
	busybox, multi := testImages(t)
	data := legacyArchive(t, map[string]v1.Image{"berth-test/multi:v1": multi, "busybox:latest": busybox})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		for _, c := range []struct {
			what string
			data []byte
		}{{"plain", data}, {"gzip", gz.Bytes()}} {
			e := newTransferEnv(t, kind)
			loaded, err := e.load(c.data)
			if err != nil {
				t.Fatalf("%s: load: %v", c.what, err)
			}
			got := loadedNames(loaded)
			if len(got) != 2 || !slices.Equal(got[configName(t, multi)], []string{"berth-test/multi:v1"}) || !slices.Equal(got[configName(t, busybox)], []string{"busybox:latest"}) {
				t.Fatalf("%s: loaded %+v", c.what, loaded)
			}
			img, err := e.svc.Resolve(e.ctx, "berth-test/multi:v1")
			if err != nil {
				t.Fatal(err)
			}
			checkMultiLayer(t, e.mountImage(img))
			// The layers stay as the archive had them: gzip blobs.
			m, err := e.svc.Manifest(e.ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			ml, _ := multi.Layers()
			for i, l := range m.Layers {
				d, _ := ml[i].Digest()
				if l.MediaType != ocispec.MediaTypeImageLayerGzip || l.Digest.String() != d.String() {
					t.Errorf("%s: layer %d is %s %s, want the gzip blob %s", c.what, i, l.MediaType, l.Digest, d)
				}
			}
		}
	})
}

// TestLoadLegacyLayout loads a hand-made legacy archive: <id>/layer.tar
// layers, one uncompressed and one gzip, and a second image whose layer is
// a symlink to the first one's, as Docker before 25 wrote shared layers.
func TestLoadLegacyLayout(t *testing.T) {
	base, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	top, err := testutil.LayerTar([]testutil.TarEntry{{Name: "hello.txt", Data: "hello\n"}})
	if err != nil {
		t.Fatal(err)
	}
	var topGz bytes.Buffer
	zw := gzip.NewWriter(&topGz)
	zw.Write(top)
	zw.Close()
	config := func(layers ...[]byte) []byte {
		c := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, RootFS: ocispec.RootFS{Type: "layers"}}
		for _, l := range layers {
			c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digest.FromBytes(l))
		}
		b, _ := json.Marshal(c)
		return b
	}
	cfgA, cfgB := config(base, top), config(base)
	manifest, _ := json.Marshal([]dockerManifestEntry{
		{Config: digest.FromBytes(cfgA).Encoded() + ".json", RepoTags: []string{"legacy:a"}, Layers: []string{"l1/layer.tar", "l2/layer.tar"}},
		{Config: digest.FromBytes(cfgB).Encoded() + ".json", RepoTags: []string{"legacy:b"}, Layers: []string{"l3/layer.tar"}},
	})
	data := buildTar(t,
		tarFile{hdr: &tar.Header{Name: "l1/", Typeflag: tar.TypeDir}},
		tarFile{hdr: &tar.Header{Name: "l1/layer.tar"}, body: base},
		tarFile{hdr: &tar.Header{Name: "l2/layer.tar"}, body: topGz.Bytes()},
		tarFile{hdr: &tar.Header{Name: "l3/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../l1/layer.tar"}},
		tarFile{hdr: &tar.Header{Name: digest.FromBytes(cfgA).Encoded() + ".json"}, body: cfgA},
		tarFile{hdr: &tar.Header{Name: digest.FromBytes(cfgB).Encoded() + ".json"}, body: cfgB},
		tarFile{hdr: &tar.Header{Name: "manifest.json"}, body: manifest},
	)
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		e := newTransferEnv(t, kind)
		loaded, err := e.load(data)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		got := loadedNames(loaded)
		if !slices.Equal(got[digest.FromBytes(cfgA)], []string{"legacy:a"}) || !slices.Equal(got[digest.FromBytes(cfgB)], []string{"legacy:b"}) {
			t.Fatalf("loaded %+v", loaded)
		}
		a, _ := e.svc.Resolve(e.ctx, "legacy:a")
		b, _ := e.svc.Resolve(e.ctx, "legacy:b")
		ta, tb := treeOf(t, e.mountImage(a)), treeOf(t, e.mountImage(b))
		if _, ok := ta["bin/busybox"]; !ok {
			t.Error("legacy:a has no bin/busybox")
		}
		if _, ok := ta["hello.txt"]; !ok {
			t.Error("legacy:a has no hello.txt from its gzip layer")
		}
		delete(ta, "hello.txt")
		if d := diffTrees(ta, tb); d != "" {
			t.Errorf("legacy:b (the shared layer) differs from legacy:a's base:\n%s", d)
		}
	})
}

// TestLoadOCILayout loads a tarred OCI layout written by
// go-containerregistry: names from the annotations, a nested index
// resolved to the host's platform, a bare tag giving no name.
func TestLoadOCILayout(t *testing.T) {
	busybox, multi := testImages(t)
	other, err := testutil.WithPlatform(busybox, "linux", "s390x")
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOARCH == "s390x" {
		other, _ = testutil.WithPlatform(busybox, "linux", "riscv64")
	}
	idx, err := testutil.IndexOf(other, busybox)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(multi, layout.WithAnnotations(map[string]string{annotationImageName: "docker.io/berth-test/multi:oci", annotationRefName: "oci"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRefName: "busybox:idx"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(multi, layout.WithAnnotations(map[string]string{annotationRefName: "latest"})); err != nil {
		t.Fatal(err)
	}
	data, err := testutil.DirTar(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newTransferEnv(t, "overlay")
	loaded, err := e.load(data)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	got := loadedNames(loaded)
	if len(got) != 2 || !slices.Equal(got[configName(t, multi)], []string{"berth-test/multi:oci"}) || !slices.Equal(got[configName(t, busybox)], []string{"busybox:idx"}) {
		t.Fatalf("loaded %+v, want multi as berth-test/multi:oci and the host's busybox as busybox:idx", loaded)
	}
	img, _ := e.svc.Resolve(e.ctx, "berth-test/multi:oci")
	checkMultiLayer(t, e.mountImage(img))
	// The manifest is kept as the layout had it.
	md, _ := multi.Digest()
	if img.Manifest.Digest.String() != md.String() {
		t.Errorf("manifest %s, want the layout's %s", img.Manifest.Digest, md)
	}
}

// TestLoadMovesName checks that a name loaded for a new image leaves the
// image that had it without it (dangling), as Docker does.
func TestLoadMovesName(t *testing.T) {
	busybox, multi := testImages(t)
	e := newTransferEnv(t, "overlay")
	old := e.addImage(busybox, "app:1")
	if _, err := e.load(legacyArchive(t, map[string]v1.Image{"app:1": multi})); err != nil {
		t.Fatal(err)
	}
	img, err := e.svc.Resolve(e.ctx, "app:1")
	if err != nil || img.ID != configName(t, multi) {
		t.Fatalf("app:1 is %s (%v), want the loaded image", img.ID, err)
	}
	if tags, _ := e.svc.RepoTags(e.ctx, old.ID); len(tags) != 0 {
		t.Errorf("the old image still has %v", tags)
	}
	if _, err := e.svc.Resolve(e.ctx, old.ID.String()); err != nil {
		t.Errorf("the old image is gone: %v", err)
	}
}

// tarFile is an entry for buildTar.
type tarFile struct {
	hdr  *tar.Header
	body []byte
}

func buildTar(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := *f.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// editTar rewrites the tar data: edit may change an entry's body or
// return false to drop it; extra entries come first.
func editTar(t *testing.T, data []byte, edit func(name string, body []byte) ([]byte, bool), extra ...tarFile) []byte {
	t.Helper()
	files := slices.Clone(extra)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if edit != nil {
			var keep bool
			if body, keep = edit(hdr.Name, body); !keep {
				continue
			}
		}
		files = append(files, tarFile{hdr: &tar.Header{Name: hdr.Name, Typeflag: hdr.Typeflag, Linkname: hdr.Linkname}, body: body})
	}
	return buildTar(t, files...)
}

// TestLoadErrors feeds broken and hostile archives to Load: each fails
// with a clear, classified error and leaves no image, tag, snapshot, blob
// or temporary file behind (once GC has run), and nothing outside.
func TestLoadErrors(t *testing.T) {
	busybox, multi := testImages(t)
	src := newTransferEnv(t, "overlay")
	src.addImage(busybox, "busybox:latest")
	var saved bytes.Buffer
	if err := src.svc.Save(src.ctx, &saved, []string{"busybox:latest"}); err != nil {
		t.Fatal(err)
	}
	good := saved.Bytes()
	bl, _ := busybox.Layers()
	diff, _ := bl[0].DiffID()
	layerName := "blobs/sha256/" + diff.Hex
	cfgName := "blobs/sha256/" + configName(t, busybox).Encoded()
	legacy := legacyArchive(t, map[string]v1.Image{"busybox:latest": busybox, "berth-test/multi:v1": multi})
	ml, _ := multi.Layers()
	lastDigest, _ := ml[2].Digest()
	otherTar, _ := testutil.LayerTar([]testutil.TarEntry{{Name: "not-the-layer", Data: "x"}})

	only := func(names ...string) func(string, []byte) ([]byte, bool) {
		return func(n string, b []byte) ([]byte, bool) { return b, slices.Contains(names, n) }
	}
	replace := func(target string, with []byte) func(string, []byte) ([]byte, bool) {
		return func(n string, b []byte) ([]byte, bool) {
			if n == target {
				return with, true
			}
			return b, true
		}
	}
	drop := func(target string) func(string, []byte) ([]byte, bool) {
		return func(n string, b []byte) ([]byte, bool) { return b, n != target }
	}
	flip := func(target string) func(string, []byte) ([]byte, bool) {
		return func(n string, b []byte) ([]byte, bool) {
			if n == target {
				b = slices.Clone(b)
				b[len(b)/2] ^= 0xff
			}
			return b, true
		}
	}
	badTags, _ := json.Marshal([]dockerManifestEntry{{Config: cfgName, RepoTags: []string{"Not A Name!"}, Layers: []string{layerName}}})
	loopManifest, _ := json.Marshal([]dockerManifestEntry{{Config: "a", Layers: []string{}}})

	cases := []struct {
		name  string
		data  []byte
		class error
		msg   string
	}{
		{"not a tar", bytes.Repeat([]byte("not a tar archive "), 64), errdefs.ErrDataLoss, "read archive"},
		{"empty input", nil, errdefs.ErrInvalidArgument, "empty"},
		{"no manifest", buildTar(t, tarFile{hdr: &tar.Header{Name: "hello"}, body: []byte("hi")}), errdefs.ErrInvalidArgument, "neither manifest.json nor index.json"},
		{"bad manifest.json", editTar(t, good, replace("manifest.json", []byte("[{"))), errdefs.ErrInvalidArgument, "manifest.json"},
		{"bad index.json", editTar(t, good, only("index.json", "oci-layout")), errdefs.ErrInvalidArgument, "blob"},
		{"missing layer", editTar(t, good, drop(layerName)), errdefs.ErrInvalidArgument, layerName},
		{"layer digest", editTar(t, good, flip(layerName)), errdefs.ErrDataLoss, layerName},
		{"config digest", editTar(t, good, flip(cfgName)), errdefs.ErrDataLoss, cfgName},
		{"bad config", editTar(t, good, replace(cfgName, []byte("{"))), errdefs.ErrDataLoss, cfgName},
		{"diff id", editTar(t, legacy, replace(lastDigest.Hex+".tar.gz", otherTar)), errdefs.ErrDataLoss, "diff id"},
		{"truncated", good[:len(good)/2], errdefs.ErrDataLoss, "read archive"},
		{"dot dot", editTar(t, good, nil, tarFile{hdr: &tar.Header{Name: "../evil"}, body: []byte("x")}), errdefs.ErrInvalidArgument, "escapes"},
		{"absolute", editTar(t, good, nil, tarFile{hdr: &tar.Header{Name: "/evil"}, body: []byte("x")}), errdefs.ErrInvalidArgument, "/evil"},
		{"symlink out", editTar(t, good, nil, tarFile{hdr: &tar.Header{Name: "manifest.json", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"}}), errdefs.ErrInvalidArgument, "links to"},
		{"absolute symlink", editTar(t, good, nil, tarFile{hdr: &tar.Header{Name: "x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}), errdefs.ErrInvalidArgument, "absolute"},
		{"device", editTar(t, good, nil, tarFile{hdr: &tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}), errdefs.ErrInvalidArgument, "unsupported type"},
		{"link loop", buildTar(t,
			tarFile{hdr: &tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "b"}},
			tarFile{hdr: &tar.Header{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "a"}},
			tarFile{hdr: &tar.Header{Name: "manifest.json"}, body: loopManifest}), errdefs.ErrInvalidArgument, "links"},
		{"bad name", editTar(t, good, replace("manifest.json", badTags)), errdefs.ErrInvalidArgument, "Not A Name!"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTransferEnv(t, "overlay")
			_, err := e.load(c.data)
			if err == nil {
				t.Fatal("load succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), "load: ") || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			if c.class != nil && !errors.Is(err, c.class) {
				t.Errorf("error %q is not of class %v", err, c.class)
			}
			e.assertEmptyAfterGC()
			for _, p := range []string{filepath.Join(e.root, "evil"), filepath.Join(filepath.Dir(e.root), "evil"), filepath.Join(e.root, "tmp", "evil")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("load wrote %s", p)
				}
			}
		})
	}
}
