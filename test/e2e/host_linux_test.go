package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/network/firewall"
)

// cleanupHost removes what a berthd keeps on the host for live restore
// once it has exited: the bind mount of its network namespace directory,
// its bridge and its nftables table. Each is gone already after a clean
// shutdown of a daemon that never ran a container; errors other than
// "not there" fail the test.
func (d *Daemon) cleanupHost(t *testing.T) {
	t.Helper()
	netns := filepath.Join(d.ExecRoot, "netns")
	if err := unix.Unmount(netns, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		t.Errorf("unmount %s: %v", netns, err)
	}
	if l, err := netlink.LinkByName(d.Bridge); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			t.Errorf("delete bridge %s: %v", d.Bridge, err)
		}
	}
	fw, err := firewall.New("berth-" + d.Bridge)
	if err == nil {
		err = fw.Cleanup()
	}
	if err != nil {
		t.Errorf("delete nftables table berth-%s: %v", d.Bridge, err)
	}
}

// proc is a process found in /proc.
type proc struct {
	pid     int
	cmdline string // arguments joined by spaces
}

// processes lists the processes whose program's base name is prog and
// whose command line contains every one of substrs.
func processes(prog string, substrs ...string) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
		if filepath.Base(args[0]) != prog {
			continue
		}
		line := strings.Join(args, " ")
		match := true
		for _, s := range substrs {
			match = match && strings.Contains(line, s)
		}
		if match {
			out = append(out, proc{pid: pid, cmdline: line})
		}
	}
	return out
}

// shims lists the berth-shim processes of the daemon's containers (their
// command line names its exec root).
func (d *Daemon) shims(t *testing.T) []proc {
	t.Helper()
	return processes("berth-shim", d.ExecRoot+"/")
}

// kill ends a leaked shim and its container: the runtime deletes the
// container by force (killing its processes), then the shim is killed.
func (p proc) kill(t *testing.T, d *Daemon) {
	t.Helper()
	f := strings.Fields(p.cmdline)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--id" {
			rt := filepath.Join(filepath.Dir(berthdBinary(t)), "berth-runtime")
			out, err := exec.Command(rt, "--root", filepath.Join(d.ExecRoot, "runtime"), "delete", "--force", f[i+1]).CombinedOutput()
			if err != nil {
				t.Logf("berth-runtime delete --force %s: %v: %s", f[i+1], err, out)
			}
		}
	}
	syscall.Kill(p.pid, syscall.SIGKILL)
}
