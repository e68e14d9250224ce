package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	d := startDaemon(t)
	c := d.cli(t)
	out := c.ok("version")
	for _, want := range []string{"Client:", "Server: berth", "1.52 (minimum version 1.24)"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker version lacks %q:\n%s", want, out)
		}
	}
	// The client negotiated down to its own version, 1.50 for CLI 28.
	var v struct {
		Client struct{ APIVersion string }
		Server struct{ APIVersion, MinAPIVersion, Os string }
	}
	if err := json.Unmarshal([]byte(c.ok("version", "--format", "{{json .}}")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Server.APIVersion != "1.52" || v.Server.MinAPIVersion != "1.24" || v.Server.Os != "linux" {
		t.Errorf("server version: %+v", v.Server)
	}
	if v.Client.APIVersion != "1.50" {
		t.Errorf("client negotiated API %s, want 1.50 (CLI 28's own)", v.Client.APIVersion)
	}
}

func TestInfo(t *testing.T) {
	d := startDaemon(t)
	c := d.cli(t)
	var info struct {
		ServerVersion  string
		Images         int
		Driver         string
		DockerRootDir  string
		KernelVersion  string
		OSType         string
		NCPU           int
		MemTotal       int64
		CgroupVersion  string
		CgroupDriver   string
		Swarm          struct{ LocalNodeState string }
		RegistryConfig struct {
			InsecureRegistryCIDRs []string
			IndexConfigs          map[string]struct{ Secure bool }
		}
		LiveRestoreEnabled bool
	}
	if err := json.Unmarshal([]byte(c.ok("info", "--format", "{{json .}}")), &info); err != nil {
		t.Fatal(err)
	}
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	if info.Images != 0 || info.DockerRootDir != d.DataRoot || info.OSType != "linux" || info.NCPU < 1 ||
		info.MemTotal <= 0 || (info.CgroupVersion != "1" && info.CgroupVersion != "2") || info.CgroupDriver != "cgroupfs" ||
		info.Swarm.LocalNodeState != "inactive" || !info.LiveRestoreEnabled {
		t.Errorf("info: %+v", info)
	}
	if info.Driver != "overlay" && info.Driver != "native" {
		t.Errorf("storage driver %q", info.Driver)
	}
	var release []byte
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		release = append(release, byte(c))
	}
	if info.KernelVersion != string(release) {
		t.Errorf("kernel version %q, want %q", info.KernelVersion, release)
	}
	if len(info.RegistryConfig.InsecureRegistryCIDRs) == 0 || info.RegistryConfig.InsecureRegistryCIDRs[0] != "127.0.0.0/8" {
		t.Errorf("insecure registries: %v", info.RegistryConfig.InsecureRegistryCIDRs)
	}
	out := c.ok("info")
	if info.ServerVersion == "" {
		t.Errorf("info has no server version")
	}
	for _, want := range []string{"Server Version: " + info.ServerVersion, "Docker Root Dir: " + d.DataRoot, "Storage Driver: " + info.Driver} {
		if !strings.Contains(out, want) {
			t.Errorf("docker info lacks %q:\n%s", want, out)
		}
	}
	st, err := os.Stat(d.DataRoot)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o710 {
		t.Errorf("data root mode %v, want 0710", st.Mode().Perm())
	}
	if st, err := os.Stat(d.Socket); err != nil || st.Mode().Perm() != 0o660 || st.Mode().Type() != os.ModeSocket {
		t.Errorf("socket: %v, %v", st.Mode(), err)
	}
	for _, p := range []string{"metadata.db", "content/blobs/sha256", "snapshots", "tmp", "engine-id"} {
		if _, err := os.Stat(filepath.Join(d.DataRoot, p)); err != nil {
			t.Errorf("data root layout: %v", err)
		}
	}
	// Empty lists, so docker ps works before containers exist.
	if out := c.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("docker ps -a -q: %q", out)
	}
}

// TestSecondDaemonRefused starts a second berthd on the socket of a
// running one: it must refuse with a clear message, and the first must
// keep serving.
func TestSecondDaemonRefused(t *testing.T) {
	d := startDaemon(t)
	second := newDaemon(t)
	second.Args = []string{"-H", d.Host, "--data-root", second.DataRoot, "--exec-root", second.ExecRoot, "--config-file", ""}
	err := second.start(t)
	if err == nil {
		second.stop(t)
		t.Fatal("a second berthd started on a socket in use")
	}
	if !strings.Contains(second.log.String(), "another process is serving "+d.Host) {
		t.Errorf("second berthd's message: %s", second.log)
	}
	if ee, ok := second.err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 1 {
		t.Errorf("second berthd exit: %v", second.err)
	}
	second.notify.Close()
	d.cli(t).ok("version")
}

