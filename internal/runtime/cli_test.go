//go:build linux

package runtime_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// runcPath is runc, the reference for what the command line does.
const runcPath = "/usr/sbin/runc"

func TestList(t *testing.T) {
	r := newRig(t)
	// An empty root: a header only, an empty JSON list, no ids.
	if out := strings.TrimSpace(r.ok("list")); !strings.HasPrefix(out, "ID") || strings.Contains(out, "\n") {
		t.Errorf("list of an empty root = %q, want only a header", out)
	}
	if out := strings.TrimSpace(r.ok("list", "--format", "json")); out != "[]" && out != "null" {
		t.Errorf("list --format json of an empty root = %q, want an empty list", out)
	}
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list -q of an empty root = %v", ids)
	}

	a, bundleA, sa := r.running(sleeper, nil)
	b, bundleB := r.create(sleeper, nil)
	sb := r.state(b)

	table := strings.Split(strings.TrimSpace(r.ok("list")), "\n")
	if len(table) != 3 || strings.Join(strings.Fields(table[0]), " ") != "ID PID STATUS BUNDLE CREATED OWNER" {
		t.Fatalf("list table:\n%s", strings.Join(table, "\n"))
	}
	rows := map[string][]string{}
	for _, l := range table[1:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	for _, want := range [][]string{
		{a, strconv.Itoa(sa.Pid), "running", bundleA, sa.Created.Format(time.RFC3339Nano)},
		{b, strconv.Itoa(sb.Pid), "created", bundleB, sb.Created.Format(time.RFC3339Nano)},
	} {
		if got := rows[want[0]]; len(got) < 5 || !slices.Equal(got[:5], want) {
			t.Errorf("list row of %s = %v, want %v", want[0], got, want)
		}
	}

	var states []ociState
	if err := json.Unmarshal([]byte(r.ok("list", "-f", "json")), &states); err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 {
		t.Fatalf("list -f json has %d entries, want 2", len(states))
	}
	for _, st := range states {
		want := map[string]ociState{a: sa, b: sb}[st.ID]
		if st.Pid != want.Pid || st.Status != want.Status || st.Bundle != want.Bundle || !st.Created.Equal(want.Created) {
			t.Errorf("list -f json entry %+v, want %+v", st, want)
		}
	}

	ids := r.list()
	want := []string{a, b}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("list -q = %v, want %v", ids, want)
	}
	r.fails([]string{"list", "--format", "yaml"}, "yaml")
}

// TestRootIsolation: containers of one --root are invisible to another.
func TestRootIsolation(t *testing.T) {
	r := newRig(t)
	other := &rig{t: t, root: testutil.RootDir(t)}
	id, _, st := r.running(sleeper, nil)
	if ids := other.list(); len(ids) != 0 {
		t.Errorf("list of another root = %v, want empty", ids)
	}
	other.fails([]string{"state", id}, "does not exist")
	other.fails([]string{"kill", id, "KILL"}, "does not exist")
	other.ok("delete", "--force", id)
	if got := r.state(id); got.Status != "running" || got.Pid != st.Pid {
		t.Errorf("commands on another root changed the container: %+v", got)
	}
}

func TestPs(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, nil)
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "--format", "json", id)), &pids); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{st.Pid}) {
		t.Errorf("ps --format json = %v, want [%d]", pids, st.Pid)
	}
	out := strings.Split(strings.TrimSpace(r.ok("ps", id)), "\n")
	if len(out) != 2 || !slices.Contains(strings.Fields(out[0]), "PID") {
		t.Fatalf("ps table:\n%s", strings.Join(out, "\n"))
	}
	if f := strings.Fields(out[1]); !slices.Contains(f, strconv.Itoa(st.Pid)) || !strings.HasSuffix(out[1], "sleep 3600") {
		t.Errorf("ps row %q, want pid %d running sleep 3600", out[1], st.Pid)
	}
	// Arguments after the id go to ps(1).
	out = strings.Split(strings.TrimSpace(r.ok("ps", id, "-o", "pid,comm")), "\n")
	if len(out) != 2 || strings.Join(strings.Fields(out[1]), " ") != strconv.Itoa(st.Pid)+" sleep" {
		t.Errorf("ps -o pid,comm:\n%s", strings.Join(out, "\n"))
	}
	r.fails([]string{"ps", "--format", "yaml", id}, "yaml")
	r.fails([]string{"ps", "no-such-container"}, "does not exist")
}

