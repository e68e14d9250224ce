package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func writeFile(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigFile(t *testing.T) {
	p := writeFile(t, `{"hosts": ["unix:///x.sock"], "live-restore": false, "registry-mirrors": ["m:1"], "storage-driver": "native"}`)
	c, set, err := LoadConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Hosts: []string{"unix:///x.sock"}, RegistryMirrors: []string{"m:1"}, StorageDriver: "native"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config %+v, want %+v", c, want)
	}
	if !set["live-restore"] || !set["hosts"] || set["data-root"] {
		t.Errorf("keys set: %v", set)
	}
	for _, tc := range []struct{ data, msg string }{
		{`{"debug": true, "userland-proxy": false}`, "unknown keys debug, userland-proxy"},
		{`{"hosts": "unix:///x"}`, "cannot unmarshal"},
		{`{"hosts": [`, "unexpected end"},
		{`[]`, "cannot unmarshal"},
	} {
		_, _, err := LoadConfigFile(writeFile(t, tc.data))
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want invalid argument with %q", tc.data, err, tc.msg)
		}
	}
	if _, _, err := LoadConfigFile(filepath.Join(t.TempDir(), "missing.json")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestMergeFlagsWin(t *testing.T) {
	flags := Config{DataRoot: "/flag", LogLevel: "debug", LiveRestore: true, StorageDriver: "overlay"}
	file := Config{DataRoot: "/file", LogLevel: "warn", LiveRestore: false, RegistryMirrors: []string{"m"}}
	fileSet := map[string]bool{"data-root": true, "log-level": true, "live-restore": true, "registry-mirrors": true}
	got := flags.Merge(file, fileSet, map[string]bool{"data-root": true})
	want := Config{DataRoot: "/flag", LogLevel: "warn", LiveRestore: false, StorageDriver: "overlay", RegistryMirrors: []string{"m"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged %+v, want %+v", got, want)
	}
}

func TestParseHost(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"unix:///run/berth/berth.sock", "unix", "/run/berth/berth.sock"},
		{"unix://", "unix", "/run/berth/berth.sock"},
		{"/tmp/x.sock", "unix", "/tmp/x.sock"},
		{"tcp://127.0.0.1:2375", "tcp", "127.0.0.1:2375"},
		{"fd://", "fd", ""},
	} {
		n, a, err := ParseHost(tc.in)
		if err != nil || n != tc.network || a != tc.addr {
			t.Errorf("ParseHost(%q) = %q, %q, %v", tc.in, n, a, err)
		}
	}
	for _, bad := range []string{"", "tcp://", "tcp://host", "http://x", "relative.sock"} {
		if _, _, err := ParseHost(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseHost(%q): %v, want invalid argument", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{DataRoot: "/d", ExecRoot: "/e"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{DataRoot: "/d", ExecRoot: "/e", LogLevel: "loud"},
		{DataRoot: "/d", ExecRoot: "/e", StorageDriver: "zfs"},
		{DataRoot: "", ExecRoot: "/e"},
		{DataRoot: "/d", ExecRoot: "/e", Hosts: []string{"ftp://x"}},
	} {
		if err := c.Validate(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Validate(%+v): %v", c, err)
		}
	}
}

func TestKeepDriver(t *testing.T) {
	root := t.TempDir()
	got, err := keepDriver(root, "", DriverNative)
	if err != nil || got != DriverNative {
		t.Fatalf("first start: %q %v", got, err)
	}
	// Later starts keep it, even when overlay would be chosen now.
	if got, err := keepDriver(root, "", DriverOverlay); err != nil || got != DriverNative {
		t.Fatalf("restart without a flag: %q %v", got, err)
	}
	if _, err := keepDriver(root, "overlay", DriverOverlay); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "--storage-driver native") {
		t.Fatalf("switching drivers: %v", err)
	}
	if got, err := keepDriver(root, "native", DriverNative); err != nil || got != DriverNative {
		t.Fatalf("asking for the recorded driver: %q %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(root, "storage-driver"), []byte("zfs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keepDriver(root, "", DriverOverlay); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("unknown recorded driver: %v", err)
	}
}
