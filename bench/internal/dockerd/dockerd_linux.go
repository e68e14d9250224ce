package dockerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/workdir"
)

const (
	// Binary is the reference daemon: Debian's docker.io (20.10).
	Binary = "/usr/sbin/dockerd"
	// CLIBinary is the docker CLI (28.x) that drives every daemon.
	CLIBinary = "/usr/local/bin/docker"

	startTimeout = 60 * time.Second // how long dockerd may take to answer
	stopTimeout  = 30 * time.Second // how long it may take to exit on SIGTERM
)

// CLI is the docker command line pointed at one daemon, with a config
// directory of its own so that no user configuration is read. Every
// daemon of a bench is driven by the same binary with the same
// environment; only the host differs.
type CLI struct {
	Host      string // "unix:///path"
	ConfigDir string
}

// Command returns the docker command for args.
func (c CLI) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, CLIBinary, append([]string{"-H", c.Host}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_CONFIG=" + c.ConfigDir,
		"HOME=" + c.ConfigDir, "DOCKER_CLI_HINTS=false"}
	return cmd
}

// Run runs docker with args and returns its stdout; an error carries its
// stderr.
func (c CLI) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := c.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// Daemon is a reference dockerd of a bench's own: its data root, exec
// root, socket and config are under Dir and it starts its own containerd.
type Daemon struct {
	Dir, Socket, DataRoot, ExecRoot string
	Version                         string // the daemon's version
	cli                             CLI
	cmd                             *exec.Cmd
	done                            chan struct{}
}

// Start starts dockerd under dir with its common flags (an empty
// daemon.json, data root, exec root, socket and pid file under dir,
// overlay2) followed by args, and waits until `docker version` answers.
// The caller's args say how dockerd may touch the host network (--bridge,
// --iptables...). On error whatever it started is stopped and removed.
func Start(ctx context.Context, dir string, args ...string) (d *Daemon, err error) {
	for _, p := range []string{Binary, CLIBinary} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("reference docker: %w", err)
		}
	}
	d = &Daemon{
		Dir: dir, Socket: filepath.Join(dir, "docker.sock"),
		DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "exec"),
		done: make(chan struct{}),
	}
	d.cli = CLI{Host: "unix://" + d.Socket, ConfigDir: filepath.Join(dir, "cli")}
	for _, p := range []string{filepath.Join(d.DataRoot, "overlay2"), d.ExecRoot, d.cli.ConfigDir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, err
		}
	}
	// Docker's layer directories spread over block groups as the benches'
	// data roots do (see workdir.SpreadChildren).
	workdir.SpreadChildren(filepath.Join(d.DataRoot, "overlay2"))
	// An empty daemon.json: the host's /etc/docker/daemon.json, if any,
	// must not change the reference.
	daemonJSON := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(daemonJSON, []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(d.LogPath())
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	argv := append([]string{
		"--config-file", daemonJSON,
		"--data-root", d.DataRoot, "--exec-root", d.ExecRoot,
		"-H", d.cli.Host, "--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--storage-driver=overlay2",
	}, args...)
	d.cmd = exec.Command(Binary, argv...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", Binary, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Stop())
		}
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		out, verr := d.Docker(ctx, "version", "--format", "{{.Server.Version}}")
		if verr == nil {
			d.Version = strings.TrimSpace(string(out))
			return d, nil
		}
		select {
		case <-d.done:
			return d, fmt.Errorf("dockerd exited: %s", TailFile(d.LogPath()))
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("dockerd not ready after %s: %v: %s", startTimeout, verr, TailFile(d.LogPath()))
		}
	}
}

// CLI returns the docker CLI pointed at d.
func (d *Daemon) CLI() CLI { return d.cli }

// Docker runs the docker CLI against d and returns its stdout.
func (d *Daemon) Docker(ctx context.Context, args ...string) ([]byte, error) {
	return d.cli.Run(ctx, args...)
}

// LogPath is the file dockerd logs to.
func (d *Daemon) LogPath() string { return filepath.Join(d.Dir, "dockerd.log") }

// Pid returns dockerd's process ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// ContainerdPid returns the process ID of the containerd dockerd started,
// or 0 if there is none.
func (d *Daemon) ContainerdPid() int {
	raw, err := os.ReadFile(filepath.Join(d.ExecRoot, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 || unix.Kill(pid, 0) != nil || !isContainerd(pid) {
		return 0
	}
	return pid
}

// Stop ends dockerd (SIGTERM, then SIGKILL after a grace period), kills
// its containerd if it outlived it, unmounts whatever is left mounted
// under d.Dir and removes d.Dir. A nil d is a no-op.
func (d *Daemon) Stop() error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			errs = append(errs, fmt.Errorf("dockerd did not exit %s after SIGTERM: killed", stopTimeout))
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	// dockerd stops the containerd it supervises; if it was killed, the
	// containerd's pid file names the one to stop.
	if pid := d.ContainerdPid(); pid != 0 {
		_ = unix.Kill(pid, unix.SIGKILL)
		errs = append(errs, fmt.Errorf("containerd %d outlived dockerd: killed", pid))
	}
	if err := workdir.UnmountUnder(d.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isContainerd(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasSuffix(exe, "/containerd")
}

// TailFile returns the last 2000 bytes of a log file, or why it cannot.
func TailFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(bytes.TrimSpace(data))
}
