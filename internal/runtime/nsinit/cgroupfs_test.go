package nsinit

import (
	"os"
	"path/filepath"
	"testing"
)

// The bind source of each hierarchy is the runtime's directory for one of
// its controllers, whichever the options list first.
func TestCgroupViewSourceFromRuntimePaths(t *testing.T) {
	v := &cgroupView{paths: map[string]string{
		"cpu":          "/sys/fs/cgroup/cpu,cpuacct/berth/c1",
		"cpuacct":      "/sys/fs/cgroup/cpu,cpuacct/berth/c1",
		"name=systemd": "/sys/fs/cgroup/systemd/berth/c1",
		"":             "/sys/fs/cgroup/unified/berth/c1",
	}}
	for _, tc := range []struct {
		h    CgroupMount
		want string
	}{
		{CgroupMount{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup", Root: "/", Options: "rw,cpu,cpuacct"}, "/sys/fs/cgroup/cpu,cpuacct/berth/c1"},
		{CgroupMount{Mountpoint: "/sys/fs/cgroup/systemd", FSType: "cgroup", Root: "/", Options: "rw,xattr,name=systemd"}, "/sys/fs/cgroup/systemd/berth/c1"},
		{CgroupMount{Mountpoint: "/sys/fs/cgroup/unified", FSType: "cgroup2", Root: "/", Options: "rw,nsdelegate"}, "/sys/fs/cgroup/unified/berth/c1"},
	} {
		got, err := v.source(tc.h)
		if err != nil || got != tc.want {
			t.Errorf("source(%s) = %q, %v; want %q", tc.h.Mountpoint, got, err, tc.want)
		}
	}
}

// Without the runtime's paths, the source is init's own cgroup (from
// /proc/self/cgroup) below the hierarchy's mountpoint, less its root.
func TestCgroupViewSourceFromOwnCgroup(t *testing.T) {
	v := &cgroupView{own: map[string]string{"memory": "/berth/c1", "": "/berth/c1"}}
	got, err := v.source(CgroupMount{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Root: "/", Options: "rw,memory"})
	if err != nil || got != "/sys/fs/cgroup/memory/berth/c1" {
		t.Errorf("v1 source = %q, %v", got, err)
	}
	got, err = v.source(CgroupMount{Mountpoint: "/sys/fs/cgroup", FSType: "cgroup2", Root: "/berth", Options: "rw"})
	if err != nil || got != "/sys/fs/cgroup/c1" {
		t.Errorf("v2 source below a root = %q, %v", got, err)
	}
}

// Each controller of a hierarchy that mounts several gets a link to it;
// single-controller and cgroup2 hierarchies get none.
func TestLinkComounted(t *testing.T) {
	dir := t.TempDir()
	for _, h := range []CgroupMount{
		{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup", Options: "rw,cpu,cpuacct"},
		{Mountpoint: "/sys/fs/cgroup/net_cls,net_prio", FSType: "cgroup", Options: "rw,net_cls,net_prio"},
		{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Options: "rw,memory"},
		{Mountpoint: "/sys/fs/cgroup/unified", FSType: "cgroup2", Options: "rw"},
	} {
		if err := linkComounted(dir, h); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "net_cls": "net_cls,net_prio", "net_prio": "net_cls,net_prio"}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("made %d entries, want %d: %v", len(entries), len(want), entries)
	}
	for name, target := range want {
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, target)
		}
	}
	// Linking again (a remount of the same tree) is not an error.
	if err := linkComounted(dir, CgroupMount{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup"}); err != nil {
		t.Errorf("second link: %v", err)
	}
}
