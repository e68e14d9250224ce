package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-project/berth/internal/testutil"
)

// dockerCLI is the docker client the tests drive.
const dockerCLI = "/usr/local/bin/docker"

// startTimeout bounds how long berthd may take to say it is ready, and
// stopTimeout how long it may take to exit after SIGTERM.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

var (
	buildOnce sync.Once
	berthdBin string
	buildErr  error
	binDir    string
)

// tempDirs are directories the tests share, removed by TestMain.
var tempDirs []string

func TestMain(m *testing.M) {
	flag.Parse()
	selectTarget()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	testutil.CleanupCache()
	os.Exit(code)
}

// berthdBinary returns $BERTH_BIN_DIR/berthd, or berthd built from
// ./cmd/berthd into a temporary directory once per test binary, with
// berth-shim, berth-runtime and berth-init beside it (berthd looks for
// them there).
func berthdBinary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, "berthd")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("BERTH_BIN_DIR: %v", err)
		}
		return p
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "berth-e2e-bin-")
		if buildErr != nil {
			return
		}
		berthdBin = filepath.Join(binDir, "berthd")
		for _, prog := range []string{"berthd", "berth-shim", "berth-runtime", "berth-init", "berth"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, prog), "github.com/berth-project/berth/cmd/"+prog)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
			if prog == "berth-init" {
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", prog, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return berthdBin
}

// Daemon is a berthd under test with its own data root, exec root and
// socket in a temporary directory.
type Daemon struct {
	Dir      string // the temporary directory holding everything
	DataRoot string
	ExecRoot string
	Socket   string
	Host     string // "unix://" + Socket
	Bridge   string // the default bridge network's Linux bridge
	Args     []string
	// Wrap, if set, is a command line that runs berthd (its path is
	// appended, then Args); ExtraFiles are passed from descriptor 3 on.
	Wrap       []string
	ExtraFiles []*os.File
	// SocketKept says the socket file belongs to someone else (socket
	// activation) and stays after berthd exits.
	SocketKept bool

	cmd    *exec.Cmd
	killed bool // the test killed berthd: its exit status is no failure
	log    *lockedBuffer
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
	notify *net.UnixConn
}

// lockedBuffer collects the daemon's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newDaemon prepares a Daemon in a new temporary directory without
// starting it.
func newDaemon(t *testing.T, args ...string) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "berthd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Dir:      dir,
		DataRoot: filepath.Join(dir, "data"),
		ExecRoot: filepath.Join(dir, "exec"),
		Socket:   filepath.Join(dir, "berth.sock"),
	}
	d.Host = "unix://" + d.Socket
	// Each daemon gets its own default bridge (and so its own nftables
	// table), so that test daemons never share networking.
	d.Bridge = "bt" + filepath.Base(dir)[len("berthd-"):]
	if len(d.Bridge) > 15 {
		d.Bridge = d.Bridge[:15]
	}
	// Registered first, this runs after stop: whatever a daemon that
	// failed to start or was killed left on the host goes too.
	t.Cleanup(func() {
		d.cleanupHost(t)
		os.RemoveAll(dir)
	})
	d.Args = append([]string{"-H", d.Host, "--data-root", d.DataRoot, "--exec-root", d.ExecRoot,
		"--config-file", filepath.Join(dir, "daemon.json"), "--log-level", "debug", "--bridge", d.Bridge}, args...)
	return d
}

// startDaemon starts a berthd and waits until it says it is ready; cleanup
// stops it with SIGTERM, checks that it exited 0 and left no mounts under
// its directory.
func startDaemon(t *testing.T, args ...string) *Daemon {
	t.Helper()
	d := newDaemon(t, args...)
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.start(t); err != nil {
		t.Fatalf("start berthd: %v\nlog:\n%s", err, d.log)
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

// start runs berthd and waits for READY=1 on a notify socket or for the
// process to exit (an error carrying its log).
func (d *Daemon) start(t *testing.T) error {
	t.Helper()
	notifyPath := filepath.Join(d.Dir, "notify.sock")
	os.Remove(notifyPath) // a killed predecessor's
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		return err
	}
	d.notify = nc
	d.log = &lockedBuffer{}
	argv := append(append(append([]string(nil), d.Wrap...), berthdBinary(t)), d.Args...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.ExtraFiles = d.ExtraFiles
	if err := d.cmd.Start(); err != nil {
		nc.Close()
		return err
	}
	d.exited = make(chan struct{})
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				ready <- err
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				ready <- nil
				return
			}
		}
	}()
	select {
	case err := <-ready:
		return err
	case <-d.exited:
		return fmt.Errorf("berthd exited before it was ready: %v", d.err)
	case <-time.After(startTimeout):
		d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("berthd not ready after %v", startTimeout)
	}
}

