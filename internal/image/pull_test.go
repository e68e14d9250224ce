package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/testutil"
)

// pullEnv is an image service over a fresh data root, talking to reg.
type pullEnv struct {
	svc  *Service
	root string
	reg  *testutil.TestRegistry
	sn   snapshot.Snapshotter
	cs   *content.Store
	db   *metadata.DB
}

// setupPullEnv is newTransferEnv's data root with the overlay (or native)
// snapshotter and a registry client that trusts reg.
func setupPullEnv(t *testing.T, reg *testutil.TestRegistry, useNative bool, opts registry.Options) *pullEnv {
	t.Helper()
	kind := "overlay"
	if useNative {
		kind = "native"
	}
	e := newTransferEnv(t, kind)
	if reg != nil && reg.CAPool != nil {
		opts.RootCAs = reg.CAPool
	}
	if opts.ConfigDir == "" {
		opts.ConfigDir = filepath.Join(e.root, "docker-config")
	}
	e.svc.SetRegistry(registry.New(opts))
	return &pullEnv{svc: e.svc, root: e.root, reg: reg, sn: e.sn, cs: e.cs, db: e.db}
}

// withRootfs mounts the image's snapshot read-only and runs fn on its root.
func (e *pullEnv) withRootfs(t *testing.T, name string, fn func(root string)) {
	t.Helper()
	ctx := context.Background()
	img, err := e.svc.Resolve(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.svc.SnapshotKey(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	view := "test-view-" + randomHex(4)
	mounts, err := e.sn.View(ctx, view, key)
	if err != nil {
		t.Fatal(err)
	}
	defer e.sn.Remove(ctx, view)
	if err := snapshot.WithTempMount(ctx, mounts, func(root string) error { fn(root); return nil }); err != nil {
		t.Fatal(err)
	}
}

// counts returns how many blobs and snapshots the stores hold.
func (e *pullEnv) counts(t *testing.T) (blobs, snaps int) {
	t.Helper()
	ctx := context.Background()
	if err := e.cs.Walk(ctx, func(content.Info) error { blobs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.sn.Walk(ctx, func(context.Context, snapshot.Info) error { snaps++; return nil }); err != nil {
		t.Fatal(err)
	}
	return blobs, snaps
}

// checkMultiLayer checks the files of testutil.MultiLayerImage.
func checkMultiLayer(t *testing.T, root string) {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("read %s: %v", p, err)
		}
		return string(b)
	}
	if got := read("data/a.txt"); got != "alpha\n" {
		t.Errorf("a.txt = %q", got)
	}
	if got := read("etc/motd"); got != "two\n" {
		t.Errorf("motd = %q, want the top layer's", got)
	}
	if got := read("data/opq/new.txt"); got != "new\n" {
		t.Errorf("opq/new.txt = %q", got)
	}
	for _, gone := range []string{"data/gone.txt", "data/opq/old.txt"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s should be deleted by the top layer: %v", gone, err)
		}
	}
	var a, h syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "data/a.txt"), &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(root, "data/hard"), &h); err != nil {
		t.Fatal(err)
	}
	if a.Ino != h.Ino || a.Nlink < 2 {
		t.Errorf("data/hard is not a hard link of a.txt: inodes %d/%d nlink %d", a.Ino, h.Ino, a.Nlink)
	}
	if l, err := os.Readlink(filepath.Join(root, "data/sym")); err != nil || l != "a.txt" {
		t.Errorf("data/sym -> %q, %v", l, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "data/dir/b.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != testutil.UserUID || st.Mode&0o777 != 0o600 {
		t.Errorf("b.txt uid %d mode %o", st.Uid, st.Mode&0o777)
	}
	if _, err := os.Stat(filepath.Join(root, "bin/busybox")); err != nil {
		t.Errorf("base layer missing: %v", err)
	}
}

// progressLog collects progress messages.
type progressLog struct {
	mu  sync.Mutex
	all []Progress
}

func (p *progressLog) fn(pr Progress) {
	p.mu.Lock()
	p.all = append(p.all, pr)
	p.mu.Unlock()
}

func (p *progressLog) has(status string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.all {
		if strings.HasPrefix(pr.Status, status) {
			return true
		}
	}
	return false
}