// TestUpdate changes limits by flags and by a resources file and reads
// them back from the container's cgroup on the host.
func TestUpdate(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, nil)
	memFile, memDir := "memory.limit_in_bytes", cgroupDir(t, st.Pid, "memory")
	if isUnified() {
		memFile, memDir = "memory.max", cgroupDir(t, st.Pid, "")
	}
	pidsDir := cgroupDir(t, st.Pid, "pids")
	if isUnified() {
		pidsDir = memDir
	}
	r.ok("update", "--memory", "64m", "--pids-limit", "42", id)
	if got := readTrim(t, filepath.Join(memDir, memFile)); got != strconv.Itoa(64<<20) {
		t.Errorf("%s = %s, want %d", memFile, got, 64<<20)
	}
	if got := readTrim(t, filepath.Join(pidsDir, "pids.max")); got != "42" {
		t.Errorf("pids.max = %s, want 42", got)
	}

	res := filepath.Join(t.TempDir(), "resources.json")
	if err := os.WriteFile(res, []byte(`{"pids":{"limit":17}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r.ok("update", "-r", res, id)
	if got := readTrim(t, filepath.Join(pidsDir, "pids.max")); got != "17" {
		t.Errorf("pids.max after -r = %s, want 17", got)
	}
	if got := readTrim(t, filepath.Join(memDir, memFile)); got != strconv.Itoa(64<<20) {
		t.Errorf("%s changed by an update that does not set it: %s", memFile, got)
	}

	r.fails([]string{"update", "--memory", "lots", id}, "memory")
	if err := os.WriteFile(res, []byte(`{"pids":`), 0o644); err != nil {
		t.Fatal(err)
	}
	r.fails([]string{"update", "-r", res, id}, "resources")
	r.fails([]string{"update", "--pids-limit", "5", "no-such-container"}, "does not exist")

	r.ok("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	r.fails([]string{"update", "--pids-limit", "5", id}, "not running")
}

// TestEventsStatsOnce reads "events --stats" of a container with a known
// number of processes.
func TestEventsStatsOnce(t *testing.T) {
	r := newRig(t)
	id, _, _ := r.running([]string{"sh", "-c", "sleep 3600 & exec sleep 3600"}, nil)
	poll(t, "two processes", func() bool {
		var pids []int
		return json.Unmarshal([]byte(r.ok("ps", "-f", "json", id)), &pids) == nil && len(pids) == 2
	})
	out := r.ok("events", "--stats", id)
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Errorf("events --stats printed %d lines, want one", n+1)
	}
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			CPU struct {
				Usage struct {
					Total uint64 `json:"total"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v\n%s", err, out)
	}
	if ev.Type != "stats" || ev.ID != id {
		t.Errorf("events --stats type %q id %q, want stats and %s", ev.Type, ev.ID, id)
	}
	d := ev.Data
	if d.Pids.Current != 2 || d.CPU.Usage.Total == 0 || d.Memory.Usage.Usage == 0 || d.Memory.Usage.Limit == 0 {
		t.Errorf("stats = %+v, want 2 pids and some cpu and memory used", d)
	}
	r.fails([]string{"events", "--stats", "no-such-container"}, "does not exist")
}

func TestFeatures(t *testing.T) {
	r := newRig(t)
	out := r.ok("features")
	var f features.Features
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("features is not JSON: %v\n%s", err, out)
	}
	if f.OCIVersionMin == "" || !strings.HasPrefix(f.OCIVersionMax, "1.") {
		t.Errorf("ociVersionMin %q, ociVersionMax %q", f.OCIVersionMin, f.OCIVersionMax)
	}
	if !slices.Equal(f.Hooks, hookKinds) {
		t.Errorf("hooks = %v, want %v", f.Hooks, hookKinds)
	}
	if f.Linux == nil || f.Linux.Seccomp == nil || f.Linux.Cgroup == nil {
		t.Fatalf("features has no linux, seccomp or cgroup section:\n%s", out)
	}
	for _, ns := range []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"} {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("namespaces %v lack %s", f.Linux.Namespaces, ns)
		}
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_KILL"} {
		if !slices.Contains(f.Linux.Capabilities, c) {
			t.Errorf("capabilities lack %s", c)
		}
	}
	if f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled {
		t.Error("seccomp is not enabled")
	}
	for _, a := range []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_NOTIFY"} {
		if !slices.Contains(f.Linux.Seccomp.Actions, a) {
			t.Errorf("seccomp actions %v lack %s", f.Linux.Seccomp.Actions, a)
		}
	}
	for _, o := range []string{"bind", "rbind", "ro", "nosuid", "nodev", "noexec"} {
		if !slices.Contains(f.MountOptions, o) {
			t.Errorf("mount options lack %s", o)
		}
	}
	// Everything runc supports of these, berth-runtime supports too.
	if data, err := exec.Command(runcPath, "features").Output(); err == nil {
		var rf features.Features
		if err := json.Unmarshal(data, &rf); err != nil {
			t.Fatalf("runc features: %v", err)
		}
		for _, h := range rf.Hooks {
			if !slices.Contains(f.Hooks, h) {
				t.Errorf("runc supports hook %s, berth-runtime does not", h)
			}
		}
		if rf.Linux != nil {
			for _, ns := range rf.Linux.Namespaces {
				if !slices.Contains(f.Linux.Namespaces, ns) {
					t.Errorf("runc supports namespace %s, berth-runtime does not", ns)
				}
			}
			if rf.Linux.Seccomp != nil {
				for _, a := range rf.Linux.Seccomp.Actions {
					if !slices.Contains(f.Linux.Seccomp.Actions, a) {
						t.Errorf("runc supports seccomp action %s, berth-runtime does not", a)
					}
				}
			}
		}
	}
}

