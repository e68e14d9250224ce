package berthd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/dockerd"
	"github.com/berth-project/berth/bench/internal/host"
	"github.com/berth-project/berth/bench/internal/workdir"
	"github.com/berth-project/berth/internal/network/firewall"
)

const (
	startTimeout = 60 * time.Second // how long berthd may take to answer
	stopTimeout  = 30 * time.Second // how long it may take to exit on SIGTERM
)

// Daemon is the berthd under test: data root, exec root, socket and
// config under Dir, a default bridge of its own name (and so an nftables
// table of its own, "berth-<bridge>").
type Daemon struct {
	Dir, Socket, DataRoot, ExecRoot, Bridge string
	Version                                 string // berthd --version
	cli                                     dockerd.CLI
	cmd                                     *exec.Cmd
	done                                    chan struct{}
}

// Start starts binDir/berthd under dir with the default bridge bridge and
// log level logLevel, and waits until it answers /_ping. berthd finds
// berth-shim, berth-runtime and berth-init beside itself. On error
// whatever it started is stopped and removed.
func Start(ctx context.Context, dir, binDir, bridge, logLevel string) (b *Daemon, err error) {
	b = &Daemon{
		Dir: dir, Socket: filepath.Join(dir, "berth.sock"),
		DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "exec"),
		Bridge: bridge, done: make(chan struct{}),
	}
	b.cli = dockerd.CLI{Host: "unix://" + b.Socket, ConfigDir: filepath.Join(dir, "cli")}
	if err := os.MkdirAll(b.cli.ConfigDir, 0o700); err != nil {
		return nil, err
	}
	daemonJSON := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(daemonJSON, []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(b.LogPath())
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	bin := filepath.Join(binDir, "berthd")
	b.cmd = exec.Command(bin,
		"--config-file", daemonJSON,
		"--data-root", b.DataRoot, "--exec-root", b.ExecRoot,
		"-H", b.cli.Host, "--bridge", bridge, "--log-level", logLevel)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Stop())
		}
	}()
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		b.Version = strings.TrimSpace(string(out))
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", b.Socket)
		},
	}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for {
		perr := ping(ctx, client)
		if perr == nil {
			return b, nil
		}
		select {
		case <-b.done:
			return b, fmt.Errorf("berthd exited: %s", dockerd.TailFile(b.LogPath()))
		case <-ctx.Done():
			return b, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("berthd not ready after %s: %v: %s", startTimeout, perr, dockerd.TailFile(b.LogPath()))
		}
	}
}

// ping asks the daemon behind client for GET /_ping, for at most a second.
func ping(ctx context.Context, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// CLI returns the docker CLI pointed at b.
func (b *Daemon) CLI() dockerd.CLI { return b.cli }

// Pid returns berthd's process ID.
func (b *Daemon) Pid() int { return b.cmd.Process.Pid }

// LogPath is the file berthd logs to.
func (b *Daemon) LogPath() string { return filepath.Join(b.Dir, "berthd.log") }

// ShimOf says whether argv is one of this berthd's shims: berth-shim with
// a path under its exec root.
func (b *Daemon) ShimOf(argv []string) bool {
	return len(argv) > 0 && filepath.Base(argv[0]) == "berth-shim" && host.ArgsUnder(argv, b.ExecRoot)
}

// Stop ends berthd with SIGTERM (SIGKILL after a grace period), kills any
// of its shims still running (berthd keeps containers running across a
// restart, so the caller removes them first; a shim left is a leak and is
// reported) and the processes and cgroups of containers it could not
// remove, then removes what berthd leaves for its next start: the mounts
// under Dir (the netns directory among them), the default bridge, the
// nftables table and Dir itself. A nil b is a no-op.
func (b *Daemon) Stop() error {
	if b == nil {
		return nil
	}
	var errs []error
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(stopTimeout):
			errs = append(errs, fmt.Errorf("berthd did not exit %s after SIGTERM: killed", stopTimeout))
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	}
	if ps, err := host.Processes(); err == nil {
		for _, p := range ps {
			if b.ShimOf(p.Argv) {
				_ = unix.Kill(p.Pid, unix.SIGKILL)
				errs = append(errs, fmt.Errorf("berth-shim %d outlived its containers: killed", p.Pid))
			}
		}
	}
	// The cgroups of containers berthd could not remove (berthd names
	// them /berth/<id>), with whatever still runs in them.
	if ents, err := os.ReadDir(filepath.Join(b.DataRoot, "containers")); err == nil {
		for _, ent := range ents {
			killed, err := host.RemoveCgroup("/berth/" + ent.Name())
			if killed > 0 {
				errs = append(errs, fmt.Errorf("%d processes of container %.12s outlived berthd: killed", killed, ent.Name()))
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := workdir.UnmountUnder(b.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := host.DeleteLink(b.Bridge); err != nil {
		errs = append(errs, err)
	}
	fw, err := firewall.New("berth-" + b.Bridge)
	if err == nil {
		err = fw.Cleanup()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove berthd's nftables table: %w", err))
	}
	if err := os.RemoveAll(b.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
