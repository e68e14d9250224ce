package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pollTimeout bounds how long a test waits for a container to reach a
// state it polls for.
const pollTimeout = 30 * time.Second

// poll calls cond until it is true, failing the test with what after
// pollTimeout.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, pollTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inspect returns docker inspect --format format of ref, trimmed.
func (c *CLI) inspect(format, ref string) string {
	c.t.Helper()
	return strings.TrimSpace(c.ok("inspect", "--format", format, ref))
}

// id returns the full ID of container ref.
func (c *CLI) id(ref string) string {
	c.t.Helper()
	return c.inspect("{{.Id}}", ref)
}

// failWith runs docker, fails the test unless it exits with code and its
// stderr has msg (see engine.hasMessage), and returns stderr.
func (c *CLI) failWith(e *engine, code int, msg string, args ...string) string {
	c.t.Helper()
	stderr := c.fail(code, args...)
	if !e.hasMessage(stderr, msg) {
		c.t.Errorf("docker %s: stderr %q lacks %q", strings.Join(args, " "), stderr, msg)
	}
	return stderr
}

// hostCgroupFile reads file in the cgroup v1 controller's directory of
// the process pid (from /proc/<pid>/cgroup), as the host sees it.
func hostCgroupFile(t *testing.T, pid, controller, file string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && f[1] == controller {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, f[2], file))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
	}
	t.Fatalf("process %s has no %s cgroup:\n%s", pid, controller, b)
	return ""
}

