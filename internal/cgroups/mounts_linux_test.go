package cgroups

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestHostMounts(t *testing.T) {
	hs, err := HostMounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) == 0 {
		t.Fatal("no cgroup hierarchy found")
	}
	seen := make(map[string]string)
	cgroup2AtRoot := false
	for _, h := range hs {
		var st unix.Statfs_t
		if err := unix.Statfs(h.Mountpoint, &st); err != nil {
			t.Fatalf("statfs %s: %v", h.Mountpoint, err)
		}
		switch h.FSType {
		case "cgroup":
			if st.Type != unix.CGROUP_SUPER_MAGIC {
				t.Errorf("%s is listed as cgroup but has magic %#x", h.Mountpoint, st.Type)
			}
			if len(h.Subsystems) == 0 {
				t.Errorf("v1 hierarchy %s without subsystems", h.Mountpoint)
			}
			for _, s := range h.Subsystems {
				if prev, ok := seen[s]; ok {
					t.Errorf("subsystem %s listed at %s and %s", s, prev, h.Mountpoint)
				}
				seen[s] = h.Mountpoint
				if !strings.Contains(h.Options, s) {
					t.Errorf("subsystem %s not in options %q", s, h.Options)
				}
			}
		case "cgroup2":
			if st.Type != unix.CGROUP2_SUPER_MAGIC {
				t.Errorf("%s is listed as cgroup2 but has magic %#x", h.Mountpoint, st.Type)
			}
			if got, want := h.Subsystems, strings.Fields(mustRead(t, h.Mountpoint, "cgroup.controllers")); !slices.Equal(got, want) {
				t.Errorf("cgroup2 subsystems = %v, want cgroup.controllers %v", got, want)
			}
			cgroup2AtRoot = cgroup2AtRoot || h.Mountpoint == "/sys/fs/cgroup"
		default:
			t.Errorf("%s has fstype %q", h.Mountpoint, h.FSType)
		}
		if h.Root == "" {
			t.Errorf("%s has no root", h.Mountpoint)
		}
	}
	if IsUnified() != cgroup2AtRoot {
		t.Errorf("IsUnified() = %v, but cgroup2 at /sys/fs/cgroup is %v", IsUnified(), cgroup2AtRoot)
	}
}

func TestV1Subsystems(t *testing.T) {
	for _, c := range []struct {
		opts string
		want []string
	}{
		{"rw,cpu,cpuacct", []string{"cpu", "cpuacct"}},
		{"rw,xattr,name=systemd", []string{"name=systemd"}},
		{"rw,release_agent=/x,memory", []string{"memory"}},
		{"rw,noprefix,clone_children,cpuset", []string{"cpuset"}},
		{"ro,none,name=foo,favordynmods", []string{"name=foo"}},
		{"rw,cpuset_v2_mode,cpuset,xattr,misc", []string{"cpuset", "misc"}},
	} {
		if got := v1Subsystems(c.opts); !slices.Equal(got, c.want) {
			t.Errorf("v1Subsystems(%q) = %v, want %v", c.opts, got, c.want)
		}
	}
}

// TestNewPaths checks New's path resolution against /proc/self/cgroup and
// mountinfo, and that New creates nothing.
func TestNewPaths(t *testing.T) {
	hs, err := HostMounts()
	if err != nil {
		t.Fatal(err)
	}
	own := procCgroups(t, os.Getpid())
	v1 := slices.ContainsFunc(hs, func(h Hierarchy) bool {
		return h.FSType == "cgroup" && slices.ContainsFunc(h.Subsystems, func(s string) bool { return !strings.HasPrefix(s, "name=") })
	})
	for _, c := range []struct{ path, id, inner string }{
		{"", "berth-newpaths-ctr", "berth-newpaths-ctr"},
		{"/berth-newpaths/abs", "x", "/berth-newpaths/abs"},
		{"berth-newpaths/rel", "x", "berth-newpaths/rel"},
	} {
		m, err := New(c.path, c.id)
		if err != nil {
			t.Fatalf("New(%q, %q): %v", c.path, c.id, err)
		}
		want := make(map[string]string)
		for _, h := range hs {
			if h.FSType == "cgroup" && !v1 {
				continue
			}
			key := ""
			if h.FSType == "cgroup" {
				key = h.Subsystems[0]
			}
			base := "/"
			if !filepath.IsAbs(c.inner) {
				base, err = relativeToRoot(own[key], h.Root)
				if err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(h.Mountpoint, base, c.inner)
			if h.FSType == "cgroup2" {
				want[""] = dir
				continue
			}
			for _, s := range h.Subsystems {
				want[s] = dir
			}
		}
		got := m.Paths()
		for k, w := range want {
			if got[k] != w {
				t.Errorf("New(%q, %q).Paths()[%q] = %q, want %q", c.path, c.id, k, got[k], w)
			}
			if _, err := os.Stat(w); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("New created (or found) %s: %v", w, err)
			}
		}
		if len(got) != len(want) {
			t.Errorf("New(%q, %q).Paths() = %v, want %v", c.path, c.id, got, want)
		}
	}
	for _, c := range []struct{ path, id string }{
		{"/../escape", ""},
		{strings.Repeat("../", 64) + "escape", ""},
		{"", ""},
		{"", "a/b"},
	} {
		if _, err := New(c.path, c.id); !errdefs.IsInvalidArgument(err) {
			t.Errorf("New(%q, %q): err = %v, want invalid argument", c.path, c.id, err)
		}
	}
}