// TestStaleSocket starts berthd where a dead daemon left its socket file.
func TestStaleSocket(t *testing.T) {
	d := newDaemon(t)
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := listenUnixFile(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // leaves the file: nobody answers any more
	if _, err := os.Stat(d.Socket); err != nil {
		t.Fatalf("stale socket setup: %v", err)
	}
	if err := d.start(t); err != nil {
		t.Fatalf("start over a stale socket: %v\n%s", err, d.log)
	}
	t.Cleanup(func() { d.stop(t) })
	d.cli(t).ok("version")
}

// TestConfigFile checks that the file's settings apply, flags win, and an
// unknown key stops the daemon with a message naming it.
func TestConfigFile(t *testing.T) {
	d := newDaemon(t, "--storage-driver", "native")
	cfg := `{"registry-mirrors": ["127.0.0.1:1"], "storage-driver": "overlay", "insecure-registries": ["10.9.0.0/16"]}`
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.start(t); err != nil {
		t.Fatalf("start: %v\n%s", err, d.log)
	}
	t.Cleanup(func() { d.stop(t) })
	out := d.cli(t).ok("info", "--format", "{{.Driver}} {{json .RegistryConfig.Mirrors}} {{json .RegistryConfig.InsecureRegistryCIDRs}}")
	if want := `native ["127.0.0.1:1"] ["127.0.0.0/8","::1/128","10.9.0.0/16"]`; strings.TrimSpace(out) != want {
		t.Errorf("info: %q, want %q", out, want)
	}

	bad := newDaemon(t)
	if err := os.WriteFile(filepath.Join(bad.Dir, "daemon.json"), []byte(`{"debug-everything": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bad.start(t); err == nil {
		bad.stop(t)
		t.Fatal("berthd started with an unknown configuration key")
	}
	bad.notify.Close()
	if !strings.Contains(bad.log.String(), "unknown keys debug-everything") {
		t.Errorf("message: %s", bad.log)
	}
}

// TestReload changes the configuration file and sends SIGHUP: the new
// mirrors and log level show in /info and a daemon reload event is sent.
func TestReload(t *testing.T) {
	d := newDaemon(t)
	// The log level comes from the file here: a flag would win over it.
	d.Args = slices.DeleteFunc(d.Args, func(a string) bool { return a == "--log-level" || a == "debug" })
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte(`{"log-level": "debug"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.start(t); err != nil {
		t.Fatalf("start: %v\n%s", err, d.log)
	}
	t.Cleanup(func() { d.stop(t) })
	c := d.cli(t)
	if out := c.ok("info", "--format", "{{.Debug}}"); strings.TrimSpace(out) != "true" {
		t.Errorf("debug from the file: %q", out)
	}
	start := time.Now()
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte(`{"registry-mirrors": ["mirror.invalid:5000"], "log-level": "warn"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	d.waitNotify(t, "READY=1")
	out := c.ok("info", "--format", "{{json .RegistryConfig.Mirrors}} {{.Debug}}")
	if strings.TrimSpace(out) != `["mirror.invalid:5000"] false` {
		t.Errorf("after reload: %q", out)
	}
	ev := c.ok("events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=daemon", "--format", "{{.Type}} {{.Action}} {{index .Actor.Attributes \"log-level\"}}")
	if strings.TrimSpace(ev) != "daemon reload warn" {
		t.Errorf("reload events: %q", ev)
	}

	// A broken file is logged and changes nothing.
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte(`{"registry-mirrors": `), 0o644); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	d.waitNotify(t, "READY=1")
	if out := c.ok("info", "--format", "{{json .RegistryConfig.Mirrors}}"); strings.TrimSpace(out) != `["mirror.invalid:5000"]` {
		t.Errorf("after a bad reload: %q", out)
	}
}

// TestAPIErrors sends requests the CLI would not: unknown endpoints,
// versions out of range, malformed filters and bodies.
func TestAPIErrors(t *testing.T) {
	d := startDaemon(t)
	hc := d.httpClient()
	for _, tc := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"GET", "/v1.50/nope", "", 404, "page not found"},
		{"GET", "/v1.12/version", "", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"},
		{"GET", "/v1.99/version", "", 400, "client version 1.99 is too new. Maximum supported API version is 1.52"},
		{"GET", "/images/json?filters=%7Bnot-json", "", 400, "invalid filters"},
		{"GET", "/images/json?filters=%7B%22color%22%3A%5B%22red%22%5D%7D", "", 400, "invalid filter 'color'"},
		{"GET", "/images/nope:1/json", "", 404, "No such image: nope:1"},
		{"POST", "/auth", "{bad", 400, "invalid JSON in request body"},
		{"POST", "/images/create", "", 400, "fromImage or fromSrc is required"},
		{"POST", "/images/create?fromImage=bad%20name", "", 400, "invalid reference format"},
		{"POST", "/images/create?fromImage=busybox", "", 501, "pulling all tags"},
		{"POST", "/images/nope/tag", "", 400, "repo"},
		{"DELETE", "/images/nope:1", "", 404, "No such image: nope:1"},
		{"GET", "/events?since=yesterday", "", 400, "invalid since value"},
		{"POST", "/images/prune?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D", "", 400, "dangling=maybe"},
	} {
		req, err := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Message string }
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s %s: body %q is not Docker's error JSON: %v", tc.method, tc.path, b, err)
		}
		if resp.StatusCode != tc.status || !strings.Contains(e.Message, tc.message) {
			t.Errorf("%s %s: %d %q, want %d and %q", tc.method, tc.path, resp.StatusCode, e.Message, tc.status, tc.message)
		}
	}
	// HEAD /_ping carries the negotiation headers.
	resp, err := hc.Head("http://berth/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("API-Version") != "1.52" || resp.Header.Get("OSType") != "linux" ||
		resp.Header.Get("Docker-Experimental") != "false" || resp.Header.Get("Builder-Version") == "" {
		t.Errorf("HEAD /_ping: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestSocketActivation runs berthd as systemd does with berthd.socket:
// the listening socket is made by someone else and passed as descriptor 3
// with LISTEN_PID and LISTEN_FDS (-H fd://).
func TestSocketActivation(t *testing.T) {
	d := newDaemon(t)
	d.Args[1] = "fd://"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.Socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d.ExtraFiles = []*os.File{f}
	// The shell's PID is berthd's after exec, as LISTEN_PID must be.
	d.Wrap = []string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`}
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.start(t); err != nil {
		t.Fatalf("start: %v\n%s", err, d.log)
	}
	t.Cleanup(func() { d.stop(t) })
	if out := d.cli(t).ok("version", "--format", "{{.Server.APIVersion}}"); strings.TrimSpace(out) != "1.52" {
		t.Errorf("version through the passed socket: %q", out)
	}
}
