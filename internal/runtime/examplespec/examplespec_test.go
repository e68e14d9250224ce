package examplespec

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runcSpec runs `runc spec` (with extra args) in a temporary bundle and
// returns the generic JSON of the config.json it wrote. It skips the test
// when runc is not installed.
func runcSpec(t *testing.T, args ...string) map[string]any {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc not found (install scripts/debian-packages.txt): %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(runc, append([]string{"spec", "--bundle", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec %v: %v: %s", args, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return generic(t, data)
}

func generic(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
	return m
}

func specJSON(t *testing.T, s *specs.Spec) map[string]any {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return generic(t, data)
}

// normalizeRunc removes what differs on purpose (hostname, ociVersion) and
// what differs between runc releases and hosts, so that the rest must match
// exactly:
//   - runc before 1.2 also sets the ambient capabilities to the default set;
//   - runc adds a cgroup namespace only on a cgroup v2 unified host, berth
//     always does (after the mount namespace);
//   - runc before 1.2 does not mask /sys/devices/virtual/tpm.
func normalizeRunc(ours, runc map[string]any) {
	for _, m := range []map[string]any{ours, runc} {
		delete(m, "hostname")
		delete(m, "ociVersion")
	}
	caps := dig(runc, "process", "capabilities")
	if caps != nil {
		if amb, ok := caps["ambient"]; ok && reflect.DeepEqual(amb, caps["bounding"]) {
			delete(caps, "ambient")
		}
	}
	linux := dig(runc, "linux")
	if linux == nil {
		return
	}
	if nss, ok := linux["namespaces"].([]any); ok {
		hasCgroup := false
		mountAt := -1
		for i, ns := range nss {
			switch ns.(map[string]any)["type"] {
			case "cgroup":
				hasCgroup = true
			case "mount":
				mountAt = i
			}
		}
		if !hasCgroup && mountAt >= 0 {
			linux["namespaces"] = slices.Insert(nss, mountAt+1, any(map[string]any{"type": "cgroup"}))
		}
	}
	if masked, ok := linux["maskedPaths"].([]any); ok && !slices.Contains(masked, any("/sys/devices/virtual/tpm")) {
		linux["maskedPaths"] = append(masked, "/sys/devices/virtual/tpm")
	}
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// diff lists every JSON path where a and b differ.
func diff(path string, a, b any) []string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			out = append(out, diff(path+"."+k, av[k], bv[k])...)
		}
		return out
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			break
		}
		var out []string
		for i := range av {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	as, _ := json.Marshal(a)
	bs, _ := json.Marshal(b)
	return []string{fmt.Sprintf("%s: berth %s, runc %s", path, as, bs)}
}

func compareWithRunc(t *testing.T, s *specs.Spec, runcArgs ...string) {
	t.Helper()
	runc := runcSpec(t, runcArgs...)
	ours := specJSON(t, s)
	normalizeRunc(ours, runc)
	if d := diff("", ours, runc); len(d) > 0 {
		t.Errorf("spec differs from `runc spec %s`:\n%s", strings.Join(runcArgs, " "), strings.Join(d, "\n"))
	}
}

func TestExampleMatchesRunc(t *testing.T) {
	compareWithRunc(t, New())
}

func TestToRootlessMatchesRunc(t *testing.T) {
	s := New()
	ToRootless(s)
	compareWithRunc(t, s, "--rootless")
}

func TestExample(t *testing.T) {
	s := New()
	if s.Version != specs.Version {
		t.Errorf("ociVersion = %q, want %q", s.Version, specs.Version)
	}
	if s.Hostname != "berth" {
		t.Errorf("hostname = %q, want berth", s.Hostname)
	}
	want := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace}
	var got []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		got = append(got, ns.Type)
	}
	if !slices.Equal(got, want) {
		t.Errorf("namespaces = %v, want %v", got, want)
	}
	if !s.Process.Terminal || !s.Process.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("terminal, noNewPrivileges and readonly root must be true: %+v %+v", s.Process, s.Root)
	}
}

func TestExampleReturnsIndependentSpecs(t *testing.T) {
	a := New()
	a.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	a.Mounts[2].Options[0] = "changed"
	a.Linux.MaskedPaths[0] = "/changed"
	a.Process.Env[0] = "PATH=/changed"
	b := New()
	if b.Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" || b.Process.Capabilities.Effective[0] != "CAP_AUDIT_WRITE" ||
		b.Mounts[2].Options[0] != "nosuid" || b.Linux.MaskedPaths[0] != "/proc/acpi" || b.Process.Env[0] == "PATH=/changed" {
		t.Fatal("New shares memory between calls")
	}
}

func TestToRootless(t *testing.T) {
	s := New()
	ToRootless(s)
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			t.Error("rootless spec keeps the network namespace")
		}
	}
	if n := len(s.Linux.Namespaces); n == 0 || s.Linux.Namespaces[n-1].Type != specs.UserNamespace {
		t.Errorf("rootless spec must end with a user namespace: %v", s.Linux.Namespaces)
	}
	wantUID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	wantGID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
	if !reflect.DeepEqual(s.Linux.UIDMappings, wantUID) || !reflect.DeepEqual(s.Linux.GIDMappings, wantGID) {
		t.Errorf("mappings = %v %v, want %v %v", s.Linux.UIDMappings, s.Linux.GIDMappings, wantUID, wantGID)
	}
	if s.Linux.Resources != nil {
		t.Errorf("rootless spec keeps resources: %+v", s.Linux.Resources)
	}
	if len(s.Mounts) != len(New().Mounts) {
		t.Errorf("rootless spec has %d mounts, want %d", len(s.Mounts), len(New().Mounts))
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && (m.Type != "none" || m.Source != "/sys" || !slices.Contains(m.Options, "rbind") || !slices.Contains(m.Options, "ro")) {
			t.Errorf("/sys is not a read-only rbind: %+v", m)
		}
		for _, o := range m.Options {
			if strings.HasPrefix(o, "uid=") || strings.HasPrefix(o, "gid=") {
				t.Errorf("mount %s keeps option %s", m.Destination, o)
			}
		}
	}

	// Converting twice changes nothing more.
	again := New()
	ToRootless(again)
	ToRootless(again)
	if !reflect.DeepEqual(again, s) {
		t.Errorf("ToRootless is not idempotent:\n%+v\n%+v", again.Linux, s.Linux)
	}
}
