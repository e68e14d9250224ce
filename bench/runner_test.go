//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := testutil.CleanupCache(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func testRunner(t *testing.T, name, path string) (*bench, *runner) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root (make test runs as root)")
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("%s not found (install scripts/debian-packages.txt): %v", path, err)
	}
	b := &bench{n: 1, dir: t.TempDir(), idPrefix: testutil.ContainerID(t) + "-"}
	r := newRunner(name, path, false)
	if err := r.init(b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return b, r
}

func TestDeleteAllRemovesLeftovers(t *testing.T) {
	b, r := testRunner(t, "runc", "runc")
	if err := r.makeBundle(b, "test", portableVersion); err != nil {
		t.Fatal(err)
	}
	id := b.containerID(r, "test", 0)
	testutil.CheckNoLeaks(t, id)

	// A created container waits for start: a leftover to delete.
	if _, err := r.timed(context.Background(), "create", "--bundle", r.bundles["test"], id); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(r.root); len(entries) != 1 {
		t.Fatalf("state root holds %d entries after create, want 1", len(entries))
	}
	if err := r.deleteAll(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(r.root); len(entries) != 0 {
		t.Errorf("state root holds %v after deleteAll", entries)
	}
}

func TestTimedReportsStderr(t *testing.T) {
	_, r := testRunner(t, "runc", "runc")
	_, err := r.timed(context.Background(), "state", "no-such-container")
	if err == nil || !strings.Contains(err.Error(), "no-such-container") {
		t.Fatalf("err = %v, want runc's complaint about the container", err)
	}
	if reason := unavailableReason(err); reason == "" || strings.Contains(reason, "--root") {
		t.Errorf("unavailable reason %q should be the runtime's stderr only", reason)
	}
}

func TestHiddenUnified(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root (make test runs as root)")
	}
	if cgroupMode() != "hybrid" {
		t.Skip("host has no hybrid cgroup layout (v1 controllers plus a cgroup2 mount) to hide")
	}
	e, err := startHiddenUnified()
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("stat", "-f", "-c", "%T", "/sys/fs/cgroup/unified")
	cmd.Stdout = f
	if _, err := e.run(cmd); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if strings.TrimSpace(string(got)) == "cgroup2fs" {
		t.Error("the executor's children still see the v2 hierarchy")
	}
	if cgroupMode() != "hybrid" {
		t.Error("hiding the v2 hierarchy unmounted it from the host")
	}
}
