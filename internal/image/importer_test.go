package image

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/testutil"
)

func compress(t *testing.T, data []byte, c archive.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.Compress(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImport imports a busybox rootfs tarball, uncompressed, gzip and
// zstd, with changes, and checks the image: one gzip layer whose diff ID is
// the tarball's digest, the config the changes describe, the history
// comment, the tag, and the files through a mount.
func TestImport(t *testing.T) {
	rootfs, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	forEachSnapshotter(t, func(t *testing.T, kind string) {
		e := newTransferEnv(t, kind)
		var ids []digest.Digest
		for _, c := range []archive.Compression{archive.Uncompressed, archive.Gzip, archive.Zstd} {
			id, err := e.svc.Import(e.ctx, bytes.NewReader(compress(t, rootfs, c)), ImportOptions{
				Ref:     "imported:" + c.String(),
				Changes: []string{`CMD ["sh", "-c", "echo hi"]`, "ENV A=1 B=2", "EXPOSE 8080", "LABEL team=berth", "WORKDIR /w", "USER 1000", "VOLUME /data", "STOPSIGNAL SIGINT", "ONBUILD RUN true", "ENTRYPOINT [\"/bin/env\"]"},
			})
			if err != nil {
				t.Fatalf("import %s: %v", c, err)
			}
			ids = append(ids, id)
		}
		if ids[0] == "" || ids[1] == "" || ids[2] == "" {
			t.Fatalf("ids %v", ids)
		}
		img, err := e.svc.Resolve(e.ctx, "imported:zstd")
		if err != nil || img.ID != ids[2] {
			t.Fatalf("imported:zstd is %s (%v), want %s", img.ID, err, ids[2])
		}
		conf, err := e.svc.ConfigOf(e.ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if want := []digest.Digest{digest.FromBytes(rootfs)}; !reflect.DeepEqual(conf.RootFS.DiffIDs, want) {
			t.Errorf("diff ids %v, want %v", conf.RootFS.DiffIDs, want)
		}
		if conf.OS != "linux" || conf.Architecture != runtime.GOARCH {
			t.Errorf("platform %s/%s", conf.OS, conf.Architecture)
		}
		c := conf.Config
		if !reflect.DeepEqual(c.Cmd, []string{"sh", "-c", "echo hi"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/env"}) ||
			!reflect.DeepEqual(c.Env, []string{"A=1", "B=2"}) || c.WorkingDir != "/w" || c.User != "1000" || c.StopSignal != "SIGINT" ||
			c.Labels["team"] != "berth" || !has(c.ExposedPorts, "8080/tcp") || !has(c.Volumes, "/data") {
			t.Errorf("config %+v", c)
		}
		raw, _ := e.svc.RawConfig(e.ctx, img)
		var withOnBuild struct{ Config runConfig }
		if err := json.Unmarshal(raw, &withOnBuild); err != nil || !reflect.DeepEqual(withOnBuild.Config.OnBuild, []string{"RUN true"}) {
			t.Errorf("OnBuild: %+v (%v)", withOnBuild.Config.OnBuild, err)
		}
		if len(conf.History) != 1 || conf.History[0].Comment != "Imported from -" || conf.History[0].CreatedBy != "" || conf.History[0].EmptyLayer || conf.Created == nil {
			t.Errorf("history %+v, created %v", conf.History, conf.Created)
		}
		m, err := e.svc.Manifest(e.ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip || m.Config.Digest != img.ID {
			t.Fatalf("manifest %+v", m)
		}
		f, err := e.cs.Open(e.ctx, m.Layers[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		plain, comp, err := archive.Decompress(f)
		if err != nil || comp != archive.Gzip {
			t.Fatalf("stored layer is %s (%v), want gzip", comp, err)
		}
		var got bytes.Buffer
		got.ReadFrom(plain)
		plain.Close()
		f.Close()
		if !bytes.Equal(got.Bytes(), rootfs) {
			t.Error("the stored layer is not the imported tarball")
		}
		tree := treeOf(t, e.mountImage(img))
		if _, ok := tree["bin/busybox"]; !ok {
			t.Errorf("imported image has no bin/busybox: %d entries", len(tree))
		}

		// The message replaces the default comment.
		id, err := e.svc.Import(e.ctx, bytes.NewReader(rootfs), ImportOptions{Message: "my import"})
		if err != nil {
			t.Fatal(err)
		}
		img, _ = e.svc.Resolve(e.ctx, id.String())
		conf, _ = e.svc.ConfigOf(e.ctx, img)
		if conf.History[0].Comment != "my import" {
			t.Errorf("comment %q", conf.History[0].Comment)
		}
		if tags, _ := e.svc.RepoTags(e.ctx, id); len(tags) != 0 {
			t.Errorf("an import without a ref is tagged %v", tags)
		}
	})
}

// TestImportErrors checks that bad changes, names and tarballs fail with
// classified errors and leave nothing behind.
func TestImportErrors(t *testing.T) {
	rootfs, err := testutil.LayerTar([]testutil.TarEntry{{Name: "f", Data: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	hostile, _ := testutil.LayerTar([]testutil.TarEntry{{Name: "../escape", Data: "x"}})
	e := newTransferEnv(t, "overlay")
	for _, c := range []struct {
		what string
		data []byte
		opts ImportOptions
		want string
	}{
		{"run change", rootfs, ImportOptions{Changes: []string{"RUN rm -rf /"}}, "RUN is not a valid change command"},
		{"digest ref", rootfs, ImportOptions{Ref: "app@sha256:" + strings.Repeat("a", 64)}, "digest reference"},
		{"bad ref", rootfs, ImportOptions{Ref: "Bad Name"}, "invalid reference format"},
		{"empty", nil, ImportOptions{}, "empty"},
		{"not a tar", bytes.Repeat([]byte("junk"), 300), ImportOptions{}, "unpack"},
		{"escaping entry", hostile, ImportOptions{}, "escape"},
	} {
		_, err := e.svc.Import(e.ctx, bytes.NewReader(c.data), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !(errdefs.IsInvalidArgument(err) || errdefs.IsDataLoss(err)) {
			t.Errorf("%s: error %v, want a classified error saying %q", c.what, err, c.want)
		}
	}
	e.assertEmptyAfterGC()
}