// readSpec decodes dir/config.json.
func readSpec(t *testing.T, dir string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	return &s
}

func nsTypes(s *specs.Spec) []string {
	var out []string
	for _, ns := range s.Linux.Namespaces {
		out = append(out, string(ns.Type))
	}
	slices.Sort(out)
	return out
}

// runcSpec runs "runc spec" with args in a new directory and returns the
// spec, or nil when runc is not installed.
func runcSpec(t *testing.T, args ...string) *specs.Spec {
	t.Helper()
	if _, err := os.Stat(runcPath); err != nil {
		return nil
	}
	dir := t.TempDir()
	cmd := exec.Command(runcPath, append([]string{"spec"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	return readSpec(t, dir)
}

func TestSpec(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	r.ok("spec", "--bundle", dir)
	s := readSpec(t, dir)
	if !strings.HasPrefix(s.Version, "1.") || s.Root == nil || s.Root.Path != "rootfs" || s.Process == nil ||
		!slices.Equal(s.Process.Args, []string{"sh"}) || !s.Process.Terminal || s.Process.Cwd != "/" {
		t.Errorf("spec: ociVersion %q root %+v process %+v, want runc's defaults", s.Version, s.Root, s.Process)
	}
	for _, ns := range []string{"ipc", "mount", "network", "pid", "uts"} {
		if !slices.Contains(nsTypes(s), ns) {
			t.Errorf("spec namespaces %v lack %s", nsTypes(s), ns)
		}
	}
	if rs := runcSpec(t); rs != nil {
		for _, ns := range nsTypes(rs) {
			if !slices.Contains(nsTypes(s), ns) {
				t.Errorf("runc's spec has a %s namespace, berth-runtime's does not", ns)
			}
		}
		for _, m := range rs.Mounts {
			if !slices.ContainsFunc(s.Mounts, func(o specs.Mount) bool { return o.Destination == m.Destination && o.Type == m.Type }) {
				t.Errorf("runc's spec mounts %s (%s), berth-runtime's does not", m.Destination, m.Type)
			}
		}
		for _, p := range rs.Linux.MaskedPaths {
			if !slices.Contains(s.Linux.MaskedPaths, p) {
				t.Errorf("runc's spec masks %s, berth-runtime's does not", p)
			}
		}
		if !slices.Equal(s.Process.Capabilities.Bounding, rs.Process.Capabilities.Bounding) {
			t.Errorf("bounding capabilities %v, runc's %v", s.Process.Capabilities.Bounding, rs.Process.Capabilities.Bounding)
		}
	}

	// It refuses to overwrite a config.json.
	before, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	r.fails([]string{"spec", "--bundle", dir}, "config.json", "exists")
	if after, err := os.ReadFile(filepath.Join(dir, "config.json")); err != nil || string(after) != string(before) {
		t.Errorf("a refused spec changed config.json (%v)", err)
	}
	r.fails([]string{"spec", "--bundle", dir, "extra"}, "no arguments")

	// The spec runs, once it has a rootfs and no terminal.
	if err := testutil.BusyboxRootfs(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", "echo from-spec"}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := testutil.ContainerID(t)
	r.track(id, dir)
	if out := r.ok("run", "--bundle", dir, id); out != "from-spec\n" {
		t.Errorf("run of the generated spec printed %q", out)
	}
}

func TestSpecRootless(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	r.ok("spec", "--rootless", "--bundle", dir)
	s := readSpec(t, dir)
	if !slices.Contains(nsTypes(s), "user") || slices.Contains(nsTypes(s), "network") {
		t.Errorf("rootless spec namespaces = %v, want user and no network", nsTypes(s))
	}
	uid := uint32(os.Geteuid())
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: uid, Size: 1}) ||
		len(s.Linux.GIDMappings) != 1 || s.Linux.GIDMappings[0].ContainerID != 0 || s.Linux.GIDMappings[0].Size != 1 {
		t.Errorf("rootless id mappings uid %+v gid %+v, want 0 -> %d, size 1", s.Linux.UIDMappings, s.Linux.GIDMappings, uid)
	}
	if rs := runcSpec(t, "--rootless"); rs != nil {
		if !slices.Equal(nsTypes(rs), slices.DeleteFunc(nsTypes(s), func(n string) bool { return n == "cgroup" })) {
			t.Errorf("rootless namespaces %v, runc's %v", nsTypes(s), nsTypes(rs))
		}
		for _, m := range rs.Mounts {
			if !slices.ContainsFunc(s.Mounts, func(o specs.Mount) bool {
				return o.Destination == m.Destination && o.Type == m.Type && slices.Equal(o.Options, m.Options)
			}) {
				t.Errorf("runc's rootless spec mounts %s %s %v, berth-runtime's does not", m.Destination, m.Type, m.Options)
			}
		}
		if rs.Linux.Resources == nil && s.Linux.Resources != nil && len(s.Linux.Resources.Devices) > 0 {
			t.Errorf("rootless spec has device rules, runc's has none")
		}
	}
}

func TestLogJSON(t *testing.T) {
	r := newRig(t)
	logPath := filepath.Join(t.TempDir(), "log.json")
	_, stderr, err := r.rt("--log", logPath, "--log-format", "json", "state", "no-such-container")
	if err == nil {
		t.Fatal("state of a missing container succeeded")
	}
	data, rerr := os.ReadFile(logPath)
	if rerr != nil {
		t.Fatalf("no log file: %v (stderr %q)", rerr, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	found := false
	for _, l := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Errorf("log line is not JSON: %q", l)
			continue
		}
		msg, _ := entry["msg"].(string)
		level, _ := entry["level"].(string)
		if strings.Contains(msg, "no-such-container") && strings.Contains(msg, "does not exist") && strings.EqualFold(level, "error") {
			found = true
		}
	}
	if !found {
		t.Errorf("log has no error entry naming the container:\n%s", data)
	}

	// The log is appended to, and text is the other format.
	textLog := filepath.Join(t.TempDir(), "log.txt")
	r.rt("--log", textLog, "--log-format", "text", "kill", "no-such-container")
	if data, err := os.ReadFile(textLog); err != nil || !strings.Contains(string(data), "does not exist") || strings.HasPrefix(string(data), "{") {
		t.Errorf("text log = %q (%v)", data, err)
	}
	r.fails([]string{"--log-format", "xml", "list"}, "xml")

	// --debug logs go to the log file, not to the container's stderr.
	bundle := r.bundle([]string{"sh", "-c", "echo out"}, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	debugLog := filepath.Join(t.TempDir(), "debug.json")
	stdout, stderr, err := r.rt("--debug", "--log", debugLog, "--log-format", "json", "run", "--bundle", bundle, id)
	if err != nil || stdout != "out\n" || stderr != "" {
		t.Errorf("run --debug: %v, stdout %q, stderr %q, want only the container's output", err, stdout, stderr)
	}
	data, err = os.ReadFile(debugLog)
	if err != nil {
		t.Fatal(err)
	}
	debug := 0
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Errorf("debug log line is not JSON: %q", l)
		} else if level, _ := entry["level"].(string); strings.EqualFold(level, "debug") && entry["msg"] != "" {
			debug++
		}
	}
	if debug == 0 {
		t.Errorf("--debug wrote no debug entry:\n%s", data)
	}
}

func TestVersionAndHelp(t *testing.T) {
	r := newRig(t)
	out := r.ok("--version")
	if !strings.Contains(out, "berth-runtime version") || !strings.Contains(out, "spec: 1.") {
		t.Errorf("--version printed %q", out)
	}
	help := r.ok("--help")
	for _, c := range []string{"create", "start", "state", "kill", "delete", "run", "exec", "ps", "pause", "resume", "update", "events", "features", "list", "spec"} {
		if !regexpMatch(`(?m)^\s+`+c+`\s`, help) {
			t.Errorf("--help does not list %s", c)
		}
	}
	if out := r.ok("create", "--help"); !strings.Contains(out, "-bundle") || !strings.Contains(out, "-console-socket") || !strings.Contains(out, "-pid-file") {
		t.Errorf("create --help printed %q", out)
	}
}

// consoleSocket listens on a unix socket for a pty master, as a
// --console-socket client does: it returns the socket path and a channel
// that receives the master (or nil if none came).
func consoleSocket(t *testing.T, dir string) (string, <-chan *os.File) {
	t.Helper()
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *os.File, 1)
	go func() {
		defer close(ch)
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 256)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return path, ch
}

