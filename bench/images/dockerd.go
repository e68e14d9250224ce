//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

const (
	dockerdBinary = "/usr/sbin/dockerd"     // Debian's docker.io (20.10)
	dockerCLI     = "/usr/local/bin/docker" // the CLI (28.x)
	dockerdStart  = 60 * time.Second        // how long dockerd may take to answer
	dockerdStop   = 30 * time.Second        // how long it may take to exit on SIGTERM
)

// dockerd is a reference Docker daemon of the bench's own: its data root,
// exec root, socket and config are under dir, it starts its own
// containerd, and it has no bridge and no iptables, forwarding or
// masquerading rules, so it leaves the host network alone.
type dockerd struct {
	dir, sock, dataRoot, execRoot, cliConfig string
	version                                  string
	cmd                                      *exec.Cmd
	done                                     chan struct{}
}

// startDockerd starts dockerd under dir and waits until `docker version`
// answers. On error whatever it started is stopped and removed.
func startDockerd(ctx context.Context, dir string) (d *dockerd, err error) {
	for _, p := range []string{dockerdBinary, dockerCLI} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("reference docker: %w", err)
		}
	}
	d = &dockerd{
		dir: dir, sock: filepath.Join(dir, "docker.sock"),
		dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"),
		cliConfig: filepath.Join(dir, "cli"), done: make(chan struct{}),
	}
	for _, p := range []string{filepath.Join(d.dataRoot, "overlay2"), d.execRoot, d.cliConfig} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, err
		}
	}
	// Docker's layer directories spread over block groups as berth's data
	// roots do (see spreadChildren).
	spreadChildren(filepath.Join(d.dataRoot, "overlay2"))
	// An empty daemon.json: the host's /etc/docker/daemon.json, if any,
	// must not change the reference.
	daemonJSON := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(daemonJSON, []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(dockerdBinary,
		"--config-file", daemonJSON,
		"--data-root", d.dataRoot, "--exec-root", d.execRoot,
		"-H", "unix://"+d.sock, "--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--storage-driver=overlay2",
		"--bridge=none", "--iptables=false", "--ip6tables=false",
		"--ip-forward=false", "--ip-masq=false",
	)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", dockerdBinary, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	defer func() {
		if err != nil {
			err = errors.Join(err, d.stop())
		}
	}()
	deadline := time.Now().Add(dockerdStart)
	for {
		out, verr := d.docker(ctx, "version", "--format", "{{.Server.Version}}")
		if verr == nil {
			d.version = strings.TrimSpace(string(out))
			return d, nil
		}
		select {
		case <-d.done:
			return d, fmt.Errorf("dockerd exited: %s", tailFile(filepath.Join(dir, "dockerd.log")))
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("dockerd not ready after %s: %v: %s", dockerdStart, verr, tailFile(filepath.Join(dir, "dockerd.log")))
		}
	}
}

// docker runs the docker CLI against d and returns its stdout.
func (d *dockerd) docker(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, dockerCLI, append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_CONFIG=" + d.cliConfig, "HOME=" + d.dir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// stop ends dockerd (SIGTERM, then SIGKILL after dockerdStop), kills its
// containerd if it outlived it, unmounts whatever is left mounted under
// d.dir and removes d.dir.
func (d *dockerd) stop() error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(dockerdStop):
			errs = append(errs, fmt.Errorf("dockerd did not exit %s after SIGTERM: killed", dockerdStop))
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	// dockerd stops the containerd it supervises; if it was killed, the
	// containerd's pid file names the one to stop.
	if raw, err := os.ReadFile(filepath.Join(d.execRoot, "containerd", "containerd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && pid > 1 {
			if unix.Kill(pid, 0) == nil && isContainerd(pid) {
				_ = unix.Kill(pid, unix.SIGKILL)
				errs = append(errs, fmt.Errorf("containerd %d outlived dockerd: killed", pid))
			}
		}
	}
	if err := unmountUnder(d.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isContainerd(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasSuffix(exe, "/containerd")
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.Mountpoint, err))
		}
	}
	return errors.Join(errs...)
}

func tailFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(bytes.TrimSpace(data))
}
