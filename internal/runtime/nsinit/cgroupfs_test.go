package nsinit

import "testing"

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