// TestNewManagerLayouts checks mode detection and path resolution on
// synthetic host layouts, pure v2 and v1 with co-mounted and named
// hierarchies included, whatever this host is.
func TestNewManagerLayouts(t *testing.T) {
	unified := Hierarchy{Mountpoint: "/sys/fs/cgroup", FSType: "cgroup2", Root: "/"}
	own := map[string]string{"": "/user.slice/session-1.scope", "cpu": "/user.slice", "cpuacct": "/user.slice", "name=systemd": "/user.slice/session-1.scope", "memory": "/docker/abc/inner"}
	for _, c := range []struct {
		name      string
		hs        []Hierarchy
		path, id  string
		v2        bool
		wantPaths map[string]string
	}{
		{
			name: "pure v2, empty path", hs: []Hierarchy{unified}, id: "ctr", v2: true,
			wantPaths: map[string]string{"": "/sys/fs/cgroup/user.slice/session-1.scope/ctr"},
		},
		{
			name: "v2 with a leftover named v1 hierarchy", path: "/berth/ctr", v2: true,
			hs: []Hierarchy{
				{Mountpoint: "/sys/fs/cgroup/systemd", FSType: "cgroup", Root: "/", Subsystems: []string{"name=systemd"}},
				unified,
			},
			wantPaths: map[string]string{"": "/sys/fs/cgroup/berth/ctr"},
		},
		{
			name: "v1 co-mounted, named and a cgroup namespace root", path: "sub", id: "x",
			hs: []Hierarchy{
				{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup", Root: "/", Subsystems: []string{"cpu", "cpuacct"}},
				{Mountpoint: "/sys/fs/cgroup/systemd", FSType: "cgroup", Root: "/", Subsystems: []string{"name=systemd"}},
				{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Root: "/docker/abc", Subsystems: []string{"memory"}},
			},
			wantPaths: map[string]string{
				"cpu":          "/sys/fs/cgroup/cpu,cpuacct/user.slice/sub",
				"cpuacct":      "/sys/fs/cgroup/cpu,cpuacct/user.slice/sub",
				"name=systemd": "/sys/fs/cgroup/systemd/user.slice/session-1.scope/sub",
				"memory":       "/sys/fs/cgroup/memory/inner/sub",
			},
		},
		{
			name: "hybrid", path: "/berth/ctr",
			hs: []Hierarchy{
				{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Root: "/", Subsystems: []string{"memory"}},
				{Mountpoint: "/sys/fs/cgroup/unified", FSType: "cgroup2", Root: "/"},
			},
			wantPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/berth/ctr", "": "/sys/fs/cgroup/unified/berth/ctr"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := layoutOf(c.hs)
			if err != nil {
				t.Fatal(err)
			}
			m, err := newManager(l, own, c.path, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if _, isV2 := m.(*v2Manager); isV2 != c.v2 {
				t.Errorf("manager is %T, want v2 = %v", m, c.v2)
			}
			if got := m.Paths(); !maps.Equal(got, c.wantPaths) {
				t.Errorf("Paths() = %v, want %v", got, c.wantPaths)
			}
		})
	}
	if _, err := layoutOf([]Hierarchy{{Mountpoint: "/x", FSType: "cgroup", Root: "/", Subsystems: []string{"name=systemd"}}}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("layout with only a named hierarchy: err = %v, want unavailable", err)
	}
}

// readCgroupMountinfo, which parses only the cgroup lines, finds what
// parsing every line and filtering finds.
func TestReadCgroupMountinfoLikeFullParse(t *testing.T) {
	want, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readCgroupMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Skip("no cgroup filesystem is mounted on this host")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readCgroupMountinfo = %d entries, want %d:\n%+v\n%+v", len(got), len(want), got, want)
	}
}