// readPty reads a pty master until the slave side is closed by every
// process, and returns what was read without carriage returns.
func readPty(t *testing.T, masters <-chan *os.File) string {
	t.Helper()
	var master *os.File
	select {
	case master = <-masters:
	case <-time.After(pollTimeout):
	}
	if master == nil {
		t.Fatal("no pty master arrived on the console socket")
	}
	defer master.Close()
	done := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		done <- data
	}()
	select {
	case data := <-done:
		return strings.ReplaceAll(string(data), "\r", "")
	case <-time.After(pollTimeout):
		t.Fatal("the container's terminal output did not end")
	}
	return ""
}

// TestConsoleSocketRun: run --detach with a terminal hands the pty master
// to the console socket, and the container's output arrives on it.
func TestConsoleSocketRun(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"sh", "-c", "echo tty=$(tty); test -t 0 && echo stdin-is-tty"}, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	sock, masters := consoleSocket(t, t.TempDir())
	r.ok("run", "--detach", "--console-socket", sock, "--bundle", bundle, id)
	out := readPty(t, masters)
	if !strings.Contains(out, "tty=/dev/pts/0\n") || !strings.Contains(out, "stdin-is-tty\n") {
		t.Errorf("terminal output %q, want the container on /dev/pts/0", out)
	}
	r.waitStatus(id, "stopped")
}

