//go:build linux

package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// noneLeft checks that the root holds no container and that id left
// nothing behind (CheckNoLeaks also runs at the end of the test).
func (r *rig) noneLeft(id string, paths ...string) {
	r.t.Helper()
	if ids := r.list(); len(ids) != 0 {
		r.t.Errorf("list after the failure = %v, want empty", ids)
	}
	if id == "" {
		return
	}
	r.fails([]string{"state", id}, "does not exist")
	if _, err := os.Stat(filepath.Join(r.root, id)); err == nil {
		r.t.Errorf("state directory %s left behind", filepath.Join(r.root, id))
	}
	if leaks, err := testutil.Leaks(id, paths...); len(leaks) > 0 || err != nil {
		r.t.Errorf("left behind: %v (%v)", leaks, err)
	}
}

// TestBadConfig: create fails on an invalid config.json with a message
// that names the problem, and leaves nothing behind.
func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		raw    func(dir string) // changes the bundle's files instead
		want   []string
		// createOnly: run is fine (it allocates its own terminal).
		createOnly bool
	}{
		{name: "malformedJSON", raw: func(dir string) {
			writeFile(t, filepath.Join(dir, "config.json"), `{"ociVersion": "1.0.2", "process": {`)
		}, want: []string{"config.json", "unexpected end of JSON input"}},
		{name: "wrongType", raw: func(dir string) {
			writeFile(t, filepath.Join(dir, "config.json"), `{"ociVersion": "1.0.2", "process": {"args": "sh"}}`)
		}, want: []string{"config.json", "cannot unmarshal"}},
		{name: "missingConfig", raw: func(dir string) {
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"config.json", "not found"}},
		{name: "missingRootfs", raw: func(dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "rootfs")); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"rootfs", "does not exist"}},
		{name: "rootfsIsFile", raw: func(dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "rootfs")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "rootfs"), "")
		}, want: []string{"rootfs", "not a directory"}},
		{name: "noOCIVersion", mutate: func(s *specs.Spec) { s.Version = "" }, want: []string{"ociVersion"}},
		{name: "badOCIVersion", mutate: func(s *specs.Spec) { s.Version = "2.0.0" }, want: []string{"ociVersion", "2.0.0"}},
		{name: "noProcess", mutate: func(s *specs.Spec) { s.Process = nil }, want: []string{"process"}},
		{name: "emptyArgs", mutate: func(s *specs.Spec) { s.Process.Args = nil }, want: []string{"process.args"}},
		{name: "relativeCwd", mutate: func(s *specs.Spec) { s.Process.Cwd = "tmp" }, want: []string{"cwd", `"tmp"`}},
		{name: "cwdUnderFile", mutate: func(s *specs.Spec) { s.Process.Cwd = "/etc/passwd/sub" }, want: []string{"/etc/passwd", "not a directory"}},
		{name: "badEnv", mutate: func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "NOEQUALS") }, want: []string{"NOEQUALS"}},
		{name: "unknownNamespace", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "foo"})
		}, want: []string{"namespace", `"foo"`}},
		{name: "duplicateNamespace", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, want: []string{"namespace", "pid", "twice"}},
		{name: "relativeNamespacePath", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNs(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "proc/1/ns/net"})
		}, want: []string{"proc/1/ns/net", "absolute"}},
		{name: "missingNamespacePath", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNs(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/nonexistent/ns/net"})
		}, want: []string{"/nonexistent/ns/net"}},
		{name: "networkPathNotNamespace", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNs(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/etc/hostname"})
		}, want: []string{"network namespace"}},
		{name: "unknownCapability", mutate: func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FOO")
		}, want: []string{"capability", "CAP_FOO"}},
		{name: "unknownRlimit", mutate: func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_FOO", Soft: 1, Hard: 1})
		}, want: []string{"rlimit", "RLIMIT_FOO"}},
		{name: "rlimitSoftAboveHard", mutate: func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, want: []string{"RLIMIT_NOFILE", "soft"}},
		{name: "hostSysctl", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} }, want: []string{"sysctl", "kernel.panic"}},
		{name: "netSysctlWithoutNetns", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNs(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, want: []string{"net.ipv4.ip_forward", "network namespace"}},
		{name: "hostnameWithoutUTS", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNs(s.Linux.Namespaces, specs.UTSNamespace)
			s.Hostname = "nope"
		}, want: []string{"hostname", "UTS namespace"}},
		{name: "noMountNamespace", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNs(s.Linux.Namespaces, specs.MountNamespace)
		}, want: []string{"mount namespace"}},
		{name: "relativeMountDestination", mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "mnt", Type: "tmpfs", Source: "tmpfs"})
		}, want: []string{"destination", `"mnt"`}},
		{name: "relativeHookPath", mutate: func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "bin/true"}}}
		}, want: []string{"createRuntime", "bin/true", "absolute"}},
		{name: "badDeviceType", mutate: func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/odd", Type: "x", Major: 1, Minor: 3})
		}, want: []string{"/dev/odd", `"x"`}},
		{name: "missingExecutable", mutate: func(s *specs.Spec) { s.Process.Args = []string{"no-such-program"} },
			want: []string{`"no-such-program"`, "executable file not found in $PATH"}},
		{name: "missingExecutablePath", mutate: func(s *specs.Spec) { s.Process.Args = []string{"/bin/no-such-program"} },
			want: []string{"/bin/no-such-program", "no such file or directory"}},
		{name: "executableIsDirectory", mutate: func(s *specs.Spec) { s.Process.Args = []string{"/etc"} },
			want: []string{"/etc"}},
		{name: "terminalWithoutConsoleSocket", mutate: func(s *specs.Spec) { s.Process.Terminal = true },
			want: []string{"tty", "console socket"}, createOnly: true},
		{name: "badMountOption", mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=lots"}})
		}, want: []string{"/mnt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			bundle := r.bundle([]string{"sh", "-c", "echo ran > /tmp/x"}, func(s *specs.Spec) {
				writable(s)
				if tc.mutate != nil {
					tc.mutate(s)
				}
			})
			if tc.raw != nil {
				tc.raw(bundle)
			}
			id := testutil.ContainerID(t)
			r.track(id, bundle)
			r.fails([]string{"create", "--bundle", bundle, id}, tc.want...)
			r.noneLeft(id, bundle)
			if _, err := os.Stat(filepath.Join(bundle, "rootfs/tmp/x")); err == nil {
				t.Error("the container process ran")
			}
			if tc.createOnly {
				return
			}
			// run fails the same way.
			r.fails([]string{"run", "--bundle", bundle, id}, tc.want...)
			r.noneLeft(id, bundle)
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func withoutNs(list []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range list {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

// TestMissingCwdIsCreated: like runc, a cwd that does not exist in the
// rootfs is created rather than refused.
func TestMissingCwdIsCreated(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"pwd"}, func(s *specs.Spec) { s.Process.Cwd = "/no/such/dir" })
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	if out := r.ok("run", "--bundle", bundle, id); out != "/no/such/dir\n" {
		t.Errorf("pwd printed %q, want /no/such/dir", out)
	}
}

