package volume

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

// newStore opens a store in a temporary data root and fails the test if a
// mount is left below it at the end.
func newStore(t *testing.T) (*Store, *metadata.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t.Cleanup(func() { checkNoMounts(t, dir) })
	s, err := New(filepath.Join(dir, "volumes"), db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// checkNoMounts fails t for every mount at or below dir, and detaches it
// so that the temporary directory can go.
func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Error(err)
		return
	}
	slices.SortFunc(ms, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range ms {
		t.Errorf("mount left behind: %s (%s)", m.Mountpoint, m.FSType)
		_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}

func names(vs []volume.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCreateGetRemove(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if m := mode(t, s.Root()); m != rootMode {
		t.Errorf("root mode %o, want %o", m, rootMode)
	}
	v, err := s.Create(ctx, volume.CreateRequest{Name: "data", Labels: map[string]string{"app": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Root(), "data", "_data")
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Mountpoint != want || v.Labels["app"] != "db" || v.Options == nil {
		t.Errorf("created %+v", v)
	}
	if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil {
		t.Errorf("CreatedAt %q: %v", v.CreatedAt, err)
	}
	for _, d := range []string{filepath.Dir(want), want} {
		if m := mode(t, d); m != volumeMode {
			t.Errorf("%s mode %o, want %o", d, m, volumeMode)
		}
	}
	// The same name again is the same volume, labels as first created.
	again, err := s.Create(ctx, volume.CreateRequest{Name: "data", Driver: "local", Labels: map[string]string{"other": "x"}})
	if err != nil || again.CreatedAt != v.CreatedAt || again.Labels["app"] != "db" || again.Labels["other"] != "" {
		t.Errorf("create again = %+v, %v; want the first volume", again, err)
	}
	got, err := s.Get(ctx, "data")
	if err != nil || got.Mountpoint != want {
		t.Errorf("Get = %+v, %v", got, err)
	}

	anon, err := s.Create(ctx, volume.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) {
		t.Errorf("generated name %q", anon.Name)
	}
	if _, ok := anon.Labels[AnonymousLabel]; !ok {
		t.Errorf("volume created without a name lacks %s: %v", AnonymousLabel, anon.Labels)
	}

	bad := []struct {
		req   volume.CreateRequest
		msg   string
		class func(error) bool
	}{
		{volume.CreateRequest{Name: "a/b"}, `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.IsInvalidArgument},
		{volume.CreateRequest{Name: "x"}, "create x: volume name is too short, names should be at least two alphanumeric characters", errdefs.IsInvalidArgument},
		{volume.CreateRequest{Name: "v1", DriverOpts: map[string]string{"foo": "1"}}, `create v1: invalid option: "foo"`, errdefs.IsInvalidArgument},
		{volume.CreateRequest{Name: "v1", DriverOpts: map[string]string{"type": "tmpfs"}}, `create v1: missing required option: "device"`, errdefs.IsInvalidArgument},
		{volume.CreateRequest{Name: "v1", Driver: "nfsplugin"}, `error looking up volume plugin nfsplugin: plugin "nfsplugin" not found`, errdefs.IsNotFound},
	}
	for _, tc := range bad {
		_, err := s.Create(ctx, tc.req)
		if err == nil || !tc.class(err) || !strings.HasPrefix(err.Error(), tc.msg+": ") {
			t.Errorf("Create(%+v) = %v, want %q", tc.req, err, tc.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "v1")); !os.IsNotExist(err) {
		t.Errorf("a refused create left its directory: %v", err)
	}

	if _, err := s.Get(ctx, "nope"); !errdefs.IsNotFound(err) || err.Error() != "get nope: no such volume: not found" {
		t.Errorf("Get(nope) = %v", err)
	}
	if err := s.Remove(ctx, "nope", false); !errdefs.IsNotFound(err) {
		t.Errorf("Remove(nope) = %v, want not found", err)
	}
	if err := s.Remove(ctx, "nope", true); err != nil {
		t.Errorf("Remove(nope, force) = %v", err)
	}
	os.WriteFile(filepath.Join(want, "f"), []byte("x"), 0o644)
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(want)); !os.IsNotExist(err) {
		t.Errorf("removed volume's directory: %v", err)
	}
	if _, err := s.Get(ctx, "data"); !errdefs.IsNotFound(err) {
		t.Errorf("Get after remove = %v", err)
	}
}

// resolveNamed makes containerID a user of the named volumes (as -v
// name:/name).
func resolveNamed(t *testing.T, s *Store, containerID string, vols ...string) {
	t.Helper()
	var binds []string
	for _, v := range vols {
		binds = append(binds, v+":/"+v)
	}
	if _, err := s.Resolve(context.Background(), containerID, nil, &api.HostConfig{Binds: binds}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for name, labels := range map[string]map[string]string{
		"web-data": {"app": "web", "tier": "front"},
		"db-data":  {"app": "db"},
		"scratch":  nil,
	} {
		if _, err := s.Create(ctx, volume.CreateRequest{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	resolveNamed(t, s, "c1", "db-data")
	cases := []struct {
		f    map[string][]string
		want []string
	}{
		{nil, []string{"db-data", "scratch", "web-data"}},
		{map[string][]string{"name": {"data"}}, []string{"db-data", "web-data"}},
		{map[string][]string{"name": {"^db"}}, []string{"db-data"}},
		{map[string][]string{"name": {"scratch", "web-data"}}, []string{"scratch", "web-data"}},
		{map[string][]string{"label": {"app"}}, []string{"db-data", "web-data"}},
		{map[string][]string{"label": {"app=web"}}, []string{"web-data"}},
		{map[string][]string{"label": {"app", "tier=front"}}, []string{"web-data"}},
		{map[string][]string{"label!": {"app=web"}}, []string{"db-data", "scratch"}},
		{map[string][]string{"dangling": {"true"}}, []string{"scratch", "web-data"}},
		{map[string][]string{"dangling": {"0"}}, []string{"db-data"}},
		{map[string][]string{"driver": {"local"}}, []string{"db-data", "scratch", "web-data"}},
		{map[string][]string{"driver": {"other"}}, nil},
	}
	for _, tc := range cases {
		vs, err := s.List(ctx, tc.f)
		if err != nil {
			t.Errorf("List(%v): %v", tc.f, err)
			continue
		}
		if got := names(vs); !slices.Equal(got, tc.want) {
			t.Errorf("List(%v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	for msg, f := range map[string]map[string][]string{
		"invalid filter 'until'":          {"until": {"1h"}},
		"invalid filter 'dangling=maybe'": {"dangling": {"maybe"}},
	} {
		if _, err := s.List(ctx, f); !errdefs.IsInvalidArgument(err) || message(err) != msg {
			t.Errorf("List(%v) = %v, want %q", f, err, msg)
		}
	}
}

func TestRemoveInUseAndRelease(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	resolveNamed(t, s, "c1", "shared")
	resolveNamed(t, s, "c2", "shared")
	err := s.Remove(ctx, "shared", true)
	if !errdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), "remove shared: volume is in use - [c1, c2]: ") {
		t.Errorf("Remove of a volume in use = %v", err)
	}
	if users, _ := s.Users(ctx, "shared"); !slices.Equal(users, []string{"c1", "c2"}) {
		t.Errorf("users %v", users)
	}
	if err := s.Release(ctx, "c1", nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "shared", false); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "[c2]") {
		t.Errorf("Remove with one user left = %v", err)
	}
	if err := s.Release(ctx, "c2", nil, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "shared", false); err != nil {
		t.Errorf("Remove of an unused volume: %v", err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mk := func(name string, labels map[string]string, content int) string {
		v, err := s.Create(ctx, volume.CreateRequest{Name: name, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), make([]byte, content), 0o644); err != nil {
			t.Fatal(err)
		}
		return v.Name
	}
	named := mk("named", nil, 100)
	anon := mk("", nil, 1000)
	anonKept := mk("", map[string]string{"keep": "yes"}, 10)
	anonUsed := mk("", nil, 10)
	resolveNamed(t, s, "c1", anonUsed)

	if _, _, err := s.Prune(ctx, map[string][]string{"dangling": {"true"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Prune with a list-only filter = %v", err)
	}
	deleted, reclaimed, err := s.Prune(ctx, map[string][]string{"label!": {"keep"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []string{anon}) || reclaimed != 1000 {
		t.Errorf("Prune() = %v %d, want [%s] 1000 (anonymous, unused, not labelled keep)", deleted, reclaimed, anon)
	}
	deleted, reclaimed, err = s.Prune(ctx, map[string][]string{"all": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{anonKept, named}
	slices.Sort(want)
	if slices.Sort(deleted); !slices.Equal(deleted, want) || reclaimed != 110 {
		t.Errorf("Prune(all) = %v %d, want %v 110", deleted, reclaimed, want)
	}
	vs, _ := s.List(ctx, nil)
	if got := names(vs); !slices.Equal(got, []string{anonUsed}) {
		t.Errorf("left after prune: %v, want the volume in use", got)
	}
	entries, _ := os.ReadDir(s.Root())
	if len(entries) != 1 {
		t.Errorf("directories left: %v", entries)
	}
	if _, _, err := s.Prune(ctx, map[string][]string{"all": {"yes please"}}); !errdefs.IsInvalidArgument(err) || message(err) != "invalid filter 'all=yes please'" {
		t.Errorf("Prune(all=junk) = %v", err)
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v, err := s.Create(ctx, volume.CreateRequest{Name: "sized"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "a"), make([]byte, 300), 0o644)
	os.Mkdir(filepath.Join(v.Mountpoint, "d"), 0o755)
	os.WriteFile(filepath.Join(v.Mountpoint, "d", "b"), make([]byte, 50), 0o644)
	os.Link(filepath.Join(v.Mountpoint, "a"), filepath.Join(v.Mountpoint, "d", "a-again"))
	os.Symlink("/etc/passwd", filepath.Join(v.Mountpoint, "link"))
	u, err := s.Usage(ctx)
	if err != nil || u["sized"] != 350 {
		t.Errorf("Usage = %v, %v; want sized: 350 (a hard link counted once, symlinks not followed)", u, err)
	}
}

func TestNewRepairs(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	if _, err := s.Create(ctx, volume.CreateRequest{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	// A crash after the record of a create was written, before its
	// directories: the record alone.
	err := db.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(Kind, "halfmade", record{Name: "halfmade", CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	// A crash during a remove, after the record went: the directory alone,
	// with a mount still in it.
	orphan := filepath.Join(s.Root(), "orphan", "_data")
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", orphan, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A driver-option volume the record says is mounted, which it no longer
	// is (a reboot).
	err = db.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(Kind, "rebooted", record{Name: "rebooted", CreatedAt: time.Now(),
			Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}, MountedBy: []string{"c9"}, Populated: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	// And one mounted that no container holds.
	err = db.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(Kind, "stale", record{Name: "stale", CreatedAt: time.Now(), Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(s.Root(), "stale", "_data")
	os.MkdirAll(stale, 0o755)
	if err := unix.Mount("tmpfs", stale, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}

	s2, err := New(s.Root(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kept", "halfmade", "rebooted", "stale"} {
		if m := mode(t, s2.dataDir(n)); m != volumeMode {
			t.Errorf("%s: _data mode %o", n, m)
		}
	}
	if _, err := os.Stat(filepath.Dir(orphan)); !os.IsNotExist(err) {
		t.Errorf("orphan directory left: %v", err)
	}
	if up, _ := isMounted(stale); up {
		t.Errorf("mount no container holds left mounted")
	}
	r, err := s2.get("rebooted")
	if err != nil || len(r.MountedBy) != 0 || r.Populated {
		t.Errorf("rebooted record %+v, %v; want no holders, not populated (tmpfs content is gone)", r, err)
	}
	vs, _ := s2.List(ctx, nil)
	if got := names(vs); !slices.Equal(got, []string{"halfmade", "kept", "rebooted", "stale"}) {
		t.Errorf("volumes after repair %v", got)
	}
}