// TestConsoleSocketExec: exec --tty --console-socket gives the exec'd
// process its own pty. (Not --detach: a detached process outlives the
// runtime and is reaped by the host's init, which may be slow to do it.)
func TestConsoleSocketExec(t *testing.T) {
	r := newRig(t)
	id, _, _ := r.running(sleeper, nil)
	sock, masters := consoleSocket(t, t.TempDir())
	r.ok("exec", "--tty", "--console-socket", sock, id, "sh", "-c", "echo exec-tty=$(tty)")
	if out := readPty(t, masters); !strings.Contains(out, "exec-tty=/dev/pts/") {
		t.Errorf("exec terminal output %q, want a /dev/pts tty", out)
	}
}

// TestExecTTY: exec --tty without a console socket relays the process's
// pty, again and again: an exec'd terminal must not leave anything in the
// container (such as a /dev/console bound to its dead pty).
func TestExecTTY(t *testing.T) {
	r := newRig(t)
	id, _, _ := r.running(sleeper, nil)
	for i := 0; i < 3; i++ {
		out := r.ok("exec", "--tty", id, "sh", "-c", "test -t 1 && echo tty-$0", strconv.Itoa(i))
		if want := "tty-" + strconv.Itoa(i) + "\r\n"; out != want {
			t.Errorf("exec --tty #%d printed %q, want %q", i, out, want)
		}
	}
	if out := r.ok("exec", id, "sh", "-c", "test -e /dev/console && echo console || echo none"); out != "none\n" {
		t.Errorf("after exec --tty, a container without a terminal has /dev/console: %q", out)
	}
}

