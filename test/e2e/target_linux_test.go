package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/testutil"
)

// The daemons the container scenarios run against.
const (
	targetBerth  = "berth"
	targetDocker = "docker"
)

// target selects the daemon of the container scenarios: berthd built from
// this tree, or Debian's dockerd (docker.io) started by each test, so that
// the same checks show where berth and Docker differ:
//
//	go test ./test/e2e -args -target=docker
//	E2E_TARGET=docker go test ./test/e2e
var target = flag.String("target", envOr("E2E_TARGET", targetBerth),
	`daemon the container scenarios run against: "berth" or "docker" (Debian's /usr/sbin/dockerd)`)

// berthOnly names the tests and subtests that check berthd itself and have
// no counterpart on the test's dockerd: the leak count of berthd's own
// descriptors, mounts, cgroups, shims and veths; a crash and restart of
// berthd on the same roots; and the default bridge, which the test's
// dockerd runs without (--bridge=none, so that it never touches the host's
// networking). With -target=docker they are left out of the run (the
// -test.skip filter) instead of skipping themselves.
const berthOnly = "^(TestRunRmLeaks|TestLiveRestore|TestRunDefaultBridge)$"

// selectTarget applies berthOnly for -target=docker, unless the caller set
// its own -test.skip. It runs in TestMain, after the flags are parsed.
func selectTarget() {
	if *target == targetDocker && flag.Lookup("test.skip").Value.String() == "" {
		flag.Set("test.skip", berthOnly)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// dockerdBin is Debian's Docker daemon, which starts its own containerd.
const dockerdBin = "/usr/sbin/dockerd"

// engine is the daemon a container scenario runs against, with the
// busybox image imported as busybox:latest. Its cleanup fails the test if
// the test left containers, then stops the daemon and checks what it
// left on the host.
type engine struct {
	name   string // targetBerth or targetDocker
	Host   string
	berth  *Daemon  // set when name is targetBerth
	docker *dockerd // set when name is targetDocker
}

// startEngine starts the daemon -target names, imports busybox and
// registers the check that the test removed every container it made.
func startEngine(t *testing.T) *engine {
	t.Helper()
	e := &engine{name: *target}
	switch *target {
	case targetBerth:
		e.berth = startDaemon(t)
		e.Host = e.berth.Host
	case targetDocker:
		e.docker = startDockerd(t)
		e.Host = e.docker.Host
	default:
		t.Fatalf("-target=%q: want %q or %q", *target, targetBerth, targetDocker)
	}
	c := e.cli(t)
	importBusybox(t, c)
	t.Cleanup(func() {
		// Runs before the daemon stops (cleanups run in reverse).
		ids := strings.Fields(c.run("", "ps", "-aq").Stdout)
		if len(ids) > 0 {
			t.Errorf("the test left containers %v", ids)
			c.run("", append([]string{"rm", "-f"}, ids...)...)
		}
	})
	return e
}

func (e *engine) cli(t *testing.T) *CLI {
	return &CLI{t: t, host: e.Host, env: dockerEnv(t)}
}

func (e *engine) isBerth() bool { return e.name == targetBerth }

// initPath is where the daemon's --init binary appears in a container.
func (e *engine) initPath() string {
	if e.isBerth() {
		return "/sbin/berth-init"
	}
	return "/sbin/docker-init"
}

// pick returns berth's (current Docker's) wording, or dockerd 20.10's
// where Debian's older daemon words a message differently.
func (e *engine) pick(current, docker2010 string) string {
	if e.isBerth() {
		return current
	}
	return docker2010
}

// hasMessage reports whether stderr contains want. Against dockerd 20.10
// the comparison ignores case: Docker lower-cased its error messages
// ("Container ... is not running", "Cannot kill container") after 20.10,
// and berth follows the current wording.
func (e *engine) hasMessage(stderr, want string) bool {
	if e.isBerth() {
		return strings.Contains(stderr, want)
	}
	return strings.Contains(strings.ToLower(stderr), strings.ToLower(want))
}

// busyboxTar is the busybox layer tarball, written once per test binary.
var busyboxTar struct {
	once sync.Once
	path string
	err  error
}

// importBusybox imports testutil.BusyboxLayerTar as busybox:latest with
// CMD ["sh"], the offline stand-in for Docker Hub's busybox.
func importBusybox(t *testing.T, c *CLI) {
	t.Helper()
	busyboxTar.once.Do(func() {
		var layer []byte
		layer, busyboxTar.err = testutil.BusyboxLayerTar()
		if busyboxTar.err != nil {
			return
		}
		dir, err := os.MkdirTemp("", "berth-e2e-busybox-")
		if err != nil {
			busyboxTar.err = err
			return
		}
		tempDirs = append(tempDirs, dir)
		busyboxTar.path = filepath.Join(dir, "busybox.tar")
		busyboxTar.err = os.WriteFile(busyboxTar.path, layer, 0o644)
	})
	if busyboxTar.err != nil {
		t.Fatalf("busybox layer: %v", busyboxTar.err)
	}
	c.ok("import", "--change", `CMD ["sh"]`, busyboxTar.path, "busybox:latest")
}

// dockerd is Debian's Docker daemon started by a test on roots of its own,
// without touching the host's networking (--iptables=false,
// --ip6tables=false, --bridge=none, no forwarding or masquerading).
type dockerd struct {
	Dir      string
	DataRoot string
	ExecRoot string
	Socket   string
	Host     string

	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
	err    error
}

// startDockerd starts a dockerd and waits until its API answers; cleanup
// stops it and its containerd, fails the test if either or a container
// shim outlives the stop, and removes its mounts and directories.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	if _, err := os.Stat(dockerdBin); err != nil {
		t.Fatalf("-target=docker needs Debian's docker.io: %v", err)
	}
	dir, err := os.MkdirTemp("", "e2e-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{Dir: dir, DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "exec"), Socket: filepath.Join(dir, "docker.sock")}
	d.Host = "unix://" + d.Socket
	t.Cleanup(func() { d.stop(t) })
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.log = &lockedBuffer{}
	d.cmd = exec.Command(dockerdBin, "--config-file", cfg, "--data-root", d.DataRoot, "--exec-root", d.ExecRoot,
		"-H", d.Host, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}, Timeout: time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("dockerd exited before it answered: %v\nlog:\n%s", d.err, d.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not answer within a minute\nlog:\n%s", d.log)
		}
	}
}

