package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestParsePorts(t *testing.T) {
	exposed, bindings, err := parsePorts([]string{"8080:80", "127.0.0.1:5353:53/udp", "9000-9001:7000-7001", "[::1]:2222:22", "3000"}, []string{"6000-6001"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"80/tcp", "53/udp", "7000/tcp", "7001/tcp", "22/tcp", "3000/tcp", "6000/tcp", "6001/tcp"} {
		if _, ok := exposed[network.MustParsePort(p)]; !ok {
			t.Errorf("%s not exposed: %v", p, exposed)
		}
	}
	check := func(port, ip, host string) {
		t.Helper()
		b := bindings[network.MustParsePort(port)]
		if len(b) != 1 || b[0].HostPort != host || (ip != "" && b[0].HostIP != netip.MustParseAddr(ip)) || (ip == "" && b[0].HostIP.IsValid()) {
			t.Errorf("%s bound to %+v, want %s:%s", port, b, ip, host)
		}
	}
	check("80/tcp", "", "8080")
	check("53/udp", "127.0.0.1", "5353")
	check("7000/tcp", "", "9000")
	check("7001/tcp", "", "9001")
	check("22/tcp", "::1", "2222")
	check("3000/tcp", "", "")
	for _, bad := range []string{"x:80", "80:abc", "1.2.3:80:80", "9000-9002:7000-7001", "[::1:80:80"} {
		if _, _, err := parsePorts([]string{bad}, nil); err == nil {
			t.Errorf("-p %s: no error", bad)
		}
	}
	if _, _, err := parsePorts(nil, []string{"abc"}); err == nil {
		t.Errorf("--expose abc: no error")
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]container.DeviceMapping{
		"/dev/fuse":             {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
		"/dev/fuse:r":           {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "r"},
		"/dev/sda:/dev/xvda":    {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"},
		"/dev/sda:/dev/xvda:rw": {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rw"},
	} {
		got, err := parseDevice(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"/a:/b:rwx", "/a:/b:r:x"} {
		if _, err := parseDevice(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestContainerOptionsParse(t *testing.T) {
	o := NewContainerOptions()
	o.Image, o.Args = "busybox", []string{"echo", "hi"}
	mustSet := func(v interface{ Set(string) error }, vals ...string) {
		t.Helper()
		for _, s := range vals {
			if err := v.Set(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustSet(&o.Env, "A=1", "B=2")
	mustSet(&o.Volumes, "/host:/ctr:ro", "/anon")
	mustSet(&o.Tmpfs, "/run:size=1m")
	mustSet(&o.Labels, "x=y")
	mustSet(&o.Network, "mynet")
	mustSet(&o.Aliases, "web")
	mustSet(&o.Memory, "64m")
	mustSet(&o.CPUs, "1.5")
	mustSet(&o.DNS, "9.9.9.9")
	o.Interactive, o.TTY, o.AutoRemove, o.IPv4 = true, true, true, "10.1.2.3"
	o.EntrypointSet = true
	o.StopTimeout, o.StopTimeoutSet = 3, true
	cc, err := o.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cfg, hc := cc.Config, cc.HostConfig
	if strings.Join(cfg.Env, ",") != "A=1,B=2" || strings.Join(cfg.Cmd, " ") != "echo hi" || cfg.Image != "busybox" ||
		!cfg.AttachStdin || !cfg.AttachStdout || !cfg.AttachStderr || !cfg.OpenStdin || !cfg.Tty || cfg.Labels["x"] != "y" ||
		len(cfg.Entrypoint) != 1 || cfg.Entrypoint[0] != "" || cfg.StopTimeout == nil || *cfg.StopTimeout != 3 {
		t.Errorf("config: %+v", cfg)
	}
	if _, ok := cfg.Volumes["/anon"]; !ok || len(hc.Binds) != 1 || hc.Binds[0] != "/host:/ctr:ro" || hc.Tmpfs["/run"] != "size=1m" {
		t.Errorf("volumes: %v %v %v", cfg.Volumes, hc.Binds, hc.Tmpfs)
	}
	if hc.Memory != 64<<20 || hc.NanoCPUs != 1_500_000_000 || !hc.AutoRemove || hc.NetworkMode != "mynet" ||
		len(hc.DNS) != 1 || hc.DNS[0].String() != "9.9.9.9" || hc.MemorySwappiness != nil || hc.PidsLimit != nil || hc.Init != nil {
		t.Errorf("host config: %+v", hc)
	}
	ep := cc.Network.EndpointsConfig["mynet"]
	if ep == nil || len(ep.Aliases) != 1 || ep.Aliases[0] != "web" || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address.String() != "10.1.2.3" {
		t.Errorf("endpoint: %+v", ep)
	}

	// Defaults: no network flag is the "default" mode with no endpoint.
	d := NewContainerOptions()
	d.Image = "busybox"
	cc, err = d.Parse()
	if err != nil || cc.HostConfig.NetworkMode != "default" || len(cc.Network.EndpointsConfig) != 0 || cc.Config.AttachStdin || !cc.Config.AttachStdout {
		t.Errorf("defaults: %+v %+v %v", cc.HostConfig, cc.Network, err)
	}
}

func TestContainerOptionsErrors(t *testing.T) {
	for name, mutate := range map[string]func(o *ContainerOptions){
		"restart and rm":        func(o *ContainerOptions) { o.Restart, o.AutoRemove = "always", true },
		"bad restart":           func(o *ContainerOptions) { o.Restart = "on-failure:x" },
		"bad pull":              func(o *ContainerOptions) { o.Pull = "sometimes" },
		"bad ip":                func(o *ContainerOptions) { o.IPv4 = "1.2.3" },
		"bad mac":               func(o *ContainerOptions) { o.MacAddress = "zz" },
		"healthcheck conflict":  func(o *ContainerOptions) { o.NoHealthcheck, o.HealthCmd = true, "true" },
		"negative health retry": func(o *ContainerOptions) { o.HealthRetries = -1 },
		"missing env file":      func(o *ContainerOptions) { o.EnvFile.Set("/nonexistent/env") },
		"missing seccomp":       func(o *ContainerOptions) { o.SecurityOpt.Set("seccomp=/nonexistent.json") },
		"bad platform":          func(o *ContainerOptions) { o.Platform = "a/b/c/d" },
		"bad log opt":           func(o *ContainerOptions) { o.LogOpts.Set("novalue") },
	} {
		o := NewContainerOptions()
		o.Image = "busybox"
		mutate(o)
		if _, err := o.Parse(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := NewContainerOptions().Attach.Set("stdfoo"); err == nil {
		t.Errorf("-a stdfoo: no error")
	}
}

func TestSplitCpArg(t *testing.T) {
	for in, want := range map[string][2]string{
		"web:/etc/hosts": {"web", "/etc/hosts"}, "/tmp/a:b": {"", "/tmp/a:b"}, "./x:y": {"", "./x:y"},
		"file": {"", "file"}, "-": {"", "-"}, "web:": {"web", ""},
	} {
		c, p := splitCpArg(in)
		if c != want[0] || p != want[1] {
			t.Errorf("%s: %q %q", in, c, p)
		}
	}
}

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func TestExtractTar(t *testing.T) {
	dir := t.TempDir()
	archive := tarOf(t,
		&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "etc/hosts", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "etc/link", Typeflag: tar.TypeSymlink, Linkname: "hosts"},
	)
	n, err := extractTar(bytes.NewReader(archive), dir, "etc", "copy")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "copy", "hosts")); err != nil || string(b) != "content of etc/hosts" || n != int64(len(b)) {
		t.Errorf("extracted file: %q %v (%d bytes counted)", b, err, n)
	}
	if l, err := os.Readlink(filepath.Join(dir, "copy", "link")); err != nil || l != "hosts" {
		t.Errorf("symlink: %q %v", l, err)
	}

	// Hostile archives: a .. entry, and a file written through a symlink
	// that points out of the destination.
	outside := t.TempDir()
	for name, archive := range map[string][]byte{
		"dotdot": tarOf(t, &tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}),
		"symlink": tarOf(t,
			&tar.Header{Name: "out", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "out/escape", Typeflag: tar.TypeReg, Mode: 0o644}),
	} {
		dst := t.TempDir()
		if _, err := extractTar(bytes.NewReader(archive), dst, "", ""); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("an archive wrote outside its destination: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a .. entry escaped: %v", err)
	}
}

func TestWriteTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "e", "f"), []byte("hello"), 0o600)
	os.Symlink("e/f", filepath.Join(src, "d", "l"))
	var buf bytes.Buffer
	n, err := writeTar(&buf, filepath.Join(src, "d"), "renamed", false)
	if err != nil || n != 5 {
		t.Fatalf("writeTar: %d %v", n, err)
	}
	dst := t.TempDir()
	if _, err := extractTar(&buf, dst, "", ""); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "renamed", "e", "f")); err != nil || string(b) != "hello" {
		t.Errorf("round trip: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dst, "renamed", "e", "f")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "renamed", "l")); err != nil || l != "e/f" {
		t.Errorf("symlink: %q %v", l, err)
	}
}