func TestExec(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, func(s *specs.Spec) {
		s.Hostname = "exec-host"
		writable(s)
	})
	for _, tc := range []struct {
		name  string
		args  []string // between "exec" and the command
		cmd   []string
		want  string
		code  int
		match func(string) bool
	}{
		{name: "output", cmd: []string{"echo", "hello"}, want: "hello\n"},
		{name: "exitCode", cmd: []string{"sh", "-c", "exit 7"}, code: 7},
		{name: "signal", cmd: []string{"sh", "-c", "kill -KILL $$"}, code: 128 + int(unix.SIGKILL)},
		{name: "env", args: []string{"--env", "FOO=bar", "-e", "BAZ=qux"}, cmd: []string{"sh", "-c", "echo $FOO $BAZ"}, want: "bar qux\n"},
		{name: "cwd", args: []string{"--cwd", "/tmp"}, cmd: []string{"pwd"}, want: "/tmp\n"},
		{name: "user", args: []string{"--user", "1000:1000"}, cmd: []string{"id"}, want: "uid=1000(berth) gid=1000(berth)\n"},
		{name: "additionalGids", args: []string{"--user", "1000:1000", "--additional-gids", "5"}, cmd: []string{"id"},
			want: "uid=1000(berth) gid=1000(berth) groups=5(tty)\n"},
		{name: "hostname", cmd: []string{"hostname"}, want: "exec-host\n"},
		{name: "pidNamespace", cmd: []string{"cat", "/proc/1/cmdline"}, want: "sleep\x003600\x00"},
		{name: "ps", cmd: []string{"ps", "-o", "pid,args"}, match: func(out string) bool {
			return regexpMatch(`(?m)^\s*1\s+sleep 3600$`, out)
		}},
		{name: "ownPid", cmd: []string{"sh", "-c", "echo $$"}, match: func(out string) bool {
			n, err := strconv.Atoi(strings.TrimSpace(out))
			return err == nil && n > 1 && n < 100
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, tc.args...), id)
			stdout, stderr, err := r.rt(append(args, tc.cmd...)...)
			if got := exitStatus(err); got != tc.code {
				t.Fatalf("exec exit status = %d (%v), want %d; stderr %s", got, err, tc.code, stderr)
			}
			if tc.match != nil {
				if !tc.match(stdout) {
					t.Errorf("exec %v printed %q", tc.cmd, stdout)
				}
			} else if stdout != tc.want {
				t.Errorf("exec %v printed %q, want %q", tc.cmd, stdout, tc.want)
			}
		})
	}
	if got := r.state(id); got.Status != "running" || got.Pid != st.Pid {
		t.Errorf("state after execs = %+v, want running with pid %d", got, st.Pid)
	}
	r.fails([]string{"exec", id, "no-such-program"}, "no-such-program")
}

