package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Binaries returns a directory holding berth-runtime, berth-shim and
// berth-init: $BERTH_BIN_DIR when set, else the three built once per test
// process into the cache directory (see CleanupCache). A daemon under test
// takes its ShimPath, RuntimePath and InitPath from there.
func Binaries(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(BinDirEnv); dir != "" {
		for _, b := range []string{"berth-runtime", "berth-shim", "berth-init"} {
			if err := checkExecutable(filepath.Join(dir, b)); err != nil {
				t.Fatalf("binaries from %s: %v", BinDirEnv, err)
			}
		}
		return dir
	}
	p, err := cached(&cache.binaries, buildBinaries)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// buildBinaries builds the three programs into <cache>/bin.
func buildBinaries(cacheDir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make binary directory: %w", err)
	}
	for _, b := range []string{"berth-runtime", "berth-shim", "berth-init"} {
		if err := goBuild(root, "./cmd/"+b, filepath.Join(dir, b)); err != nil {
			return "", err
		}
	}
	return dir, nil
}
