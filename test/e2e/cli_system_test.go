package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
)

// TestCLISystemAndStreams checks version, info and events against docker,
// and the stdin paths of run, start and cp.
func TestCLISystemAndStreams(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	start := time.Now()
	c.importBusybox()

	c.same("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}/{{.Server.Arch}}")
	if out := c.ok("version"); !strings.Contains(out, "Client: berth") || !strings.Contains(out, "Server: berth") || !strings.Contains(out, d.Host) {
		t.Errorf("version:\n%s", out)
	}
	c.same("info", "--format", "{{.ServerVersion}} {{.Driver}} {{.Images}} {{.Containers}} {{.DockerRootDir}} {{.CgroupVersion}}")
	c.sameJSON("info", "--format", "{{json .RegistryConfig}}")
	c.same("system", "info", "--format", "{{.OSType}} {{.NCPU}} {{.MemTotal}} {{json .Plugins}}")
	// The server half of info reads as docker's, line for line.
	server := func(s string) string {
		_, after, _ := strings.Cut(s, "\nServer:\n")
		var keep []string
		for _, l := range strings.Split(after, "\n") {
			switch strings.TrimSpace(strings.SplitN(l, ":", 2)[0]) {
			case "File Descriptors", "Goroutines", "System Time", "EventsListeners":
				l = strings.SplitN(l, ":", 2)[0] + ": (varies)"
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	if b, dk := server(c.ok("info")), server(c.docker.ok("info")); b != dk || !strings.Contains(b, "Docker Root Dir: "+d.DataRoot) {
		t.Errorf("info, server part:\nberth:\n%s\ndocker:\n%s", b, dk)
	}

	// run -i with a pipe, --cidfile, logs --tail, create then start -ai.
	if r := c.run("line one\nline two\n", "run", "-i", "--rm", "busybox", "sh", "-c", "wc -l; cat"); r.ExitCode != 0 || r.Stdout != "2\n" {
		t.Errorf("run -i: %s", r)
	}
	cid := filepath.Join(t.TempDir(), "cid")
	id := strings.TrimSpace(c.ok("run", "-d", "--cidfile", cid, "--name", "counter", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done; sleep 1000"))
	if b, err := os.ReadFile(cid); err != nil || string(b) != id {
		t.Errorf("cidfile: %q %v, want %q", b, err, id)
	}
	if r := c.run("", "run", "--cidfile", cid, "busybox", "true"); r.ExitCode != 125 || !strings.Contains(r.Stderr, "container ID file found") {
		t.Errorf("run with an existing cidfile: %s", r)
	}
	cliPoll(t, "the counter's output", func() bool { return strings.Contains(c.ok("logs", "counter"), "5\n") })
	c.same("logs", "--tail", "2", "counter")
	c.same("logs", "-n", "0", "counter")
	c.ok("create", "-i", "--name", "reader", "busybox", "sh", "-c", "read x; echo got $x; exit 2")
	if r := c.run("hello\n", "start", "-ai", "reader"); r.ExitCode != 2 || r.Stdout != "got hello\n" {
		t.Errorf("start -ai: %s", r)
	}

	// cp through tar streams on stdin and stdout.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "streamed.txt", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("piped\n"))
	tw.Close()
	if r := c.run(buf.String(), "cp", "-", "counter:/tmp"); r.ExitCode != 0 {
		t.Fatalf("cp - to a container: %s", r)
	}
	out := c.ok("cp", "counter:/tmp/streamed.txt", "-")
	tr := tar.NewReader(strings.NewReader(out))
	h, err := tr.Next()
	if err != nil || h.Name != "streamed.txt" {
		t.Fatalf("cp to - : %v %+v", err, h)
	}
	if b, _ := io.ReadAll(tr); string(b) != "piped\n" {
		t.Errorf("cp to - content: %q", b)
	}
	if r := c.run("", "cp", "counter:/no/such/file", t.TempDir()); r.ExitCode != 1 || !strings.Contains(r.Stderr, "/no/such/file") {
		t.Errorf("cp of a missing path: %s", r)
	}
	if r := c.run("", "cp", "a", "b"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "must specify at least one container source") {
		t.Errorf("cp without a container: %s", r)
	}
	// Shell completion asks the daemon for names.
	if out := c.ok("__complete", "rm", ""); !strings.Contains(out, "counter\nreader\n") {
		t.Errorf("completion of rm: %q", out)
	}
	if out := c.ok("__complete", "stop", ""); !strings.Contains(out, "counter\n") || strings.Contains(out, "reader") {
		t.Errorf("completion of stop (running containers only): %q", out)
	}
	if out := c.ok("__complete", "run", "bu"); !strings.HasPrefix(out, "busybox:latest\n") {
		t.Errorf("completion of run: %q", out)
	}
	if out := c.ok("__complete", "network", "rm", "br"); !strings.HasPrefix(out, "bridge\n") {
		t.Errorf("completion of network rm: %q", out)
	}
	c.ok("rm", "-f", "counter", "reader")

	// events: the same lines as docker's for the same window.
	until := time.Now().Format(time.RFC3339Nano)
	since := start.Format(time.RFC3339Nano)
	c.same("events", "--since", since, "--until", until)
	c.same("system", "events", "--since", since, "--until", until, "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	c.sameJSON("events", "--since", since, "--until", until, "--filter", "event=create", "--format", "json")
}

// TestCLIPullProgressOnTerminal pulls on a pty: berth draws docker's
// per-layer progress (cursor movement), ending with the reference.
func TestCLIPullProgressOnTerminal(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	ml, err := testutil.MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/multi:latest"
	if err := testutil.PushImage(ref, ml, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	c := d.berthCLI(t)
	tm := c.startTerm("pull", ref)
	tm.expect("Pull complete")
	tm.expect(ref)
	if code := tm.wait(); code != 0 {
		t.Fatalf("pull on a terminal: exit %d", code)
	}
	tm.mu.Lock()
	screen := tm.out.String()
	tm.mu.Unlock()
	if !strings.Contains(screen, "\x1b[") {
		t.Errorf("no terminal progress drawn:\n%q", screen)
	}
	layers, _ := ml.Layers()
	for _, l := range layers {
		dg, _ := l.Digest()
		if !strings.Contains(screen, dg.Hex[:12]+": ") {
			t.Errorf("no progress line for layer %s:\n%q", dg.Hex[:12], screen)
		}
	}
}

// TestCLIStatsFollows runs berth stats without names: a container started
// afterwards joins the table, one that stops leaves it.
func TestCLIStatsFollows(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()
	c.ok("run", "-d", "--name", "early", "busybox", "sleep", "1000")
	cmd := exec.Command(c.bin, "-H", c.host, "stats", "--format", "{{.Name}} {{.PIDs}}")
	cmd.Env = c.env
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	cliPoll(t, "early in the stats", func() bool { return strings.Contains(out.String(), "early 1\n") })
	c.ok("run", "-d", "--name", "late", "busybox", "sleep", "1000")
	cliPoll(t, "late to join the stats", func() bool { return strings.Contains(out.String(), "late 1\n") })
	c.ok("stop", "-t", "0", "early")
	// Each refresh prints a line per watched container: once early has
	// left, the last two lines are two refreshes of late alone.
	cliPoll(t, "early to leave the stats", func() bool {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return len(lines) >= 2 && lines[len(lines)-1] == "late 1" && lines[len(lines)-2] == "late 1"
	})
	if strings.Contains(out.String(), "Error") {
		t.Errorf("stats output:\n%s", out.String())
	}
	c.ok("rm", "-f", "early", "late")
}
