package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCLINetworksAndVolumes drives the network and volume groups with
// berth and compares the listings with docker's.
func TestCLINetworksAndVolumes(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()

	id := strings.TrimSpace(c.ok("network", "create", "--subnet", "10.123.0.0/24", "--gateway", "10.123.0.1", "--label", "team=a", "berthnet"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q", id)
	}
	c.same("network", "ls")
	c.same("network", "ls", "-q", "--no-trunc")
	c.same("network", "ls", "--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}")
	c.sameJSON("network", "ls", "--format", "json")
	c.same("network", "inspect", "berthnet")
	c.same("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "berthnet")
	if r := c.run("", "network", "create", "--subnet", "10.124.0.0/24", "--gateway", "10.125.0.1", "bad"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "no matching subnet for gateway") {
		t.Errorf("gateway outside the subnet: %s", r)
	}

	c.ok("volume", "create", "--label", "keep=yes", "data")
	c.ok("volume", "create", "scratch")
	c.same("volume", "ls")
	c.same("volume", "ls", "-q")
	c.same("volume", "ls", "--filter", "label=keep=yes", "--format", "{{.Name}} {{.Driver}} {{.Labels}}")
	c.sameJSON("volume", "ls", "--format", "json")
	c.same("volume", "inspect", "data", "scratch")
	c.same("volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Mountpoint}}", "data")

	// A container on the network with the volume: addresses and data.
	out := c.ok("run", "--rm", "--network", "berthnet", "--ip", "10.123.0.50", "-v", "data:/data", "busybox",
		"sh", "-c", "echo kept > /data/f; ip -4 -o addr show eth0")
	if !strings.Contains(out, "10.123.0.50/24") {
		t.Errorf("container address on berthnet: %q", out)
	}
	if out := c.ok("run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/f"); out != "kept\n" {
		t.Errorf("volume content: %q", out)
	}
	c.ok("run", "-d", "--name", "svc", "busybox", "sleep", "1000")
	c.ok("network", "connect", "--alias", "svc-alias", "berthnet", "svc")
	c.same("inspect", "--format", "{{json .NetworkSettings.Networks.berthnet.Aliases}}", "svc")
	c.ok("network", "disconnect", "berthnet", "svc")
	c.same("inspect", "--format", "{{len .NetworkSettings.Networks}}", "svc")
	c.ok("rm", "-f", "svc")

	if r := c.run("", "volume", "rm", "no-such-volume"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "no-such-volume") {
		t.Errorf("volume rm of a missing volume: %s", r)
	}
	if out := c.ok("volume", "rm", "scratch"); out != "scratch\n" {
		t.Errorf("volume rm: %q", out)
	}
	if out := c.ok("volume", "prune", "-a", "-f"); !strings.Contains(out, "Deleted Volumes:\ndata\n") {
		t.Errorf("volume prune -a: %q", out)
	}
	if out := c.ok("network", "rm", "berthnet"); out != "berthnet\n" {
		t.Errorf("network rm: %q", out)
	}
	c.ok("network", "create", "unused")
	if out := c.ok("network", "prune", "-f"); out != "Deleted Networks:\nunused\n" {
		t.Errorf("network prune: %q", out)
	}
	c.same("network", "ls", "--format", "{{.Name}}")
	// Prompting commands take "no" (or nothing) as no.
	c.ok("volume", "create", "kept")
	if r := c.run("n\n", "volume", "prune", "-a"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Are you sure you want to continue? [y/N]") {
		t.Errorf("volume prune prompt: %s", r)
	}
	c.same("volume", "ls", "-q")
}

// cutProxy forwards a unix socket to the daemon's and can cut every
// connection at once, as a daemon that goes away mid-stream.
type cutProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) (*cutProxy, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p, "unix://" + path
}

func (p *cutProxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestCLIDaemonGoneMidStream cuts the connection under berth logs -f,
// events and attach: each ends with an error and a non-zero status, no
// panic and no hang.
func TestCLIDaemonGoneMidStream(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()
	c.ok("run", "-d", "--name", "talker", "busybox", "sh", "-c", "while true; do echo tick; sleep 1; done")

	for _, args := range [][]string{
		{"logs", "-f", "talker"},
		{"events"},
		{"attach", "--no-stdin", "talker"},
		{"stats", "talker"},
	} {
		p, host := startCutProxy(t, d.Socket)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, c.bin, append([]string{"-H", host}, args...)...)
		cmd.Env = c.env
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Let the stream get going: output for logs and attach, a live
		// connection for events and stats.
		cliPoll(t, "berth "+args[0]+" to connect", func() bool {
			p.mu.Lock()
			n := len(p.conns)
			p.mu.Unlock()
			return n > 0 && (args[0] == "events" || args[0] == "stats" || strings.Contains(out.String(), "tick"))
		})
		p.cut()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Errorf("berth %v after the daemon went away: %v\n%s", args, err, out.String())
			}
			if !strings.Contains(out.String(), "the connection to berthd at "+host+" was lost") {
				t.Errorf("berth %v after the cut says:\n%s", args, out.String())
			}
			if strings.Contains(out.String(), "panic") {
				t.Errorf("berth %v panicked:\n%s", args, out.String())
			}
		case <-ctx.Done():
			t.Errorf("berth %v still runs after the daemon went away:\n%s", args, out.String())
		}
		cancel()
	}
	c.ok("rm", "-f", "talker")
}

// TestCLISystemPrune removes a stopped container, an unused network, an
// unused volume and the unused image in one report, and the build cache.
func TestCLISystemPrune(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	id := c.importBusybox()
	cid := strings.TrimSpace(c.ok("create", "-v", "/x", "busybox"))
	c.ok("network", "create", "lonely")
	c.ok("volume", "create", "orphan")
	if r := c.run("no\n", "system", "prune"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "WARNING! This will remove:") {
		t.Errorf("system prune, answered no: %s", r)
	}
	c.same("ps", "-aq")
	c.ok("rm", cid) // leaves its anonymous volume
	c.ok("create", "busybox")
	out := c.ok("system", "prune", "-a", "-f")
	for _, want := range []string{"Deleted Containers:\n", "Deleted Networks:\nlonely\n", "Deleted Images:\n", "deleted: " + id, "Total reclaimed space: "} {
		if !strings.Contains(out, want) {
			t.Errorf("system prune lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "Total reclaimed space") != 1 {
		t.Errorf("system prune prints more than one total:\n%s", out)
	}
	if n := len(strings.Fields(c.ok("volume", "ls", "-q"))); n != 2 {
		t.Errorf("volumes before --volumes: %d, want the anonymous one and orphan", n)
	}
	// Named volumes stay: --volumes prunes anonymous ones only.
	c.ok("system", "prune", "-f", "--volumes")
	c.same("volume", "ls", "-q")
	if out := c.ok("volume", "ls", "-q"); out != "orphan\n" {
		t.Errorf("volumes after system prune --volumes: %q", out)
	}
	c.same("images", "-q")
	c.same("network", "ls", "--format", "{{.Name}}")

	// The build cache goes too, even with the images kept.
	c.importBusybox()
	dir := buildContextDir(t)
	c.ok("build", "-t", "cached", dir)
	if out := c.ok("build", "-t", "cached", dir); !strings.Contains(out, " ---> Using cache\n") {
		t.Fatalf("the second build did not use the cache:\n%s", out)
	}
	c.ok("system", "prune", "-f")
	if out := c.ok("build", "-t", "cached", dir); strings.Contains(out, "Using cache") {
		t.Errorf("a build after system prune used the cache:\n%s", out)
	}
}
