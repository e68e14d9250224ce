package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRunHooks: run starts its container over the sync pipe instead of an
// exec fifo; every hook still runs once, in order, with the status of its
// point of the lifecycle, and poststart only once the user process runs.
func TestRunHooks(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	// The process waits for the poststart hook's mark, so it is still
	// there when that hook looks at it, then exits 3.
	script := "until [ -e " + dir + "/go ]; do sleep 0.01; done; exit 3"
	bundle := r.bundle([]string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{}
		for _, k := range hookKinds {
			setHook(s.Hooks, k, recordingHook(dir, k))
		}
		s.Hooks.Poststart = append(s.Hooks.Poststart, specs.Hook{Path: "/bin/touch", Args: []string{"touch", filepath.Join(dir, "go")}})
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dir, Type: "bind", Source: dir, Options: []string{"bind"}})
	})
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	_, stderr, err := r.rt("run", "--bundle", bundle, id)
	if code := exitStatus(err); code != 3 {
		t.Fatalf("run: %v (exit %d), want exit 3; stderr: %s", err, code, stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "order"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(data)); !slices.Equal(got, hookKinds) {
		t.Errorf("hooks run by run = %v, want %v", got, hookKinds)
	}
	want := map[string]string{
		"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
		"startContainer": "created", "poststart": "running", "poststop": "stopped",
	}
	for kind, status := range want {
		st, ok := hookState(t, dir, kind)
		if !ok {
			t.Errorf("%s hook did not run", kind)
			continue
		}
		if st.ID != id || string(st.Status) != status {
			t.Errorf("%s hook state = %+v, want id %s and status %s", kind, st, id, status)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "poststart.cmdline")); err != nil || string(got) != "sh\x00-c\x00"+script+"\x00" {
		t.Errorf("poststart hook saw the container process as %q (%v), want the sh script", got, err)
	}
	r.fails([]string{"state", id}, "does not exist")
}

// TestRunInitFailsBeforeReady: when init fails before it is ready, run
// reports init's error and leaves nothing behind.
func TestRunInitFailsBeforeReady(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Process.Cwd = "/etc/passwd/sub"
	})
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	r.fails([]string{"run", "--bundle", bundle, id}, "cwd")
	r.fails([]string{"state", id}, "does not exist")
	if _, err := os.Stat(filepath.Join(r.root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory left behind: %v", err)
	}
}

// TestBadBundleLeavesNoStateDir: the state directory is made while the
// bundle's config is read; a bad config removes it again, and with the id
// of an existing container it reports the config's error and leaves that
// container alone.
func TestBadBundleLeavesNoStateDir(t *testing.T) {
	r := newRig(t)
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "config.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"create", "run"} {
		id := testutil.ContainerID(t)
		r.fails([]string{cmd, "--bundle", bad, id}, "config")
		if _, err := os.Stat(filepath.Join(r.root, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s with a bad config left its state directory: %v", cmd, err)
		}
	}
	id, _ := r.create(sleeper, nil)
	for _, cmd := range []string{"create", "run"} {
		stderr := r.fails([]string{cmd, "--bundle", bad, id}, "config")
		if strings.Contains(stderr, "already exists") {
			t.Errorf("%s with a bad config and a taken id: %q, want the config's error", cmd, stderr)
		}
		if st := r.state(id); st.Status != "created" {
			t.Errorf("after %s with a taken id, the container is %s, want created", cmd, st.Status)
		}
	}
}

// TestNetNSSeenByHooks: the runtime makes the container's new network
// namespace ahead and init enters it; the prestart hook finds it through
// init's pid, as the container's process has it, with lo up.
func TestNetNSSeenByHooks(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	hook := specs.Hook{
		Path: "/bin/sh",
		Args: []string{"sh", "-c", `pid=$(sed 's/.*"pid": *\([0-9]*\).*/\1/'); readlink /proc/$pid/ns/net > "$1/hooknet"; cat /proc/$pid/net/dev > "$1/dev"`, "hook", dir},
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}
	bundle := r.bundle([]string{"readlink", "/proc/self/ns/net"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}} //nolint:staticcheck // prestart is deprecated but still part of the spec
	})
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	out := strings.TrimSpace(r.ok("run", "--bundle", bundle, id))
	hookNet := readTrim(t, filepath.Join(dir, "hooknet"))
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if out != hookNet || out == host || !strings.HasPrefix(out, "net:[") {
		t.Errorf("container in %q, prestart hook saw init in %q, host is %q: want the same new namespace", out, hookNet, host)
	}
	dev := readTrim(t, filepath.Join(dir, "dev"))
	if !strings.Contains(dev, "lo:") || strings.Count(dev, ":") != 1 {
		t.Errorf("init's namespace has interfaces %q, want only lo", dev)
	}
}
