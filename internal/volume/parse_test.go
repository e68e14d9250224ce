package volume

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

// message is err's text as the API shows it: without the class suffix.
func message(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+errdefs.ErrInvalidArgument.Error())
}

func TestParseBind(t *testing.T) {
	good := []struct {
		raw    string
		want   container.Mount
		create bool
	}{
		{"/data", container.Mount{Type: "volume", Destination: "/data", RW: true, Anonymous: true}, false},
		{"vol:/data", container.Mount{Type: "volume", Name: "vol", Destination: "/data", RW: true}, false},
		{"vol:/data/:ro", container.Mount{Type: "volume", Name: "vol", Destination: "/data", Mode: "ro"}, false},
		{"vol:/data:nocopy,rw", container.Mount{Type: "volume", Name: "vol", Destination: "/data", Mode: "nocopy,rw", RW: true, Options: []string{OptNoCopy}}, false},
		{"/host:/ctr", container.Mount{Type: "bind", Source: "/host", Destination: "/ctr", RW: true, Propagation: "rprivate"}, true},
		{"/host/../h/:/ctr:ro,rshared", container.Mount{Type: "bind", Source: "/h", Destination: "/ctr", Mode: "ro,rshared", Propagation: "rshared"}, true},
		{"/host:/ctr:z", container.Mount{Type: "bind", Source: "/host", Destination: "/ctr", Mode: "z", RW: true, Propagation: "rprivate"}, true},
		{"/host:/ctr:Z,cached,slave", container.Mount{Type: "bind", Source: "/host", Destination: "/ctr", Mode: "Z,cached,slave", RW: true, Propagation: "slave"}, true},
	}
	for _, tc := range good {
		r, err := parseBind(tc.raw, "")
		if err != nil {
			t.Errorf("parseBind(%q): %v", tc.raw, err)
			continue
		}
		if !reflect.DeepEqual(r.m, tc.want) || r.createSource != tc.create {
			t.Errorf("parseBind(%q) = %+v create %v, want %+v create %v", tc.raw, r.m, r.createSource, tc.want, tc.create)
		}
	}
	bad := []struct{ raw, msg string }{
		{"", "invalid volume specification: ''"},
		{":/data", "invalid volume specification: ':/data'"},
		{"/data:ro", "invalid volume specification: '/data:ro'"},
		{"a:/b:ro:x", "invalid volume specification: 'a:/b:ro:x'"},
		{"vol:/data:bogus", "invalid mode: bogus"},
		{"vol:/data:ro,rw", "invalid mode: ro,rw"},
		{"vol:data", `invalid volume specification: 'vol:data': invalid mount config for type "volume": invalid mount path: 'data' mount path must be absolute`},
		{"/host:/", `invalid volume specification: '/host:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`},
		{"vol:/data:rshared", `invalid volume specification: 'vol:/data:rshared': invalid mount config for type "volume": field BindOptions must not be specified`},
		{"/h:/c:nocopy", `invalid volume specification: '/h:/c:nocopy': invalid mount config for type "bind": field VolumeOptions must not be specified`},
	}
	for _, tc := range bad {
		_, err := parseBind(tc.raw, "")
		if err == nil || !errdefs.IsInvalidArgument(err) || message(err) != tc.msg {
			t.Errorf("parseBind(%q) = %v, want invalid argument %q", tc.raw, err, tc.msg)
		}
	}
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	good := []struct {
		spec mount.Mount
		want container.Mount
	}{
		{mount.Mount{Type: "bind", Source: dir + "/", Target: "/c/"},
			container.Mount{Type: "bind", Source: dir, Destination: "/c", RW: true, Propagation: "rprivate"}},
		{mount.Mount{Type: "bind", Source: dir, Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rslave", NonRecursive: true}},
			container.Mount{Type: "bind", Source: dir, Destination: "/c", Propagation: "rslave", Options: []string{OptNonRecursive}}},
		{mount.Mount{Type: "bind", Source: dir, Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}},
			container.Mount{Type: "bind", Source: dir, Destination: "/c", Propagation: "rprivate", Options: []string{OptReadOnlyNonRecursive}}},
		{mount.Mount{Type: "bind", Source: missing, Target: "/c", BindOptions: &mount.BindOptions{CreateMountpoint: true}},
			container.Mount{Type: "bind", Source: missing, Destination: "/c", RW: true, Propagation: "rprivate"}},
		{mount.Mount{Type: "volume", Target: "/v"},
			container.Mount{Type: "volume", Destination: "/v", RW: true, Anonymous: true}},
		{mount.Mount{Type: "volume", Source: "vol", Target: "/v", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}},
			container.Mount{Type: "volume", Name: "vol", Destination: "/v", Options: []string{OptNoCopy}}},
		{mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777, Options: [][]string{{"exec"}}}},
			container.Mount{Type: "tmpfs", Destination: "/t", RW: true, Options: []string{"mode=1777", "size=64m", "exec"}}},
		{mount.Mount{Type: "tmpfs", Target: "/t", ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000}},
			container.Mount{Type: "tmpfs", Destination: "/t", Options: []string{"size=1000"}}},
	}
	for _, tc := range good {
		r, err := parseMount(tc.spec)
		if err != nil {
			t.Errorf("parseMount(%+v): %v", tc.spec, err)
			continue
		}
		if !reflect.DeepEqual(r.m, tc.want) {
			t.Errorf("parseMount(%+v) = %+v, want %+v", tc.spec, r.m, tc.want)
		}
	}
	r, err := parseMount(mount.Mount{Type: "volume", Source: "vol", Target: "/v", VolumeOptions: &mount.VolumeOptions{
		Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs"}}}})
	if err != nil || r.driver != "local" || r.labels["a"] != "b" || r.driverOpts["type"] != "tmpfs" {
		t.Errorf("volume with driver config: %+v, %v", r, err)
	}

	bad := []struct {
		spec mount.Mount
		msg  string
	}{
		{mount.Mount{Type: "bind", Source: missing, Target: "/c"}, `invalid mount config for type "bind": bind source path does not exist: ` + missing},
		{mount.Mount{Type: "bind", Source: "rel", Target: "/c"}, `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{mount.Mount{Type: "bind", Target: "/c"}, `invalid mount config for type "bind": field Source must not be empty`},
		{mount.Mount{Type: "bind", Source: dir}, `invalid mount config for type "bind": field Target must not be empty`},
		{mount.Mount{Type: "bind", Source: dir, Target: "c"}, `invalid mount config for type "bind": invalid mount path: 'c' mount path must be absolute`},
		{mount.Mount{Type: "bind", Source: dir, Target: "/c", BindOptions: &mount.BindOptions{Propagation: "bogus"}}, `invalid mount config for type "bind": invalid propagation mode: bogus`},
		{mount.Mount{Type: "bind", Source: dir, Target: "/c", VolumeOptions: &mount.VolumeOptions{}}, `invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{mount.Mount{Type: "volume", Source: "v", Target: "/c", BindOptions: &mount.BindOptions{}}, `invalid mount config for type "volume": field BindOptions must not be specified`},
		{mount.Mount{Type: "volume", Target: "/c", ReadOnly: true}, `invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes`},
		{mount.Mount{Type: "tmpfs", Source: "x", Target: "/t"}, `invalid mount config for type "tmpfs": field Source must not be specified`},
		{mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"uid", "1"}}}}, `invalid mount config for type "tmpfs": invalid option: uid`},
		{mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{}}}}, `invalid mount config for type "tmpfs": invalid option array length`},
		{mount.Mount{Type: "npipe", Target: "/p"}, `invalid mount config for type "npipe": mount type unknown`},
		{mount.Mount{Type: "volume", Target: "/"}, `invalid mount config for type "volume": invalid specification: destination can't be '/'`},
	}
	for _, tc := range bad {
		_, err := parseMount(tc.spec)
		if err == nil || !errdefs.IsInvalidArgument(err) || message(err) != tc.msg {
			t.Errorf("parseMount(%+v) = %v, want invalid argument %q", tc.spec, err, tc.msg)
		}
	}
	_, err = parseMount(mount.Mount{Type: "volume", Source: "v", Target: "/c", VolumeOptions: &mount.VolumeOptions{Subpath: "x"}})
	if !errdefs.IsNotImplemented(err) {
		t.Errorf("volume subpath: %v, want not implemented", err)
	}
}

