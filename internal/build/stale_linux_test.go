package build

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/testutil"
)

// TestNewCleansStale leaves what a crash in the middle of a RUN step
// leaves (a created build container, a mounted build snapshot, scratch
// files, a lease) and checks that New removes it all, the snapshot's
// parent layer intact.
func TestNewCleansStale(t *testing.T) {
	e := newEnv(t)
	img, err := e.svc.Resolve(e.ctx, "busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := e.svc.SnapshotKey(e.ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := e.sn.Prepare(e.ctx, "build-stale", parent)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(e.stateDir, "build-123", "rootfs-abc")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = snapshot.UnmountAll(rootfs) })
	if err := os.WriteFile(filepath.Join(rootfs, "written"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := testutil.ContainerID(t)
	bundle := testutil.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "300"} })
	testutil.CheckNoLeaks(t, id, bundle)
	// No pipes: the created container's init keeps its stdio open.
	create := exec.Command(e.cfg.RuntimePath, "--root", e.rtRoot, "create", "--bundle", bundle, id)
	if err := create.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}

	err = e.db.Update(func(tx *metadata.Tx) error { return tx.PutLease(metadata.Lease{ID: "build-stale"}) })
	if err != nil {
		t.Fatal(err)
	}

	if _, err := New(e.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Stat(e.ctx, "build-stale"); err == nil {
		t.Error("the stale build snapshot is still there")
	}
	if _, err := e.sn.Stat(e.ctx, parent); err != nil {
		t.Errorf("busybox's layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.rtRoot, id)); !os.IsNotExist(err) {
		t.Errorf("the stale build container's state: %v", err)
	}
	// e.checkClean and the mount check run at cleanup.
}