func TestDuplicateID(t *testing.T) {
	r := newRig(t)
	id, bundle := r.create(sleeper, nil)
	st := r.state(id)
	other := r.bundle(sleeper, nil)
	r.fails([]string{"create", "--bundle", other, id}, id, "already exists")
	r.fails([]string{"run", "--bundle", other, id}, id, "already exists")
	got := r.state(id)
	if got.Status != "created" || got.Pid != st.Pid || got.Bundle != bundle || !pidAlive(st.Pid) {
		t.Errorf("the first container changed: %+v, was %+v", got, st)
	}
	if ids := r.list(); len(ids) != 1 || ids[0] != id {
		t.Errorf("list = %v, want [%s]", ids, id)
	}
	// The first container still works.
	r.ok("start", id)
	if got := r.state(id).Status; got != "running" {
		t.Errorf("status after start = %s, want running", got)
	}
}

func TestInvalidID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"../x", "invalid container id"},
		{"a/b", "invalid container id"},
		{"..", "invalid container id"},
		{".", "invalid container id"},
		{"sp ace", "invalid container id"},
		{"", "empty"},
	} {
		t.Run(strings.NewReplacer("/", "slash", ".", "dot", " ", "space").Replace(tc.id)+"_", func(t *testing.T) {
			r := newRig(t)
			bundle := r.bundle(sleeper, nil)
			testutil.CheckNoLeaks(t, testutil.ContainerID(t), bundle)
			r.fails([]string{"create", "--bundle", bundle, tc.id}, tc.want)
			r.fails([]string{"run", "--bundle", bundle, tc.id}, tc.want)
			for _, cmd := range []string{"state", "start", "delete", "kill", "pause", "resume", "ps", "events", "update"} {
				args := []string{cmd, tc.id}
				if cmd == "events" {
					args = []string{cmd, "--stats", tc.id}
				}
				r.fails(args, tc.want)
			}
			r.noneLeft("")
			entries, err := os.ReadDir(r.root)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), ".") {
					t.Errorf("state root holds %s", e.Name())
				}
			}
			// Nothing was made beside the root either ("../x").
			if _, err := os.Stat(filepath.Join(filepath.Dir(r.root), "x", "state.json")); err == nil {
				t.Errorf("a state directory was made outside the root")
			}
		})
	}
}