func TestPullMultiLayer(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img, err := testutil.MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/test/multi:v1"
	if err := testutil.PushImage(ref, img, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	wantID, _ := img.ConfigName()
	for _, useNative := range []bool{false, true} {
		name := map[bool]string{false: "overlay", true: "native"}[useNative]
		t.Run(name, func(t *testing.T) {
			env := setupPullEnv(t, reg, useNative, registry.Options{})
			ctx := context.Background()
			var log progressLog
			res, err := env.svc.Pull(ctx, ref, PullOptions{Progress: log.fn})
			if err != nil {
				t.Fatal(err)
			}
			if res.Image.ID.String() != wantID.String() || !res.Updated {
				t.Fatalf("pulled %s (updated %v), want %s", res.Image.ID, res.Updated, wantID)
			}
			for _, s := range []string{"Pulling from test/multi", "Pulling fs layer", "Pull complete"} {
				if !log.has(s) {
					t.Errorf("progress lacks %q: %+v", s, log.all)
				}
			}
			env.withRootfs(t, ref, func(root string) { checkMultiLayer(t, root) })
			list, err := env.svc.List(ctx, ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || len(list[0].RepoTags) != 1 || list[0].RepoTags[0] != ref || list[0].Size == 0 {
				t.Fatalf("list: %+v", list)
			}
			if len(list[0].RepoDigests) != 1 || !strings.HasSuffix(list[0].RepoDigests[0], "@"+res.Digest.String()) {
				t.Errorf("repo digests %v, want ...@%s", list[0].RepoDigests, res.Digest)
			}
			// A second pull changes nothing and says so.
			var log2 progressLog
			res2, err := env.svc.Pull(ctx, ref, PullOptions{Progress: log2.fn})
			if err != nil {
				t.Fatal(err)
			}
			if res2.Updated || !log2.has("Already exists") || log2.has("Downloading") {
				t.Errorf("second pull: updated %v, progress %+v", res2.Updated, log2.all)
			}
			// Removing the image removes its blobs and layers.
			removed, err := env.svc.Remove(ctx, ref, RemoveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(removed) != 3 || removed[0].Untagged != ref || removed[2].Deleted != wantID.String() {
				t.Errorf("removed %+v", removed)
			}
			if b, s := env.counts(t); b != 0 || s != 0 {
				t.Errorf("after remove: %d blobs and %d snapshots left", b, s)
			}
		})
	}
}

func TestPullSharesLayersAndGC(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	bb, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	multi, err := testutil.MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.PushImage(reg.Host+"/t/bb", bb, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.PushImage(reg.Host+"/t/multi", multi, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	env := setupPullEnv(t, reg, false, registry.Options{})
	ctx := context.Background()
	if _, err := env.svc.Pull(ctx, reg.Host+"/t/bb", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	var log progressLog
	if _, err := env.svc.Pull(ctx, reg.Host+"/t/multi", PullOptions{Progress: log.fn}); err != nil {
		t.Fatal(err)
	}
	if !log.has("Already exists") {
		t.Errorf("the shared base layer was not reused: %+v", log.all)
	}
	if _, snaps := env.counts(t); snaps != 3 {
		t.Errorf("%d snapshots, want 3 (the base is shared)", snaps)
	}
	if _, err := env.svc.Remove(ctx, reg.Host+"/t/multi", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	blobs, snaps := env.counts(t)
	if snaps != 1 || blobs != 3 {
		t.Errorf("after removing multi: %d blobs, %d snapshots; want busybox's 3 blobs and 1 snapshot", blobs, snaps)
	}
	env.withRootfs(t, reg.Host+"/t/bb", func(root string) {
		if _, err := os.Stat(filepath.Join(root, "bin/sh")); err != nil {
			t.Errorf("busybox broken after removing multi: %v", err)
		}
	})
}

func TestPullIndexSelectsPlatform(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	host, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	other, err := testutil.WithPlatform(host, "linux", "s390x")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := testutil.IndexOf(other, host)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/t/multiarch:1"
	if err := testutil.PushIndex(ref, idx, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	hostID, _ := host.ConfigName()
	otherID, _ := other.ConfigName()
	env := setupPullEnv(t, reg, false, registry.Options{})
	ctx := context.Background()

	p, _ := ParsePlatform("linux/ppc64le")
	_, err = env.svc.Pull(ctx, ref, PullOptions{Platform: &p})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "linux/s390x") {
		t.Fatalf("pull for a platform the index lacks: %v", err)
	}
	if b, s := env.counts(t); b != 0 || s != 0 {
		t.Errorf("failed pull left %d blobs and %d snapshots", b, s)
	}
	res, err := env.svc.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.ID.String() != hostID.String() || res.Digest.String() != idxDigest.String() || res.Image.Index == nil {
		t.Errorf("host pull: id %s digest %s index %v", res.Image.ID, res.Digest, res.Image.Index)
	}
	p, _ = ParsePlatform("linux/s390x")
	res, err = env.svc.Pull(ctx, ref, PullOptions{Platform: &p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.ID.String() != otherID.String() {
		t.Errorf("--platform linux/s390x pulled %s, want %s", res.Image.ID, otherID)
	}
	// The tag moved to the s390x image; the host image is now dangling.
	list, err := env.svc.List(ctx, ListOptions{Filters: map[string][]string{"dangling": {"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID.String() != hostID.String() {
		t.Errorf("dangling: %+v", list)
	}
}

func TestPullErrorsLeaveNothing(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img, err := testutil.MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/t/broken:1"
	if err := testutil.PushImage(ref, img, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	top, _ := layers[2].Digest()
	blob := filepath.Join(reg.Dir, "storage/docker/registry/v2/blobs/sha256", top.Hex[:2], top.Hex, "data")
	good, err := os.ReadFile(blob)
	if err != nil {
		t.Fatalf("registry storage layout: %v", err)
	}
	env := setupPullEnv(t, reg, false, registry.Options{})
	ctx := context.Background()

	// A corrupt top layer: the pull fails naming it, nothing is recorded.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(blob, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = env.svc.Pull(ctx, ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), top.Hex) {
		t.Fatalf("pull of a corrupt layer: %v", err)
	}
	if list, _ := env.svc.List(ctx, ListOptions{}); len(list) != 0 {
		t.Fatalf("a failed pull left images: %+v", list)
	}
	if _, err := env.svc.Resolve(ctx, ref); !errdefs.IsNotFound(err) {
		t.Errorf("tag visible after failed pull: %v", err)
	}
	// A missing layer blob.
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	_, err = env.svc.Pull(ctx, ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), top.Hex) {
		t.Fatalf("pull of a missing layer: %v", err)
	}
	// Repaired, the retry succeeds.
	if err := os.WriteFile(blob, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Pull(ctx, ref, PullOptions{}); err != nil {
		t.Fatalf("retry after repair: %v", err)
	}
	env.withRootfs(t, ref, func(root string) { checkMultiLayer(t, root) })
	// A missing tag is not found, naming the image.
	_, err = env.svc.Pull(ctx, reg.Host+"/t/broken:nope", PullOptions{})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "broken:nope") {
		t.Errorf("missing tag: %v", err)
	}
	// GC after all that leaves exactly the image's blobs and snapshots.
	if _, err := env.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if b, s := env.counts(t); b != 5 || s != 3 {
		t.Errorf("after gc: %d blobs (want manifest+config+3 layers), %d snapshots (want 3)", b, s)
	}
}

func TestPullAuthAndTLS(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: true, TLS: true})
	img, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/private/bb:1"
	if err := testutil.PushImage(ref, img, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	env := setupPullEnv(t, reg, false, registry.Options{})
	ctx := context.Background()
	_, err = env.svc.Pull(ctx, ref, PullOptions{})
	if !errdefs.IsUnauthorized(err) {
		t.Fatalf("pull without credentials: %v", err)
	}
	if err := registry.SaveCredentials(filepath.Join(env.root, "docker-config"), reg.Host, reg.User, reg.Password); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Pull(ctx, ref, PullOptions{}); err != nil {
		t.Fatalf("pull with saved credentials: %v", err)
	}
	// Credentials given with the request (the API's X-Registry-Auth) work too.
	env2 := setupPullEnv(t, reg, false, registry.Options{})
	actx := registry.WithAuth(ctx, registry.AuthConfig{Username: reg.User, Password: reg.Password})
	if _, err := env2.svc.Pull(actx, ref, PullOptions{}); err != nil {
		t.Fatalf("pull with request credentials: %v", err)
	}
}

func TestRemoveConflicts(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/t/bb:1"
	if err := testutil.PushImage(ref, img, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	env := setupPullEnv(t, reg, false, registry.Options{})
	ctx := context.Background()
	res, err := env.svc.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Image.ID
	if err := env.svc.Tag(ctx, ref, "mine:v2"); err != nil {
		t.Fatal(err)
	}
	if err := env.svc.Tag(ctx, "nope", "x"); !errdefs.IsNotFound(err) {
		t.Errorf("tag of a missing image: %v", err)
	}
	if err := env.svc.Tag(ctx, ref, "UPPER"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("tag with a bad name: %v", err)
	}
	// By ID with two names: must force.
	if _, err := env.svc.Remove(ctx, id.Encoded()[:12], RemoveOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "multiple repositories") {
		t.Fatalf("remove by id with two tags: %v", err)
	}
	// A name untags only while another remains.
	out, err := env.svc.Remove(ctx, "mine:v2", RemoveOptions{})
	if err != nil || len(out) != 1 || out[0].Untagged != "mine:v2" {
		t.Fatalf("untag: %+v %v", out, err)
	}
	// In use by a stopped container: refused, then forced (untag only).
	inUse, running := []string{"c0ffee0000000000"}, false
	env.svc.cfg.InUse = func(digest.Digest) ([]string, bool) { return inUse, running }
	if _, err := env.svc.Remove(ctx, ref, RemoveOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "c0ffee000000") {
		t.Fatalf("remove of an image in use: %v", err)
	}
	if _, err := env.svc.Resolve(ctx, ref); err != nil {
		t.Fatalf("refused remove lost the tag: %v", err)
	}
	running = true
	if _, err := env.svc.Remove(ctx, id.String(), RemoveOptions{Force: true}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "cannot be forced") {
		t.Fatalf("forced remove of an image a running container uses: %v", err)
	}
	running = false
	if _, err := env.svc.Remove(ctx, ref, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Resolve(ctx, id.String()); err != nil {
		t.Fatalf("forced untag of an image in use deleted it: %v", err)
	}
	inUse = nil
	out, err = env.svc.Remove(ctx, id.String(), RemoveOptions{})
	if err != nil || len(out) == 0 || out[len(out)-1].Deleted != id.String() {
		t.Fatalf("remove dangling by id: %+v %v", out, err)
	}
	if _, err := env.svc.Remove(ctx, id.String(), RemoveOptions{}); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image") {
		t.Errorf("remove twice: %v", err)
	}
}
