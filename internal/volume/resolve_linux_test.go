package volume

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

var hexName = regexp.MustCompile(`^[0-9a-f]{64}$`)

func users(t *testing.T, s *Store, name string) []string {
	t.Helper()
	u, err := s.Users(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	host := t.TempDir()
	missing := filepath.Join(host, "new", "dir")
	cfg := &api.Config{Volumes: map[string]struct{}{"/img": {}, "/data": {}, "/tmpd": {}}}
	hc := &api.HostConfig{
		Binds: []string{"named:/data", host + ":/h:ro", missing + ":/m", "/anon-bind", "named:/data2/sub"},
		Mounts: []mount.Mount{
			{Type: "volume", Source: "labelled", Target: "/mv", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"l": "v"}}},
			{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}},
		},
		Tmpfs: map[string]string{"/tmpd": ""},
	}
	ms, err := s.Resolve(ctx, "c1", cfg, hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("Resolve gave %d mounts, want 8: %+v", len(ms), ms)
	}
	data := func(n string) string { return filepath.Join(s.Root(), n, "_data") }
	anonBind, img := ms[3].Name, ms[6].Name
	want := []container.Mount{
		{Type: "volume", Name: "named", Source: data("named"), Destination: "/data", Driver: "local", Mode: "z", RW: true},
		{Type: "bind", Source: host, Destination: "/h", Mode: "ro", Propagation: "rprivate"},
		{Type: "bind", Source: missing, Destination: "/m", RW: true, Propagation: "rprivate"},
		{Type: "volume", Name: anonBind, Source: data(anonBind), Destination: "/anon-bind", Driver: "local", Mode: "z", RW: true, Anonymous: true},
		{Type: "volume", Name: "labelled", Source: data("labelled"), Destination: "/mv", Driver: "local", Mode: "z", RW: true, Options: []string{OptNoCopy}},
		{Type: "tmpfs", Destination: "/t", RW: true, Options: []string{"size=1m"}},
		{Type: "volume", Name: img, Source: data(img), Destination: "/img", Driver: "local", RW: true, Anonymous: true},
		{Type: "volume", Name: "named", Source: data("named"), Destination: "/data2/sub", Driver: "local", Mode: "z", RW: true},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("Resolve =\n%+v\nwant\n%+v", ms, want)
	}
	if !hexName.MatchString(anonBind) || !hexName.MatchString(img) || anonBind == img {
		t.Errorf("anonymous names %q %q", anonBind, img)
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("missing -v source not made as a 0755 directory: %v %v", fi, err)
	}
	for _, n := range []string{"named", "labelled", anonBind, img} {
		if u := users(t, s, n); !slices.Equal(u, []string{"c1"}) {
			t.Errorf("%s users %v, want [c1]", n, u)
		}
		if fi, err := os.Stat(data(n)); err != nil || !fi.IsDir() {
			t.Errorf("%s has no _data: %v", n, err)
		}
	}
	v, _ := s.Get(ctx, "labelled")
	if v.Labels["l"] != "v" {
		t.Errorf("--mount labels not on the volume: %v", v.Labels)
	}
	anon, _ := s.List(ctx, map[string][]string{"label": {AnonymousLabel}})
	if got, want := names(anon), []string{anonBind, img}; !slices.Equal(got, sorted(want)) {
		t.Errorf("anonymous volumes %v, want %v", got, want)
	}
	if err := s.Remove(ctx, "named", false); !errdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), "remove named: volume is in use - [c1]") {
		t.Errorf("Remove of a volume in use = %v", err)
	}

	// docker rm -v: anonymous volumes go, named ones stay.
	if err := s.Release(ctx, "c1", ms, true); err != nil {
		t.Fatal(err)
	}
	left, _ := s.List(ctx, nil)
	if got := names(left); !slices.Equal(got, []string{"labelled", "named"}) {
		t.Errorf("volumes after rm -v: %v", got)
	}
	for _, n := range []string{"named", "labelled"} {
		if u := users(t, s, n); len(u) != 0 {
			t.Errorf("%s users after release: %v", n, u)
		}
	}
	if err := s.Remove(ctx, "named", false); err != nil {
		t.Errorf("Remove after release: %v", err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestResolveErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	cases := []struct {
		cfg   *api.Config
		hc    *api.HostConfig
		from  map[string][]container.Mount
		msg   string
		class func(error) bool
	}{
		{nil, &api.HostConfig{Binds: []string{"v1:/x"}, Mounts: []mount.Mount{{Type: "tmpfs", Target: "/x/"}}},
			nil, "Duplicate mount point: /x", errdefs.IsInvalidArgument},
		{nil, &api.HostConfig{Binds: []string{"v1:/x", "/h:/x"}},
			nil, "Duplicate mount point: /x", errdefs.IsInvalidArgument},
		{nil, &api.HostConfig{Binds: []string{"/h:/run"}, Tmpfs: map[string]string{"/run": "size=1m"}},
			nil, "Duplicate mount point: /run", errdefs.IsInvalidArgument},
		{&api.Config{Volumes: map[string]struct{}{"rel": {}}}, &api.HostConfig{},
			nil, `invalid volume specification: 'rel': invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`, errdefs.IsInvalidArgument},
		{nil, &api.HostConfig{Binds: []string{"a/b:/x"}},
			nil, `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.IsInvalidArgument},
		{nil, &api.HostConfig{Mounts: []mount.Mount{{Type: "volume", Source: "vv", Target: "/x", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: map[string]string{"bogus": "1"}}}}}},
			nil, `create vv: invalid option: "bogus"`, errdefs.IsInvalidArgument},
		{nil, &api.HostConfig{Binds: []string{"v1:/x"}, VolumeDriver: "convoy"},
			nil, `error looking up volume plugin convoy: plugin "convoy" not found`, errdefs.IsNotFound},
		{nil, &api.HostConfig{VolumesFrom: []string{"c9:ro"}},
			map[string][]container.Mount{}, "No such container: c9", errdefs.IsNotFound},
		{nil, &api.HostConfig{VolumesFrom: []string{"c9"}},
			map[string][]container.Mount{"c9": {{Type: "volume", Name: "gone", Destination: "/g"}}}, "get gone: no such volume", errdefs.IsNotFound},
	}
	for i, tc := range cases {
		_, err := s.Resolve(ctx, "c1", tc.cfg, tc.hc, tc.from)
		if err == nil || !tc.class(err) || !strings.HasPrefix(err.Error(), tc.msg+": ") {
			t.Errorf("case %d: Resolve = %v, want %q", i, err, tc.msg)
		}
	}
	if vs, _ := s.List(ctx, nil); len(vs) != 0 {
		t.Errorf("refused Resolves left volumes %v", names(vs))
	}
}

// TestResolveUndo makes Resolve fail after it created volumes, added a
// user and made a bind source: all of it must be undone.
func TestResolveUndo(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.Create(ctx, volume.CreateRequest{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	file := filepath.Join(host, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	hc := &api.HostConfig{Binds: []string{"old:/o", "newvol:/n", host + "/made/here:/a", file + "/sub:/b"}}
	cfg := &api.Config{Volumes: map[string]struct{}{"/anon": {}}}
	_, err := s.Resolve(ctx, "c1", cfg, hc, nil)
	if err == nil || !strings.Contains(err.Error(), "create bind source "+file+"/sub") {
		t.Fatalf("Resolve with an impossible bind source = %v", err)
	}
	vs, _ := s.List(ctx, nil)
	if got := names(vs); !slices.Equal(got, []string{"old"}) {
		t.Errorf("volumes after a failed Resolve: %v, want [old]", got)
	}
	if u := users(t, s, "old"); len(u) != 0 {
		t.Errorf("old keeps users %v", u)
	}
	entries, _ := os.ReadDir(s.Root())
	if len(entries) != 1 || entries[0].Name() != "old" {
		t.Errorf("volume directories after a failed Resolve: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(host, "made")); !os.IsNotExist(err) {
		t.Errorf("bind source made by the failed Resolve is left: %v", err)
	}
}

func TestResolveVolumesFrom(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h1, h2 := t.TempDir(), t.TempDir()
	ms1, err := s.Resolve(ctx, "c1", &api.Config{Volumes: map[string]struct{}{"/anon": {}}},
		&api.HostConfig{Binds: []string{"named:/n", h1 + ":/h"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	anon := ms1[2].Name
	if ms1[2].Destination != "/anon" || !ms1[2].Anonymous {
		t.Fatalf("c1 mounts %+v", ms1)
	}
	ms2, err := s.Resolve(ctx, "c2", nil, &api.HostConfig{VolumesFrom: []string{"c1:ro"}, Binds: []string{h2 + ":/h"}},
		map[string][]container.Mount{"c1:ro": ms1})
	if err != nil {
		t.Fatal(err)
	}
	data := func(n string) string { return filepath.Join(s.Root(), n, "_data") }
	want := []container.Mount{
		{Type: "volume", Name: "named", Source: data("named"), Destination: "/n", Driver: "local", Options: []string{OptNoCopy}},
		{Type: "bind", Source: h2, Destination: "/h", RW: true, Propagation: "rprivate"},
		{Type: "volume", Name: anon, Source: data(anon), Destination: "/anon", Driver: "local", Anonymous: true, Options: []string{OptNoCopy}},
	}
	if !reflect.DeepEqual(ms2, want) {
		t.Errorf("volumes-from mounts =\n%+v\nwant\n%+v", ms2, want)
	}
	for _, n := range []string{anon, "named"} {
		if u := users(t, s, n); !slices.Equal(u, []string{"c1", "c2"}) {
			t.Errorf("%s users %v", n, u)
		}
	}
	// c2's rm -v leaves c1's anonymous volume, still in use.
	if err := s.Release(ctx, "c2", ms2, true); err != nil {
		t.Fatal(err)
	}
	if u := users(t, s, anon); !slices.Equal(u, []string{"c1"}) {
		t.Errorf("%s users after c2 went: %v", anon, u)
	}
	if err := s.Release(ctx, "c1", ms1, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, anon); !errdefs.IsNotFound(err) {
		t.Errorf("anonymous volume after its last user's rm -v: %v", err)
	}
}