func TestBadCommandLine(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"frobnicate"}, []string{"unknown command", "frobnicate"}},
		{[]string{"list", "--bogus"}, []string{"flag provided but not defined", "-bogus"}},
		{[]string{"--bogus", "list"}, []string{"flag provided but not defined", "-bogus"}},
		{[]string{"create"}, []string{"container id"}},
		{[]string{"start"}, []string{"container id"}},
		{[]string{"state", "a", "b"}, []string{"container id"}},
		{[]string{"kill"}, []string{"container id"}},
		{[]string{"delete"}, []string{"container id"}},
		{[]string{"exec"}, []string{"container id"}},
		{[]string{"start", "no-such-container"}, []string{"no-such-container", "does not exist"}},
		{[]string{"kill", "no-such-container"}, []string{"no-such-container", "does not exist"}},
		{[]string{"pause", "no-such-container"}, []string{"does not exist"}},
		{[]string{"resume", "no-such-container"}, []string{"does not exist"}},
		{[]string{"exec", "no-such-container", "true"}, []string{"does not exist"}},
		{[]string{"create", "--bundle", "/nonexistent/bundle", "x"}, []string{"/nonexistent/bundle", "config.json"}},
		{[]string{"events", "--interval", "0s", "x"}, []string{"interval"}},
	} {
		r.fails(tc.args, tc.want...)
	}
	r.noneLeft("")
}

// TestBadRuntimeUse: commands that do not fit the container's state fail
// with a message saying so, and change nothing.
func TestBadRuntimeUse(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, nil)
	r.fails([]string{"start", id}, "running")
	r.fails([]string{"resume", id}, "not paused")
	r.fails([]string{"kill", id, "NOSUCHSIG"}, "signal", "NOSUCHSIG")
	r.fails([]string{"kill", id, "0"}, "signal")
	r.fails([]string{"kill", id, "99"}, "signal", "99")
	r.fails([]string{"exec", id}, "command")
	r.fails([]string{"exec", "--user", "nobody:x", id, "true"}, "--user")
	r.fails([]string{"exec", "--cwd", "relative", id, "true"}, "cwd")
	r.fails([]string{"exec", "--cwd", "/no/such/dir", id, "true"}, "chdir", "/no/such/dir")
	r.fails([]string{"exec", "-p", "/nonexistent/process.json", id}, "process")
	bad := filepath.Join(t.TempDir(), "process.json")
	writeFile(t, bad, "{")
	r.fails([]string{"exec", "-p", bad, id}, "process", bad)
	empty, err := json.Marshal(specs.Process{Cwd: "/"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bad, string(empty))
	r.fails([]string{"exec", "-p", bad, id}, "process.args")
	r.fails([]string{"exec", "--console-socket", filepath.Join(t.TempDir(), "sock"), id, "true"}, "console socket", "tty")
	r.fails([]string{"exec", "--tty", "--detach", id, "true"}, "tty", "console socket")
	if got := r.state(id); got.Status != "running" || got.Pid != st.Pid {
		t.Errorf("failed commands changed the container: %+v", got)
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "-f", "json", id)), &pids); err != nil || len(pids) != 1 {
		t.Errorf("failed execs left processes: %v (%v)", pids, err)
	}
}

// TestPidFileUnwritable: create fails when it cannot write the pid file,
// and removes the container it made.
func TestPidFileUnwritable(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle(sleeper, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	pidFile := filepath.Join(t.TempDir(), "missing-dir", "pid")
	r.fails([]string{"create", "--pid-file", pidFile, "--bundle", bundle, id}, "pid file", pidFile)
	r.noneLeft(id, bundle)
}

// TestConsoleSocketWithoutTerminal: a console socket for a container
// without a terminal is refused.
func TestConsoleSocketWithoutTerminal(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle(sleeper, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	sock, _ := consoleSocket(t, t.TempDir())
	r.fails([]string{"create", "--console-socket", sock, "--bundle", bundle, id}, "console socket")
	r.noneLeft(id, bundle)
	// A console socket nobody listens on fails create, naming it.
	tbundle := r.bundle(sleeper, func(s *specs.Spec) { s.Process.Terminal = true })
	missing := filepath.Join(t.TempDir(), "missing.sock")
	r.fails([]string{"create", "--console-socket", missing, "--bundle", tbundle, id}, missing)
	r.noneLeft(id, bundle, tbundle)
}