// containerdPid is the pid of the containerd this dockerd started, 0 if
// unknown.
func (d *dockerd) containerdPid() int {
	b, err := os.ReadFile(filepath.Join(d.ExecRoot, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stop sends dockerd SIGTERM, waits for it and its containerd to exit,
// then unmounts and removes everything under its directory.
func (d *dockerd) stop(t *testing.T) {
	t.Helper()
	defer os.RemoveAll(d.Dir)
	if d.cmd != nil && d.exited != nil {
		ctrd := d.containerdPid()
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(time.Minute):
			d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("dockerd did not exit within a minute of SIGTERM\nlog:\n%s", d.log)
		}
		if ctrd > 0 && !waitGone(ctrd, 30*time.Second) {
			t.Errorf("containerd %d outlived dockerd", ctrd)
			syscall.Kill(ctrd, syscall.SIGKILL)
		}
	}
	for _, p := range processes("containerd-shim-runc-v2", d.ExecRoot+"/") {
		t.Errorf("containerd shim %d outlived dockerd: %s", p.pid, p.cmdline)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	unmountAll(t, d.Dir)
}

// waitGone polls until process pid no longer exists (or is a zombie).
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// unmountAll detaches every mount under dir, deepest first.
func unmountAll(t *testing.T, dir string) {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Errorf("read mounts: %v", err)
		return
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount %s: %v", mounts[i].Mountpoint, err)
		}
	}
}