func TestParseVolumesFrom(t *testing.T) {
	for spec, want := range map[string]struct {
		id string
		rw bool
	}{"c1": {"c1", true}, "c1:ro": {"c1", false}, "c1:rw": {"c1", true}, "c1:ro,z": {"c1", false}} {
		id, rw, err := parseVolumesFrom(spec)
		if err != nil || id != want.id || rw != want.rw {
			t.Errorf("parseVolumesFrom(%q) = %q %v %v, want %q %v", spec, id, rw, err, want.id, want.rw)
		}
	}
	for spec, msg := range map[string]string{
		"":            "volumes-from specification cannot be an empty string",
		"c1:rshared":  "invalid mode: rshared",
		"c1:nocopy":   "invalid mode: nocopy",
		"c1:bogus":    "invalid mode: bogus",
		"c1:ro,rw":    "invalid mode: ro,rw",
		"c1:ro,slave": "invalid mode: ro,slave",
	} {
		_, _, err := parseVolumesFrom(spec)
		if err == nil || !errdefs.IsInvalidArgument(err) || message(err) != msg {
			t.Errorf("parseVolumesFrom(%q) = %v, want %q", spec, err, msg)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	good := []map[string]string{
		nil,
		{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"},
		{"type": "none", "device": "/srv", "o": "bind"},
		{"type": "nfs", "device": ":/export", "o": "addr=10.0.0.1,rw"},
	}
	for _, o := range good {
		if err := checkOptions(o); err != nil {
			t.Errorf("checkOptions(%v): %v", o, err)
		}
	}
	bad := []struct {
		o   map[string]string
		msg string
	}{
		{map[string]string{"foo": "bar"}, `invalid option: "foo"`},
		{map[string]string{"size": "1g"}, "quota size requested but no quota support"},
		{map[string]string{"type": "tmpfs"}, `missing required option: "device"`},
		{map[string]string{"device": "tmpfs"}, `missing required option: "type"`},
		{map[string]string{"o": "size=1m"}, `missing required option: "device"`},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "remount"}, "mount option remount is not allowed"},
	}
	for _, tc := range bad {
		if err := checkOptions(tc.o); err == nil || err.Error() != tc.msg {
			t.Errorf("checkOptions(%v) = %v, want %q", tc.o, err, tc.msg)
		}
	}
}