func TestExecProcessFile(t *testing.T) {
	r := newRig(t)
	id, _, _ := r.running(sleeper, nil)
	p := specs.Process{
		Args: []string{"sh", "-c", "echo $GREETING from $(pwd) as $(id -u); exit 5"},
		Env:  []string{"PATH=/bin", "GREETING=hi"},
		Cwd:  "/home/berth",
		User: specs.User{UID: 1000, GID: 1000},
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := r.rt("exec", "-p", path, id)
	if got := exitStatus(err); got != 5 {
		t.Errorf("exec -p exit status = %d (%v), want 5", got, err)
	}
	if stdout != "hi from /home/berth as 1000\n" {
		t.Errorf("exec -p printed %q", stdout)
	}
}

func TestExecDetach(t *testing.T) {
	r := newRig(t)
	// Registered first, so it runs after the delete --force of the
	// cleanup: that must take the exec'd process too.
	pid := 0
	t.Cleanup(func() {
		if pid > 0 && pidAlive(pid) {
			t.Errorf("exec process %d survived delete --force", pid)
		}
	})
	id, _, st := r.running(sleeper, nil)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "--detach", "--pid-file", pidFile, id, "sleep", "1234")
	pid, err := strconv.Atoi(readTrim(t, pidFile))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file: %v", err)
	}
	if !pidAlive(pid) {
		t.Fatalf("detached exec process %d is not alive", pid)
	}
	// exec --detach may return just before the process is executed.
	poll(t, "the pid file's process to be sleep 1234", func() bool {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatalf("pid file names %d: %v", pid, err)
		}
		return string(cmdline) == "sleep\x001234\x00"
	})
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		if !sameNamespace(t, pid, st.Pid, ns) {
			t.Errorf("exec process is not in the container's %s namespace", ns)
		}
	}
	if cgroupDir(t, pid, "pids") != cgroupDir(t, st.Pid, "pids") {
		t.Error("exec process is not in the container's cgroup")
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "-f", "json", id)), &pids); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, pid) || !slices.Contains(pids, st.Pid) {
		t.Errorf("ps = %v, want it to hold init %d and exec %d", pids, st.Pid, pid)
	}
}

func TestExecStopped(t *testing.T) {
	r := newRig(t)
	id, _ := r.create([]string{"true"}, nil)
	r.ok("start", id)
	r.waitStatus(id, "stopped")
	r.fails([]string{"exec", id, "true"}, "stopped")
}

// TestBundleFromCwd: without --bundle the bundle is the working directory;
// a relative --bundle is made absolute; relative pid files are written
// relative to the working directory.
func TestBundleFromCwd(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle(sleeper, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	r.runIn(bundle, "create", "--pid-file", "init.pid", id)
	st := r.state(id)
	if st.Bundle != bundle || st.Rootfs != filepath.Join(bundle, "rootfs") {
		t.Errorf("bundle %q rootfs %q, want %s and its rootfs", st.Bundle, st.Rootfs, bundle)
	}
	if got := readTrim(t, filepath.Join(bundle, "init.pid")); got != strconv.Itoa(st.Pid) {
		t.Errorf("relative pid file = %q, want %d", got, st.Pid)
	}

	id2 := testutil.ContainerID(t)
	r.track(id2, bundle)
	r.runIn(filepath.Dir(bundle), "create", "--bundle", filepath.Base(bundle), id2)
	if st := r.state(id2); st.Bundle != bundle {
		t.Errorf("bundle of a relative --bundle = %q, want %s", st.Bundle, bundle)
	}
}

// TestCreateFailureNoPidFile: a failed create writes no pid file.
func TestCreateFailureNoPidFile(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"no-such-program"}, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.fails([]string{"create", "--pid-file", pidFile, "--bundle", bundle, id}, "no-such-program")
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed create wrote a pid file: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(pidFile))
	if err != nil || len(entries) != 0 {
		t.Errorf("failed create left files beside the pid file: %v (%v)", entries, err)
	}
}

// TestEventsStream: events without --stats prints a stats line every
// interval and exits once the container stops.
func TestEventsStream(t *testing.T) {
	r := newRig(t)
	id, _, _ := r.running(sleeper, nil)
	out, err := os.Create(filepath.Join(t.TempDir(), "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(testutil.RuntimeBinary(t), "--root", r.root, "events", "--interval", "50ms", id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	var lines []string
	poll(t, "two stats events", func() bool {
		data, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= 2
	})
	for _, l := range lines[:2] {
		var ev struct{ Type, ID string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type != "stats" || ev.ID != id {
			t.Errorf("event %q (%v), want a stats event of %s", l, err, id)
		}
	}
	r.ok("kill", id, "KILL")
	if code := waitCmd(t, cmd); code != 0 {
		t.Errorf("events exited %d once the container stopped, want 0", code)
	}
}
