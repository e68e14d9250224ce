package cgroups

import (
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestResolveCgroupPath(t *testing.T) {
	for _, c := range []struct {
		own, path, id string
		want          string
		invalid       bool
	}{
		{own: "/user.slice/s", path: "", id: "ctr", want: "/user.slice/s/ctr"},
		{own: "/", path: "", id: "ctr", want: "/ctr"},
		{own: "/user.slice/s", path: "/berth/ctr", id: "x", want: "/berth/ctr"},
		{own: "/user.slice/s", path: "berth/ctr", id: "x", want: "/user.slice/s/berth/ctr"},
		{own: "/user.slice/s", path: "../other", id: "x", want: "/user.slice/other"},
		{own: "/user.slice/s", path: "../../top", id: "x", want: "/top"},
		{own: "/a", path: "/b/./c//d/", id: "x", want: "/b/c/d"},
		{own: "/a", path: "/b/../c", id: "x", want: "/c"},
		{own: "", path: "/abs", id: "x", want: "/abs"},
		// Escapes are rejected, not clipped at the root.
		{own: "/user.slice/s", path: "../../../etc", id: "x", invalid: true},
		{own: "/", path: "/../x", id: "x", invalid: true},
		{own: "/a", path: "/b/../../x", id: "x", invalid: true},
		{own: "/a", path: "..", id: "x", want: "/"},
		// The container id must be one path element.
		{own: "/", path: "", id: "", invalid: true},
		{own: "/", path: "", id: "..", invalid: true},
		{own: "/", path: "", id: "a/b", invalid: true},
		// A relative path needs an absolute own cgroup.
		{own: "", path: "rel", id: "x", invalid: true},
	} {
		got, err := resolveCgroupPath(c.own, c.path, c.id)
		if c.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("resolveCgroupPath(%q, %q, %q) = %q, %v; want invalid argument", c.own, c.path, c.id, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("resolveCgroupPath(%q, %q, %q) = %q, %v; want %q", c.own, c.path, c.id, got, err, c.want)
		}
	}
}

func TestRelativeToRoot(t *testing.T) {
	for _, c := range []struct {
		cgroup, root, want string
		invalid            bool
	}{
		{cgroup: "/a/b", root: "/", want: "/a/b"},
		{cgroup: "/docker/x/sub", root: "/docker/x", want: "/sub"},
		{cgroup: "/docker/x", root: "/docker/x", want: "/"},
		{cgroup: "/docker/xy", root: "/docker/x", invalid: true},
		{cgroup: "/other", root: "/docker/x", invalid: true},
	} {
		got, err := relativeToRoot(c.cgroup, c.root)
		if c.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("relativeToRoot(%q, %q) = %q, %v; want invalid argument", c.cgroup, c.root, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("relativeToRoot(%q, %q) = %q, %v; want %q", c.cgroup, c.root, got, err, c.want)
		}
	}
}
