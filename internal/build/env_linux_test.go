package build

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/snapshot/native"
	"github.com/berth-project/berth/internal/snapshot/overlay"
	"github.com/berth-project/berth/internal/testutil"
)

// env is a Builder over a fresh data root (content store, metadata
// database, overlay snapshotter, image service) holding busybox:latest,
// imported offline from the test fixture.
type env struct {
	t        testing.TB
	ctx      context.Context
	root     string
	db       *metadata.DB
	sn       snapshot.Snapshotter
	svc      *image.Service
	b        *Builder
	cfg      Config
	busybox  digest.Digest
	stateDir string
	rtRoot   string
	kind     string // snapshotter: overlay or native
}

// openSnapshotter opens the env's snapshotter over its data root.
func (e *env) openSnapshotter() {
	snaps := filepath.Join(e.root, "snapshots")
	var err error
	if e.kind == "native" {
		e.sn, err = native.New(snaps, e.db.Bolt())
	} else {
		e.sn, err = overlay.New(snaps, e.db.Bolt())
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

var busyboxTar = sync.OnceValues(testutil.BusyboxLayerTar)

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, "overlay")
}

// newEnvOn is newEnv with the overlay or the native snapshotter.
func newEnvOn(t testing.TB, kind string) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("build tests need root (real mounts and containers)")
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
	e := &env{t: t, ctx: context.Background(), root: root, kind: kind}
	cs, err := content.Open(filepath.Join(root, "content"), filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if e.db, err = metadata.Open(filepath.Join(root, "metadata.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if kind == "overlay" {
		if err := overlay.Supported(filepath.Join(root, "snapshots")); err != nil {
			t.Fatalf("overlayfs, which this machine has, does not mount: %v", err)
		}
	}
	e.openSnapshotter()
	t.Cleanup(func() { e.sn.Close() })
	e.svc = image.New(image.Config{Content: cs, DB: e.db, Snapshotter: e.sn, Overlay: kind == "overlay", TmpDir: filepath.Join(root, "tmp")})
	tarball, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	if e.busybox, err = e.svc.Import(e.ctx, bytes.NewReader(tarball), image.ImportOptions{Ref: "busybox:latest"}); err != nil {
		t.Fatal(err)
	}
	e.rtRoot = testutil.RootDir(t)
	e.stateDir = filepath.Join(root, "state")
	e.cfg = Config{
		Images: e.svc, Snapshotter: e.sn, DB: e.db,
		RuntimePath: testutil.RuntimeBinary(t), RuntimeRoot: e.rtRoot, StateDir: e.stateDir,
	}
	if e.b, err = New(e.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.checkClean)
	return e
}

// checkClean fails the test if a build left anything behind: a snapshot
// that is not a committed layer, runtime state, or scratch files.
func (e *env) checkClean() {
	t := e.t
	err := e.sn.Walk(e.ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind != snapshot.KindCommitted || strings.HasPrefix(info.Name, "build-") {
			t.Errorf("snapshot left behind: %s (%s)", info.Name, info.Kind)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk snapshots: %v", err)
	}
	if leases := e.buildLeases(); len(leases) > 0 {
		t.Errorf("build leases left behind: %v", leases)
	}
	// Build containers' cgroups live under berth-build in each hierarchy.
	leftCgroups, _ := filepath.Glob("/sys/fs/cgroup/*/berth-build/*/")
	unified, _ := filepath.Glob("/sys/fs/cgroup/berth-build/*/")
	for _, d := range append(leftCgroups, unified...) {
		t.Errorf("cgroup left behind: %s", d)
	}
	for _, dir := range []string{e.rtRoot, e.stateDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Errorf("read %s: %v", dir, err)
		}
		for _, de := range entries {
			if !strings.HasPrefix(de.Name(), "@") && !strings.HasPrefix(de.Name(), ".") { // the runtime's own files
				t.Errorf("left behind in %s: %s", dir, de.Name())
			}
		}
	}
}

// writeContext writes files (path -> content; a trailing "/" makes a
// directory) into a new context directory and returns it.
func (e *env) writeContext(files map[string]string) string {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), "ctx")
	writeFiles(e.t, dir, files)
	return dir
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// build builds the context dir with opts and returns the result and the
// progress output.
func (e *env) build(dir string, opts Options) (Result, string, error) {
	e.t.Helper()
	var out bytes.Buffer
	opts.ContextDir = dir
	opts.Out = &out
	res, err := e.b.Build(e.ctx, opts)
	return res, out.String(), err
}

// mustBuild builds and fails the test on error.
func (e *env) mustBuild(dir string, opts Options) (digest.Digest, string) {
	e.t.Helper()
	res, out, err := e.build(dir, opts)
	if err != nil {
		e.t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	if !strings.Contains(out, "Successfully built "+shortID(res.ImageID)+"\n") {
		e.t.Errorf("output lacks the success line:\n%s", out)
	}
	return res.ImageID, out
}

// rawConfig returns the image's config JSON, decoded.
func (e *env) config(id digest.Digest) (ocispec.Image, imageConfig) {
	e.t.Helper()
	img, err := e.svc.Resolve(e.ctx, id.String())
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := e.svc.RawConfig(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	var oc ocispec.Image
	var top struct {
		Config imageConfig `json:"config"`
	}
	if err := json.Unmarshal(raw, &oc); err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		e.t.Fatal(err)
	}
	return oc, top.Config
}

// inImage calls fn with a read-only mount of image id's tree.
func (e *env) inImage(id digest.Digest, fn func(root string)) {
	e.t.Helper()
	img, err := e.svc.Resolve(e.ctx, id.String())
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := e.svc.SnapshotKey(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	mounts, err := e.sn.Mounts(e.ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := snapshot.WithTempMount(e.ctx, mounts, func(root string) error { fn(root); return nil }); err != nil {
		e.t.Fatal(err)
	}
}

// readFile returns a file's content in image id ("" and false if absent).
func (e *env) readFile(id digest.Digest, p string) (string, bool) {
	e.t.Helper()
	var data []byte
	var err error
	e.inImage(id, func(root string) { data, err = os.ReadFile(filepath.Join(root, p)) })
	return string(data), err == nil
}

// lstat returns the file info of p in image id.
func (e *env) lstat(id digest.Digest, p string) os.FileInfo {
	e.t.Helper()
	var fi os.FileInfo
	var err error
	e.inImage(id, func(root string) { fi, err = os.Lstat(filepath.Join(root, p)) })
	if err != nil {
		e.t.Fatalf("lstat %s in %s: %v", p, shortID(id), err)
	}
	return fi
}

// history returns the created_by of each history entry of image id.
func (e *env) history(id digest.Digest) []string {
	oc, _ := e.config(id)
	var out []string
	for _, h := range oc.History {
		out = append(out, h.CreatedBy)
	}
	return out
}

// buildLeases returns the IDs of the builds' metadata leases.
func (e *env) buildLeases() []string {
	var ids []string
	err := e.db.View(func(tx *metadata.Tx) error {
		leases, err := tx.Leases()
		for _, l := range leases {
			if strings.HasPrefix(l.ID, "build-") {
				ids = append(ids, l.ID)
			}
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}