// TestRunOptions runs containers with docker run's common options and
// checks them three ways: docker inspect, the container's own view from
// inside, and the host's cgroup files.
func TestRunOptions(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	before := time.Now().Add(-time.Second)
	c.ok("run", "-d", "--name", "opts", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000",
		"--memory", "64m", "--cpus", "1.5", "--pids-limit", "50", "--read-only",
		"--cap-drop", "NET_RAW", "--cap-drop", "chown", "--restart", "on-failure:3", "--label", "k=v",
		"busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "opts")

	t.Run("inspect", func(t *testing.T) {
		c := e.cli(t)
		got := c.inspect(`{{.Name}}|{{.State.Status}}|{{.State.Running}}|{{.State.Paused}}|{{.State.ExitCode}}|{{.State.FinishedAt}}|`+
			`{{json .Config.Env}}|{{json .Config.Cmd}}|{{json .Config.Entrypoint}}|{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.Labels}}|`+
			`{{.HostConfig.Memory}}|{{.HostConfig.NanoCpus}}|{{.HostConfig.PidsLimit}}|{{.HostConfig.ReadonlyRootfs}}|{{json .HostConfig.CapDrop}}|`+
			`{{json .HostConfig.RestartPolicy}}|{{json .Mounts}}|{{.Path}}|{{json .Args}}|{{.RestartCount}}|{{.Config.Image}}`, "opts")
		want := `/opts|running|true|false|0|0001-01-01T00:00:00Z|["FOO=bar"]|["sleep","1000"]|null|/tmp|1000:1000|{"k":"v"}|` +
			`67108864|1500000000|50|true|["CAP_CHOWN","CAP_NET_RAW"]|{"MaximumRetryCount":3,"Name":"on-failure"}|[]|sleep|["1000"]|0|busybox`
		if got != want {
			t.Errorf("inspect:\n got %s\nwant %s", got, want)
		}
		started, err := time.Parse(time.RFC3339Nano, c.inspect("{{.State.StartedAt}}", "opts"))
		if err != nil || started.Before(before) || started.After(time.Now().Add(time.Second)) {
			t.Errorf("StartedAt %v (%v), want about now", started, err)
		}
		if id := c.id("opts"); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Errorf("Id %q", id)
		}
		if pid, _ := strconv.Atoi(c.inspect("{{.State.Pid}}", "opts")); pid <= 0 {
			t.Errorf("State.Pid %d", pid)
		}
	})

	t.Run("inside", func(t *testing.T) {
		c := e.cli(t)
		if out := c.ok("exec", "opts", "sh", "-c", `id; pwd; echo "$FOO"`); out != "uid=1000(berth) gid=1000(berth) groups=1000(berth)\n/tmp\nbar\n" {
			t.Errorf("id, pwd and $FOO in the container: %q", out)
		}
		for _, f := range []string{"/x", "/tmp/x", "/etc/x"} {
			r := c.run("", "exec", "-u", "0", "opts", "touch", f)
			if r.ExitCode != 1 || !strings.Contains(r.Stderr, "Read-only file system") {
				t.Errorf("touch %s on a read-only rootfs: %s", f, r)
			}
		}
		// The container sees its own cgroup's limits.
		out := c.ok("exec", "opts", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max",
			"/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
		if out != "67108864\n50\n150000\n100000\n" {
			t.Errorf("cgroup limits inside: %q", out)
		}
		// A non-root user has no effective capabilities.
		if out := c.ok("exec", "opts", "grep", "CapEff", "/proc/self/status"); out != "CapEff:\t0000000000000000\n" {
			t.Errorf("CapEff of uid 1000: %q", out)
		}
	})

	t.Run("host cgroup", func(t *testing.T) {
		c := e.cli(t)
		pid := c.inspect("{{.State.Pid}}", "opts")
		for _, f := range []struct{ ctl, file, want string }{
			{"memory", "memory.limit_in_bytes", "67108864"},
			{"pids", "pids.max", "50"},
			{"cpu", "cpu.cfs_quota_us", "150000"},
		} {
			if got := hostCgroupFile(t, pid, f.ctl, f.file); got != f.want {
				t.Errorf("host %s/%s: %s, want %s", f.ctl, f.file, got, f.want)
			}
		}
	})

	t.Run("capabilities", func(t *testing.T) {
		c := e.cli(t)
		// Docker's default set (0xa80425fb) without CAP_CHOWN (0) and
		// CAP_NET_RAW (13).
		out := c.ok("run", "--rm", "--cap-drop", "NET_RAW", "--cap-drop", "CHOWN", "busybox", "grep", "^Cap[EPB]", "/proc/self/status")
		if want := "CapPrm:\t00000000a80405fa\nCapEff:\t00000000a80405fa\nCapBnd:\t00000000a80405fa\n"; out != want {
			t.Errorf("capabilities with --cap-drop NET_RAW,CHOWN:\n%s\nwant\n%s", out, want)
		}
		out = c.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "KILL", "busybox", "grep", "^CapEff", "/proc/self/status")
		if out != "CapEff:\t0000000000000020\n" {
			t.Errorf("CapEff with --cap-drop ALL --cap-add KILL: %q", out)
		}
	})

	t.Run("user and workdir", func(t *testing.T) {
		c := e.cli(t)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-u", "berth"}, "uid=1000(berth) gid=1000(berth) groups=1000(berth)\n/\n"},
			{[]string{"-u", "nobody:tty", "-w", "/var/new/dir"}, "uid=65534(nobody) gid=5(tty) groups=5(tty)\n/var/new/dir\n"},
			{[]string{"-u", "4242:4343"}, "uid=4242 gid=4343 groups=4343\n/\n"},
			{[]string{"--group-add", "tty"}, "uid=0(root) gid=0(root) groups=0(root),5(tty)\n/\n"},
		} {
			args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c", "id; pwd")
			if out := c.ok(args...); out != tc.want {
				t.Errorf("docker %s: %q, want %q", strings.Join(args, " "), out, tc.want)
			}
		}
	})

	t.Run("entrypoint and init", func(t *testing.T) {
		c := e.cli(t)
		if out := c.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"); out != "a b\n" {
			t.Errorf("--entrypoint echo: %q", out)
		}
		if out := c.ok("run", "--rm", "--entrypoint", "", "busybox", "echo", "c"); out != "c\n" {
			t.Errorf("--entrypoint '': %q", out)
		}
		out := c.ok("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline")
		if want := e.initPath() + "\x00--\x00cat\x00/proc/1/cmdline\x00"; out != want {
			t.Errorf("/proc/1/cmdline with --init: %q, want %q", out, want)
		}
		if out := c.ok("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$; cat /proc/$PPID/comm"); !strings.HasSuffix(out, "\n"+filepath.Base(e.initPath())+"\n") || strings.HasPrefix(out, "1\n") {
			t.Errorf("the command under --init is not pid 1, its parent the init: %q", out)
		}
		c.ok("create", "--name", "ep", "--entrypoint", "/bin/echo", "busybox", "x")
		defer c.ok("rm", "ep")
		if got := c.inspect("{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Path}} {{json .Args}} {{.State.Status}}", "ep"); got != `["/bin/echo"] ["x"] /bin/echo ["x"] created` {
			t.Errorf("inspect of a created container with an entrypoint: %s", got)
		}
	})

	t.Run("rm and exit codes", func(t *testing.T) {
		c := e.cli(t)
		r := c.run("", "run", "--rm", "--name", "gone", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
		if r.ExitCode != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
			t.Errorf("docker run --rm ... exit 3: %s", r)
		}
		poll(t, "the --rm container is removed", func() bool {
			return c.run("", "inspect", "gone").ExitCode != 0
		})
		if out := c.ok("ps", "-a", "--filter", "name=gone", "-q"); out != "" {
			t.Errorf("ps lists the --rm container: %q", out)
		}
		r = c.run("", "run", "--rm", "busybox", "nosuchcmd")
		if r.ExitCode != 127 || !strings.Contains(r.Stderr, `exec: "nosuchcmd": executable file not found in $PATH`) {
			t.Errorf("docker run busybox nosuchcmd: %s", r)
		}
		// Docker removes the container and its wait ends without an error.
		if strings.Contains(r.Stderr, "Error waiting for container") {
			t.Errorf("docker run --rm of a command that cannot start: the wait failed: %s", r.Stderr)
		}
		r = c.run("", "run", "--rm", "busybox", "/etc")
		if r.ExitCode != 126 {
			t.Errorf("docker run busybox /etc: %s", r)
		}
		if out := c.ok("ps", "-a", "--format", "{{.Names}}"); out != "opts\n" {
			t.Errorf("containers left by --rm runs: %q", out)
		}
	})

	t.Run("restart policy", func(t *testing.T) {
		c := e.cli(t)
		c.ok("run", "-d", "--name", "retry", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
		defer c.ok("rm", "-f", "retry")
		poll(t, "on-failure:2 gives up after two restarts", func() bool {
			return c.inspect("{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "retry") == "exited 2 1"
		})
		c.ok("run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "exit 0")
		defer c.ok("rm", "-f", "always")
		poll(t, "restart always restarts a container that exits 0", func() bool {
			n, _ := strconv.Atoi(c.inspect("{{.RestartCount}}", "always"))
			return n >= 2
		})
		c.ok("stop", "always")
		// Stopped by the user: no more restarts.
		rc := c.inspect("{{.RestartCount}}", "always")
		if st := c.inspect("{{.State.Status}}", "always"); st != "exited" {
			t.Errorf("restart always after docker stop: %s", st)
		}
		if again := c.inspect("{{.RestartCount}}", "always"); again != rc {
			t.Errorf("a stopped restart-always container restarted: count %s then %s", rc, again)
		}
	})

	t.Run("bind mounts", func(t *testing.T) {
		c := e.cli(t)
		dir := t.TempDir()
		c.ok("run", "-d", "--name", "mnt", "-v", dir+":/data:ro", "-v", dir+":/rw", "--tmpfs", "/scratch", "busybox", "sleep", "1000")
		defer c.ok("rm", "-f", "mnt")
		want := `[{"Type":"bind","Source":"` + dir + `","Destination":"/data","Mode":"ro","RW":false,"Propagation":"rprivate"},` +
			`{"Type":"bind","Source":"` + dir + `","Destination":"/rw","Mode":"","RW":true,"Propagation":"rprivate"}]`
		// The docker CLI sends -v binds in map order, so Mounts come in
		// no fixed order (with dockerd too): compare them sorted.
		if got := sortedMountsJSON(t, c.inspect("{{json .Mounts}}", "mnt")); got != want {
			t.Errorf("Mounts:\n got %s\nwant %s", got, want)
		}
		c.ok("exec", "mnt", "sh", "-c", "echo through > /rw/f && touch /scratch/t")
		if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "through\n" {
			t.Errorf("file written through the bind mount: %q (%v)", b, err)
		}
		if r := c.run("", "exec", "mnt", "touch", "/data/g"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Errorf("write to a read-only bind mount: %s", r)
		}
		if out := c.ok("exec", "mnt", "sh", "-c", "grep ' /scratch ' /proc/mounts | cut -d' ' -f3"); out != "tmpfs\n" {
			t.Errorf("--tmpfs /scratch: %q", out)
		}
	})
}

// TestRunDefaultBridge: a container on the default bridge has its address
// in inspect and on its eth0, and its short id as hostname.
func TestRunDefaultBridge(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("run", "-d", "--name", "net", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "net")
	ip := c.inspect("{{.NetworkSettings.IPAddress}}", "net")
	if ip == "" || ip != c.inspect("{{.NetworkSettings.Networks.bridge.IPAddress}}", "net") {
		t.Errorf("IPAddress %q on the default bridge", ip)
	}
	if out := c.ok("exec", "net", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, " "+ip+"/") {
		t.Errorf("eth0 in the container lacks %s: %q", ip, out)
	}
	if out := c.ok("exec", "net", "hostname"); strings.TrimSpace(out) != c.id("net")[:12] {
		t.Errorf("hostname %q, want the short id", out)
	}
}

// TestPsFormat checks docker ps with --format and filters: the fields
// and their wording that scripts parse.
func TestPsFormat(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	up := c.ok("run", "-d", "--name", "up", "--label", "role=web", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "up")
	defer c.ok("rm", "done")
	if r := c.run("", "run", "--name", "done", "--label", "role=job", "busybox", "sh", "-c", "exit 3"); r.ExitCode != 3 {
		t.Fatalf("docker run ... exit 3: %s", r)
	}
	c.ok("create", "--name", "new", "busybox", "echo", "hello world")
	defer c.ok("rm", "new")

	format := "{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Labels}}|{{.Ports}}|{{.Mounts}}"
	got := c.ok("ps", "--no-trunc", "--format", format)
	want := fmt.Sprintf("%s|up|busybox|\"sleep 1000\"|running|role=web||\n", strings.TrimSpace(up))
	if got != want {
		t.Errorf("ps:\n got %q\nwant %q", got, want)
	}
	rows := strings.Split(strings.TrimSpace(c.ok("ps", "-a", "--format", "{{.Names}}|{{.Command}}|{{.State}}|{{.Status}}")), "\n")
	// Newest first.
	if len(rows) != 3 {
		t.Fatalf("ps -a: %q", rows)
	}
	for i, re := range []string{
		`^new\|"echo 'hello world'"\|created\|Created$`,
		`^done\|"sh -c 'exit 3'"\|exited\|Exited \(3\) .* ago$`,
		`^up\|"sleep 1000"\|running\|Up .*$`,
	} {
		if !regexp.MustCompile(re).MatchString(rows[i]) {
			t.Errorf("ps -a row %d: %q, want %s", i, rows[i], re)
		}
	}
	for _, f := range []struct {
		filters []string
		want    string
	}{
		{[]string{"status=exited"}, "done\n"},
		{[]string{"status=created"}, "new\n"},
		{[]string{"label=role=web"}, "up\n"},
		{[]string{"label=role"}, "done\nup\n"},
		{[]string{"exited=3"}, "done\n"},
		{[]string{"name=^/do"}, "done\n"},
		{[]string{"ancestor=busybox", "status=running"}, "up\n"},
	} {
		args := []string{"ps", "-a", "--format", "{{.Names}}"}
		for _, fl := range f.filters {
			args = append(args, "--filter", fl)
		}
		if out := c.ok(args...); out != f.want {
			t.Errorf("docker %s: %q, want %q", strings.Join(args, " "), out, f.want)
		}
	}
	if out := c.ok("ps", "-a", "-q", "--no-trunc", "--filter", "id="+strings.TrimSpace(up)[:12]); out != up {
		t.Errorf("ps -q --filter id: %q", out)
	}
	if out := c.ok("ps", "-a", "-n", "1", "--format", "{{.Names}}"); out != "new\n" {
		t.Errorf("ps -n 1: %q", out)
	}
	var v struct {
		Names, State, Status, Image, Command, CreatedAt, RunningFor, Size, LocalVolumes, Networks string
	}
	if err := json.Unmarshal([]byte(c.ok("ps", "--format", "{{json .}}")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Names != "up" || v.State != "running" || v.LocalVolumes != "0" || !strings.HasSuffix(v.RunningFor, " ago") {
		t.Errorf("ps --format json: %+v", v)
	}
	if e.isBerth() && v.Networks != "bridge" {
		t.Errorf("ps Networks of a container on the default bridge: %q", v.Networks)
	}
}

// TestRunErrors checks docker run's refusals: exit code 125, Docker's
// message, and no container left behind.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("create", "--name", "taken", "busybox")
	defer c.ok("rm", "taken")
	id := c.id("taken")

	// No registry answers on 127.0.0.1:1: the pull fails at once, without
	// any traffic off the machine.
	stderr := c.failWith(e, 125, `Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused`, "run", "--rm", "127.0.0.1:1/nope/img:1", "true")
	if !strings.HasPrefix(stderr, "Unable to find image '127.0.0.1:1/nope/img:1' locally\n") {
		t.Errorf("docker run of a missing image: %q", stderr)
	}
	c.failWith(e, 1, "No such image: 127.0.0.1:1/nope/img:1", "create", "--pull", "never", "127.0.0.1:1/nope/img:1")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--name", "taken"}, `Conflict. The container name "/taken" is already in use by container "` + id +
			`". You have to remove (or rename) that container to be able to reuse that name.`},
		{[]string{"--name", "a b"}, "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{[]string{"--name", "-bad"}, "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{[]string{"--name", "x"}, "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{[]string{"--rm", "--restart", "always"}, "docker: conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--memory", "1k"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"--cpus", "100"}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{[]string{"-w", "relative"}, "the working directory 'relative' is invalid, it needs to be an absolute path"},
		{[]string{"-u", "nosuchuser"}, "unable to find user nosuchuser: no matching entries in passwd file"},
		{[]string{"-v", "/tmp:/x:zz"}, "invalid mode: zz"},
		{[]string{"--cap-add", "NOPE"}, "unknown capability: \"CAP_NOPE\""},
	} {
		if tc.args[0] == "--cpus" && numCPU() != 2 {
			continue
		}
		args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")
		if tc.args[0] == "--rm" {
			args = append([]string{"run"}, tc.args...)
			args = append(args, "busybox", "true")
		}
		c.failWith(e, 125, tc.msg, args...)
	}
	if out := c.ok("ps", "-a", "--format", "{{.Names}}"); out != "taken\n" {
		t.Errorf("refused runs left containers: %q", out)
	}
	// Not an error, a warning.
	if r := c.run("", "create", "--name", "hostports", "--network", "host", "-p", "80:80", "busybox", "true"); r.ExitCode != 0 ||
		!strings.Contains(r.Stderr, "WARNING: Published ports are discarded when using host network mode") {
		t.Errorf("create --network host -p: %s", r)
	}
	c.ok("rm", "hostports")
}

// numCPU is the number of CPUs docker run --cpus is checked against.
func numCPU() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if found {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return n
}

// sortedMountsJSON re-encodes inspect's Mounts JSON sorted by destination,
// keeping each mount's fields as inspect wrote them.
func sortedMountsJSON(t *testing.T, s string) string {
	t.Helper()
	var ms []json.RawMessage
	if err := json.Unmarshal([]byte(s), &ms); err != nil {
		t.Fatalf("inspect Mounts %q: %v", s, err)
	}
	dest := func(m json.RawMessage) string {
		var d struct{ Destination string }
		json.Unmarshal(m, &d)
		return d.Destination
	}
	sort.SliceStable(ms, func(i, j int) bool { return dest(ms[i]) < dest(ms[j]) })
	out, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestSharedIPC shares a shareable container's IPC namespace and
// /dev/shm (with its --shm-size); a private one, the default, refuses to
// be joined; nothing of the shared /dev/shm stays on the host.
func TestSharedIPC(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("run", "-d", "--name", "donor", "--ipc", "shareable", "--shm-size", "8m", "busybox", "sh", "-c", "echo shared > /dev/shm/x; exec sleep 300")
	c.ok("run", "-d", "--name", "loner", "busybox", "sleep", "300")
	defer c.ok("rm", "-f", "donor", "loner")
	donorNS := c.ok("exec", "donor", "readlink", "/proc/self/ns/ipc")
	out := c.ok("run", "--rm", "--ipc", "container:donor", "busybox", "sh", "-c",
		"until [ -e /dev/shm/x ]; do sleep 0.05; done; cat /dev/shm/x; readlink /proc/self/ns/ipc; df -k /dev/shm | tail -1")
	if lines := strings.Split(out, "\n"); len(lines) < 3 || lines[0] != "shared" || lines[1]+"\n" != donorNS || !strings.Contains(lines[2], " 8192 ") {
		t.Errorf("joiner's /dev/shm and IPC namespace (donor's %s):\n%s", strings.TrimSpace(donorNS), out)
	}
	if got := c.inspect("{{.HostConfig.IpcMode}}", "loner"); got != "private" {
		t.Errorf("default IpcMode = %q, want private", got)
	}
	// Docker's default cgroup namespace mode follows the host's cgroups.
	wantNS := "host"
	if st := (unix.Statfs_t{}); unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		wantNS = "private"
	}
	if got := c.inspect("{{.HostConfig.CgroupnsMode}}", "loner"); got != wantNS {
		t.Errorf("default CgroupnsMode = %q, want %s", got, wantNS)
	}
	c.failWith(e, 125, "non-shareable IPC (hint: use IpcMode:shareable for the donor container)", "run", "--rm", "--ipc", "container:loner", "busybox", "true")
	if e.isBerth() {
		id := c.id("donor")
		c.ok("rm", "-f", "donor")
		mounts, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(mounts), id) {
			t.Errorf("mounts of the removed donor %s remain:\n%s", id, mounts)
		}
	}
}
