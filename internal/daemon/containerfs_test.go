package daemon

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

func TestHideMountPoints(t *testing.T) {
	a := func(p string) archive.Change { return archive.Change{Kind: archive.Add, Path: p} }
	c := func(p string) archive.Change { return archive.Change{Kind: archive.Modify, Path: p} }
	del := func(p string) archive.Change { return archive.Change{Kind: archive.Delete, Path: p} }
	points := map[string]bool{"/etc/hosts": true, "/etc/resolv.conf": true, "/proc": true, "/data/sub": true}
	for _, tc := range []struct {
		name     string
		in       []archive.Change
		nonEmpty []string // placeholders that have content
		want     []archive.Change
	}{
		{
			name: "docker run busybox touch /x",
			in:   []archive.Change{c("/etc"), a("/etc/hosts"), a("/etc/resolv.conf"), a("/x")},
			want: []archive.Change{a("/x")},
		},
		{
			name: "a user change in /etc keeps /etc",
			in:   []archive.Change{c("/etc"), a("/etc/foo"), a("/etc/hosts"), a("/etc/resolv.conf")},
			want: []archive.Change{c("/etc"), a("/etc/foo")},
		},
		{
			name: "a user deletion in /etc keeps /etc",
			in:   []archive.Change{c("/etc"), a("/etc/hosts"), del("/etc/motd")},
			want: []archive.Change{c("/etc"), del("/etc/motd")},
		},
		{
			name:     "a mount point written to is a change",
			in:       []archive.Change{c("/etc"), a("/etc/hosts")},
			nonEmpty: []string{"/etc/hosts"},
			want:     []archive.Change{c("/etc"), a("/etc/hosts")},
		},
		{
			name: "parents made for a nested mount point",
			in:   []archive.Change{a("/data"), a("/data/sub"), a("/proc")},
			want: []archive.Change{},
		},
		{
			name: "a user file beside a nested mount point",
			in:   []archive.Change{a("/data"), a("/data/file"), a("/data/sub")},
			want: []archive.Change{a("/data"), a("/data/file")},
		},
		{
			name: "a deleted mount point is a change",
			in:   []archive.Change{c("/etc"), del("/etc/hosts")},
			want: []archive.Change{c("/etc"), del("/etc/hosts")},
		},
		{
			name: "a changed, not added, mount point is a change",
			in:   []archive.Change{c("/etc"), c("/etc/hosts")},
			want: []archive.Change{c("/etc"), c("/etc/hosts")},
		},
		{
			name: "unrelated directories stay",
			in:   []archive.Change{c("/bin"), del("/bin/ls"), a("/new")},
			want: []archive.Change{c("/bin"), del("/bin/ls"), a("/new")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			empty := func(p string, hidden func(string) bool) bool {
				if slices.Contains(tc.nonEmpty, p) {
					return false
				}
				// A directory placeholder is empty when what the input
				// adds below it is hidden.
				for _, ch := range tc.in {
					if strings.HasPrefix(ch.Path, p+"/") && !hidden(ch.Path) {
						return false
					}
				}
				return true
			}
			got := hideMountPoints(tc.in, points, empty)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("hideMountPoints(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestMountPoints(t *testing.T) {
	c := &container.Container{
		Mounts:     []container.Mount{{Type: "volume", Destination: "/data"}, {Type: "bind", Destination: "/srv/x/"}},
		HostConfig: &api.HostConfig{Tmpfs: map[string]string{"/run": ""}},
	}
	got := mountPoints(c)
	for _, p := range []string{"/data", "/srv/x", "/run", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/proc", "/sys", "/dev", "/sbin/berth-init"} {
		if !got[p] {
			t.Errorf("mountPoints lacks %s", p)
		}
	}
	if got["/srv"] || got["/etc"] {
		t.Errorf("mountPoints has parents of mount points: %v", got)
	}
}

func TestCpPathNames(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		abs, stat, archive string
		follow             bool
	}{
		{"/etc/passwd", "/etc/passwd", "passwd", "passwd", false},
		{"etc/passwd", "/etc/passwd", "passwd", "passwd", false},
		{"/etc/", "/etc", "etc", "etc", true},
		{"/etc/.", "/etc", ".", ".", true},
		{"/", "/", "/", ".", true},
		{"", "/", "/", ".", false},
		{".", "/", ".", ".", true},
		{"/a/../b", "/b", "b", "b", false},
		{"../../x", "/x", "x", "x", false},
	} {
		if got := containerPath(tc.in); got != tc.abs {
			t.Errorf("containerPath(%q) = %q, want %q", tc.in, got, tc.abs)
		}
		if got := statName(tc.in); got != tc.stat {
			t.Errorf("statName(%q) = %q, want %q", tc.in, got, tc.stat)
		}
		if got := archiveName(tc.in); got != tc.archive {
			t.Errorf("archiveName(%q) = %q, want %q", tc.in, got, tc.archive)
		}
		if got := followsLast(tc.in); got != tc.follow {
			t.Errorf("followsLast(%q) = %v, want %v", tc.in, got, tc.follow)
		}
	}
}

func TestMountAt(t *testing.T) {
	mounts := []container.Mount{
		{Type: "volume", Destination: "/data", RW: true},
		{Type: "bind", Destination: "/data/ro", RW: false},
		{Type: "volume", Destination: "/database", RW: true},
	}
	for p, want := range map[string]string{
		"/data":         "/data",
		"/data/x":       "/data",
		"/data/ro":      "/data/ro",
		"/data/ro/y":    "/data/ro",
		"/data/rox":     "/data",
		"/database/z":   "/database",
		"/dat":          "",
		"/":             "",
		"/other/data/x": "",
	} {
		m := mountAt(mounts, p)
		got := ""
		if m != nil {
			got = m.Destination
		}
		if got != want {
			t.Errorf("mountAt(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestCommitConfig(t *testing.T) {
	stop := 5
	ctr := &api.Config{
		User:         "1000",
		Env:          []string{"PATH=/bin", "A=ctr", "B=ctr"},
		Cmd:          []string{"sh", "-c", "echo hi"},
		Entrypoint:   nil,
		WorkingDir:   "/work",
		ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"a": "ctr", "b": "ctr"},
		StopSignal:   "SIGINT",
		StopTimeout:  &stop,
		Hostname:     "ignored",
	}
	t.Run("container's config", func(t *testing.T) {
		got := commitConfig(nil, ctr)
		if got.User != "1000" || got.WorkingDir != "/work" || got.StopSignal != "SIGINT" {
			t.Errorf("scalars = %q %q %q", got.User, got.WorkingDir, got.StopSignal)
		}
		if !slices.Equal(got.Cmd, ctr.Cmd) || got.Entrypoint != nil {
			t.Errorf("cmd %q entrypoint %q", got.Cmd, got.Entrypoint)
		}
		if !slices.Equal(got.Env, ctr.Env) {
			t.Errorf("env = %q", got.Env)
		}
		if _, ok := got.ExposedPorts["80/tcp"]; !ok || len(got.ExposedPorts) != 1 {
			t.Errorf("ports = %v", got.ExposedPorts)
		}
		if _, ok := got.Volumes["/data"]; !ok || len(got.Volumes) != 1 {
			t.Errorf("volumes = %v", got.Volumes)
		}
		if !reflect.DeepEqual(got.Labels, ctr.Labels) {
			t.Errorf("labels = %v", got.Labels)
		}
	})
	t.Run("user's fields win", func(t *testing.T) {
		user := &api.Config{
			Env:          []string{"A=user", "C=user"},
			Entrypoint:   []string{"/entry"},
			ExposedPorts: network.PortSet{network.MustParsePort("53/udp"): {}},
			Labels:       map[string]string{"a": "user"},
			Volumes:      map[string]struct{}{"/logs": {}},
		}
		got := commitConfig(user, ctr)
		if !slices.Equal(got.Env, []string{"A=user", "C=user", "PATH=/bin", "B=ctr"}) {
			t.Errorf("env = %q", got.Env)
		}
		// An entrypoint of the user's drops the container's command.
		if !slices.Equal(got.Entrypoint, []string{"/entry"}) || got.Cmd != nil {
			t.Errorf("entrypoint %q cmd %q", got.Entrypoint, got.Cmd)
		}
		if len(got.ExposedPorts) != 2 || len(got.Volumes) != 2 {
			t.Errorf("ports %v volumes %v", got.ExposedPorts, got.Volumes)
		}
		if got.Labels["a"] != "user" || got.Labels["b"] != "ctr" {
			t.Errorf("labels = %v", got.Labels)
		}
		if got.User != "1000" {
			t.Errorf("user = %q", got.User)
		}
	})
	t.Run("user's command with the container's entrypoint", func(t *testing.T) {
		c2 := *ctr
		c2.Entrypoint = []string{"/init"}
		got := commitConfig(&api.Config{Cmd: []string{"run"}}, &c2)
		if !slices.Equal(got.Entrypoint, []string{"/init"}) || !slices.Equal(got.Cmd, []string{"run"}) {
			t.Errorf("entrypoint %q cmd %q", got.Entrypoint, got.Cmd)
		}
	})
}

func TestPruneContainersBadFilters(t *testing.T) {
	d := &Daemon{ctrs: newContainers(), events: NewEvents()}
	for _, tc := range []struct {
		filters map[string][]string
		msg     string
	}{
		{map[string][]string{"status": {"exited"}}, "invalid filter 'status'"},
		{map[string][]string{"until": {"1h", "2h"}}, "more than one until filter specified"},
		{map[string][]string{"until": {"yesterday"}}, `invalid timestamp "yesterday"`},
	} {
		_, err := d.PruneContainers(context.Background(), tc.filters)
		if !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("PruneContainers(%v) = %v, want an invalid-argument error starting %q", tc.filters, err, tc.msg)
		}
	}
}
