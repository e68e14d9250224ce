//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/dockerd"
	"github.com/berth-project/berth/bench/internal/workdir"
	"github.com/berth-project/berth/internal/network/firewall"
)

const (
	berthdStart = 60 * time.Second // how long berthd may take to answer
	berthdStop  = 30 * time.Second // how long it may take to exit on SIGTERM
)

// berthd is the berthd under test: data root, exec root, socket and
// config under dir, a default bridge of its own name (and so an nftables
// table of its own, "berth-<bridge>").
type berthd struct {
	dir, socket, dataRoot, execRoot, bridge string
	version                                 string
	cli                                     dockerd.CLI
	api                                     *apiClient
	cmd                                     *exec.Cmd
	done                                    chan struct{}
}

// startBerthd starts binDir/berthd under dir and waits until it answers
// /_ping. berthd finds berth-shim, berth-runtime and berth-init beside
// itself. On error whatever it started is stopped and removed.
func startBerthd(ctx context.Context, dir, binDir, bridge, logLevel string) (b *berthd, err error) {
	b = &berthd{
		dir: dir, socket: filepath.Join(dir, "berth.sock"),
		dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"),
		bridge: bridge, done: make(chan struct{}),
	}
	b.cli = dockerd.CLI{Host: "unix://" + b.socket, ConfigDir: filepath.Join(dir, "cli")}
	b.api = newAPIClient(b.socket)
	if err := os.MkdirAll(b.cli.ConfigDir, 0o700); err != nil {
		return nil, err
	}
	daemonJSON := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(daemonJSON, []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(b.logPath())
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	bin := filepath.Join(binDir, "berthd")
	b.cmd = exec.Command(bin,
		"--config-file", daemonJSON,
		"--data-root", b.dataRoot, "--exec-root", b.execRoot,
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
			err = errors.Join(err, b.stop())
		}
	}()
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		b.version = strings.TrimSpace(string(out))
	}
	deadline := time.Now().Add(berthdStart)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		perr := b.api.ping(pctx)
		cancel()
		if perr == nil {
			return b, nil
		}
		select {
		case <-b.done:
			return b, fmt.Errorf("berthd exited: %s", dockerd.TailFile(b.logPath()))
		case <-ctx.Done():
			return b, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("berthd not ready after %s: %v: %s", berthdStart, perr, dockerd.TailFile(b.logPath()))
		}
	}
}

func (b *berthd) logPath() string { return filepath.Join(b.dir, "berthd.log") }

// shimOf says whether argv is one of this berthd's shims: berth-shim with
// a path under its exec root.
func (b *berthd) shimOf(argv []string) bool {
	return len(argv) > 0 && filepath.Base(argv[0]) == "berth-shim" && argsUnder(argv, b.execRoot)
}

// stop ends berthd with SIGTERM (SIGKILL after a grace period), kills any
// of its shims still running (berthd keeps containers running across a
// restart, so the caller removes them first; a shim left is a leak and is
// reported) and the processes and cgroups of containers it could not
// remove, then removes what berthd leaves for its next start: the mounts
// under dir (the netns directory among them), the default bridge, the
// nftables table and dir itself. A nil b is a no-op.
func (b *berthd) stop() error {
	if b == nil {
		return nil
	}
	var errs []error
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(berthdStop):
			errs = append(errs, fmt.Errorf("berthd did not exit %s after SIGTERM: killed", berthdStop))
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	}
	if ps, err := processes(); err == nil {
		for _, p := range ps {
			if b.shimOf(p.argv) {
				_ = unix.Kill(p.pid, unix.SIGKILL)
				errs = append(errs, fmt.Errorf("berth-shim %d outlived its containers: killed", p.pid))
			}
		}
	}
	// The cgroups of containers berthd could not remove (berthd names
	// them /berth/<id>), with whatever still runs in them.
	if ents, err := os.ReadDir(filepath.Join(b.dataRoot, "containers")); err == nil {
		for _, ent := range ents {
			killed, err := removeCgroup("/berth/" + ent.Name())
			if killed > 0 {
				errs = append(errs, fmt.Errorf("%d processes of container %.12s outlived berthd: killed", killed, ent.Name()))
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := workdir.UnmountUnder(b.dir); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLink(b.bridge); err != nil {
		errs = append(errs, err)
	}
	fw, err := firewall.New("berth-" + b.bridge)
	if err == nil {
		err = fw.Cleanup()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove berthd's nftables table: %w", err))
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deleteLink deletes the network interface name if it exists.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// argsUnder says whether one of argv's arguments is a path under dir (or
// names one after "=").
func argsUnder(argv []string, dir string) bool {
	for _, a := range argv[1:] {
		if _, v, ok := strings.Cut(a, "="); ok {
			a = v
		}
		if strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}