// waitNotify waits for the daemon to send state on its notify socket.
func (d *Daemon) waitNotify(t *testing.T, state string) {
	t.Helper()
	d.notify.SetReadDeadline(time.Now().Add(startTimeout))
	buf := make([]byte, 256)
	for {
		n, err := d.notify.Read(buf)
		if err != nil {
			t.Fatalf("wait for %s from berthd: %v\nlog:\n%s", state, err, d.log)
		}
		if strings.Contains(string(buf[:n]), state) {
			return
		}
	}
}

// signal sends sig to the daemon.
func (d *Daemon) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal berthd: %v", err)
	}
}

// kill kills berthd with SIGKILL, as a crash would, and waits for it to
// exit; its containers keep running under their shims.
func (d *Daemon) kill(t *testing.T) {
	t.Helper()
	d.killed = true
	d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("berthd did not exit within %v of SIGKILL", stopTimeout)
	}
	d.notify.Close()
}

// restart starts a new berthd on the directories and arguments of d,
// which has exited (kill or stop), and registers its stop as startDaemon
// does.
func (d *Daemon) restart(t *testing.T) *Daemon {
	t.Helper()
	n := &Daemon{Dir: d.Dir, DataRoot: d.DataRoot, ExecRoot: d.ExecRoot, Socket: d.Socket, Host: d.Host, Bridge: d.Bridge,
		Args: d.Args, Wrap: d.Wrap, ExtraFiles: d.ExtraFiles, SocketKept: d.SocketKept}
	if err := n.start(t); err != nil {
		t.Fatalf("restart berthd: %v\nlog:\n%s", err, n.log)
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop sends SIGTERM, waits for the exit and checks that it was clean: exit
// status 0 (unless the test killed it), no container's shim still running,
// and, once what a daemon keeps for live restore (its network namespace
// directory, bridge and firewall table) is removed, no mount left under
// the daemon's directory.
func (d *Daemon) stop(t *testing.T) {
	t.Helper()
	defer d.notify.Close()
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(stopTimeout):
			d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("berthd did not exit within %v of SIGTERM\nlog:\n%s", stopTimeout, d.log)
			return
		}
	}
	if d.err != nil && !d.killed {
		t.Errorf("berthd exited with %v\nlog:\n%s", d.err, d.log)
	}
	for _, p := range d.shims(t) {
		t.Errorf("container shim %d still runs after berthd exited (the test did not remove its container): %s", p.pid, p.cmdline)
		p.kill(t, d)
	}
	d.cleanupHost(t)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d.Dir))
	if err != nil {
		t.Errorf("read mounts: %v", err)
	}
	for _, m := range mounts {
		t.Errorf("berthd left a mount: %s (%s)", m.Mountpoint, m.FSType)
	}
	if len(mounts) > 0 {
		unmountAll(t, d.Dir) // reported; the host stays clean
	}
	if _, err := os.Stat(d.Socket); !d.SocketKept && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("berthd left its socket %s behind (stat: %v)", d.Socket, err)
	}
}

// result is what a docker command did.
type result struct {
	Stdout, Stderr string
	ExitCode       int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// dockerEnv is the environment of docker commands: a config directory of
// the test's own so no user configuration or credentials are read.
func dockerEnv(t *testing.T) []string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "docker-config")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DOCKER_") {
			env = append(env, e)
		}
	}
	return append(env, "DOCKER_CONFIG="+cfg, "DOCKER_CLI_HINTS=false")
}

// CLI runs the docker CLI against one daemon with one config directory.
type CLI struct {
	t    *testing.T
	host string
	env  []string
}

func (d *Daemon) cli(t *testing.T) *CLI {
	return &CLI{t: t, host: d.Host, env: dockerEnv(t)}
}

// run runs docker with args (and stdin, if any) and returns what it did.
func (c *CLI) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, append([]string{"-H", c.host}, args...)...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs docker and fails the test unless it exits 0; it returns stdout.
func (c *CLI) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.ExitCode != 0 {
		c.t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// fail runs docker, fails the test unless it exits with code, and returns
// its stderr.
func (c *CLI) fail(code int, args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.ExitCode != code {
		c.t.Fatalf("docker %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	return r.Stderr
}

// httpClient talks HTTP to the daemon's socket, for requests the CLI
// cannot make (malformed ones).
func (d *Daemon) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
		},
	}, Timeout: time.Minute}
}

// listenUnixFile listens on a unix socket at path whose file stays when
// the listener is closed, as a crashed daemon leaves it.
func listenUnixFile(path string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	return l, nil
}
