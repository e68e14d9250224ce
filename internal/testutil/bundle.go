package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-project/berth/internal/runtime/examplespec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BundleSpec returns the spec of a test bundle before mutation: examplespec.New
// with no terminal and the process `true`.
func BundleSpec() *specs.Spec {
	s := examplespec.New()
	s.Process.Terminal = false
	s.Process.Args = []string{"true"}
	return s
}

// WriteBundle makes an OCI bundle in dir (created if needed, expected empty):
// a busybox rootfs/ (BusyboxRootfs) and a config.json holding BundleSpec
// changed by mutate, if not nil.
func WriteBundle(dir string, mutate func(*specs.Spec)) error {
	if err := BusyboxRootfs(filepath.Join(dir, "rootfs")); err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	s := BundleSpec()
	if mutate != nil {
		mutate(s)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	return nil
}

// Bundle makes a bundle (see WriteBundle) in a new directory under
// t.TempDir() and returns its path. Before the directory is removed it checks
// that nothing is mounted under it; if something is, it fails the test and
// detaches the mounts, so that removing the bundle can never descend into a
// leaked mount.
func Bundle(t testing.TB, mutate func(*specs.Spec)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	// Registered after t.TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		mounts, err := mountsUnder(dir)
		if err != nil {
			t.Errorf("check mounts under bundle: %v", err)
			return
		}
		for _, m := range mounts {
			t.Errorf("leaked mount under bundle %s: %s", dir, m)
			if err := detach(m); err != nil {
				t.Errorf("detach leaked mount %s: %v", m, err)
			}
		}
	})
	if err := WriteBundle(dir, mutate); err != nil {
		t.Fatal(err)
	}
	return dir
}
