package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIContainerOutputMatchesDocker runs containers with berth and
// checks that berth and docker print the same things about them against
// the same daemon: ps columns and JSON, inspect JSON, port, diff, wait and
// exit codes.
func TestCLIContainerOutputMatchesDocker(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()

	// run: output, exit status, --rm, -d, and docker's classes of failure.
	if out := c.ok("run", "--rm", "busybox", "echo", "hello from berth"); out != "hello from berth\n" {
		t.Errorf("run --rm: %q", out)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "--name", "seven", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"}, 7},
		{[]string{"run", "--rm", "busybox", "no-such-command"}, 127},
		{[]string{"run", "--rm", "busybox", "/etc"}, 126},
		{[]string{"run", "--no-such-flag", "busybox"}, 125},
		{[]string{"run", "--pull", "never", "no-such-image-here"}, 125},
		{[]string{"rm", "no-such-container"}, 1},
		{[]string{"stop", "no-such-container"}, 1},
		{[]string{"inspect", "no-such-object"}, 1},
	} {
		b := c.run("", tc.args...)
		if b.ExitCode != tc.code {
			t.Errorf("berth %v: %s, want exit %d", tc.args, b, tc.code)
		}
		if tc.args[1] == "--name" {
			if b.Stdout != "out\n" || b.Stderr != "err\n" {
				t.Errorf("run streams: %s", b)
			}
			continue
		}
		dr := c.docker.run("", tc.args...)
		if dr.ExitCode != tc.code {
			t.Errorf("docker %v: %s, want exit %d", tc.args, dr, tc.code)
		}
		// The same message, with the program's name.
		if strings.ReplaceAll(dr.Stderr, "docker", "berth") != b.Stderr && !strings.Contains(tc.args[1], "flag") {
			t.Logf("stderr differs for %v:\nberth:  %q\ndocker: %q", tc.args, b.Stderr, dr.Stderr)
		}
		if tc.code == 127 && !strings.Contains(b.Stderr, "executable file not found") {
			t.Errorf("run of a missing command: %q", b.Stderr)
		}
	}

	id := strings.TrimSpace(c.ok("run", "-d", "--name", "web", "-p", "127.0.0.1:18080:80", "-p", "8443:443/udp",
		"-l", "tier=front", "-e", "GREETING=hi", "busybox", "sh", "-c", "echo ready; exec sleep 1000"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	c.ok("create", "--name", "idle", "busybox", "true")

	// ps: the same table (minus timing columns), the same JSON rows and ids.
	c.same("ps", "-a", "--format", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}\t{{.State}}\t{{.Labels}}")
	c.same("ps", "-q")
	c.same("ps", "-a", "-q", "--no-trunc")
	c.same("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
	c.same("ps", "--filter", "label=tier=front", "-q")
	c.same("ps", "-n", "2", "--format", "{{.Names}}")
	c.same("ps", "-l", "-q")
	c.same("ps", "-a", "--format", "{{.Names}} {{.Networks}} {{.Mounts}} {{.LocalVolumes}} {{.Label \"tier\"}}")
	head := strings.SplitN(c.ok("ps"), "\n", 2)[0]
	dhead := strings.SplitN(c.docker.ok("ps"), "\n", 2)[0]
	if strings.Fields(head)[0] != "CONTAINER" || strings.Join(strings.Fields(head), " ") != strings.Join(strings.Fields(dhead), " ") {
		t.Errorf("ps header: %q, docker %q", head, dhead)
	}
	var brow, drow map[string]any
	if err := json.Unmarshal([]byte(c.ok("ps", "--filter", "name=web", "--format", "json")), &brow); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(c.docker.ok("ps", "--filter", "name=web", "--format", "json")), &drow); err != nil {
		t.Fatal(err)
	}
	for k, v := range drow {
		if k == "RunningFor" || k == "Status" {
			continue // seconds tick between the two commands
		}
		if !jsonEqual(brow[k], v) {
			t.Errorf("ps json %s: berth %v, docker %v", k, brow[k], v)
		}
	}
	if len(brow) != len(drow) {
		t.Errorf("ps json keys: berth %v, docker %v", brow, drow)
	}

	// inspect: byte for byte the same JSON, and templates.
	c.same("inspect", "web")
	c.same("container", "inspect", "web", "idle")
	c.same("inspect", "--format", "{{.Name}} {{.State.Status}} {{.Config.Image}} {{index .Config.Labels \"tier\"}}", "web")
	c.same("inspect", "--format", "{{.Id}}", "web")
	c.same("inspect", "--format", "{{json .NetworkSettings.Ports}}", "web")
	c.same("inspect", "--type", "image", "busybox")
	c.same("port", "web")
	c.same("port", "web", "80")
	c.same("port", "web", "443/udp")
	if r := c.run("", "port", "web", "81"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "No public port '81/tcp' published for web") {
		t.Errorf("port of an unpublished port: %s", r)
	}

	// logs, exec, top, stats
	cliPoll(t, "the container's first line", func() bool { return c.ok("logs", "web") == "ready\n" })
	if out := c.ok("logs", "-t", "web"); !strings.Contains(out, "Z ready") {
		t.Errorf("logs -t: %q", out)
	}
	if out := c.ok("exec", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c", "echo $GREETING $X $(pwd)"); out != "hi 1 /tmp\n" {
		t.Errorf("exec: %q", out)
	}
	if r := c.run("", "exec", "web", "sh", "-c", "exit 5"); r.ExitCode != 5 {
		t.Errorf("exec exit code: %s", r)
	}
	if out := c.run("echo piped", "exec", "-i", "web", "cat"); out.Stdout != "echo piped" {
		t.Errorf("exec -i: %s", out)
	}
	c.ok("exec", "-d", "web", "sh", "-c", "echo detached > /tmp/marker")
	cliPoll(t, "the detached exec", func() bool { return c.run("", "exec", "web", "cat", "/tmp/marker").Stdout == "detached\n" })
	if out := c.ok("exec", "-u", "65534", "web", "id", "-u"); out != "65534\n" {
		t.Errorf("exec -u: %q", out)
	}
	if out := c.ok("top", "web"); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 1000") {
		t.Errorf("top: %q", out)
	}
	stats := c.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web")
	if strings.TrimSpace(stats) != "web 1" {
		t.Errorf("stats: %q", stats)
	}
	var srow map[string]string
	if err := json.Unmarshal([]byte(c.ok("stats", "--no-stream", "--format", "json", "web")), &srow); err != nil || srow["Name"] != "web" || !strings.HasSuffix(srow["CPUPerc"], "%") {
		t.Errorf("stats json: %v %v", srow, err)
	}

	// cp both ways and diff, then commit the change and run the image.
	src := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(src, []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("cp", src, "web:/tmp/")
	dst := t.TempDir()
	c.ok("cp", "web:/tmp/note.txt", filepath.Join(dst, "back.txt"))
	if b, err := os.ReadFile(filepath.Join(dst, "back.txt")); err != nil || string(b) != "from the host\n" {
		t.Errorf("cp round trip: %q %v", b, err)
	}
	c.ok("cp", "web:/etc", dst)
	if _, err := os.Stat(filepath.Join(dst, "etc", "passwd")); err != nil {
		t.Errorf("cp of a directory: %v", err)
	}
	c.same("diff", "web")
	if out := c.ok("diff", "web"); !strings.Contains(out, "A /tmp/note.txt") {
		t.Errorf("diff: %q", out)
	}
	img := strings.TrimSpace(c.ok("commit", "-m", "a note", "-c", "ENV NOTE=1", "web", "noted:1"))
	if !strings.HasPrefix(img, "sha256:") {
		t.Errorf("commit printed %q", img)
	}
	if out := c.ok("run", "--rm", "noted:1", "sh", "-c", "cat /tmp/note.txt; echo $NOTE"); out != "from the host\n1\n" {
		t.Errorf("run of the committed image: %q", out)
	}
	tarball := filepath.Join(t.TempDir(), "web.tar")
	c.ok("export", "-o", tarball, "web")
	if st, err := os.Stat(tarball); err != nil || st.Size() < 100_000 {
		t.Errorf("export: %v %v", st, err)
	}

	// lifecycle verbs print their argument, as docker's do.
	for _, verb := range [][]string{{"pause", "web"}, {"unpause", "web"}, {"restart", "-t", "1", "web"}, {"rename", "idle", "resting"}, {"update", "--memory", "64m", "--memory-swap", "128m", "web"}} {
		out := c.ok(verb...)
		if verb[0] != "rename" && out != verb[len(verb)-1]+"\n" {
			t.Errorf("%s printed %q", verb[0], out)
		}
	}
	c.same("inspect", "--format", "{{.HostConfig.Memory}} {{.Name}}", "web", "resting")
	// sleep is the container's init and ignores SIGTERM: kill's default
	// is SIGKILL, exit status 137.
	if out := c.ok("kill", "web"); out != "web\n" {
		t.Errorf("kill printed %q", out)
	}
	if out := c.ok("wait", "web"); out != "137\n" {
		t.Errorf("wait after kill: %q", out)
	}
	c.ok("start", "web")
	if out := c.ok("stop", "-t", "1", "web"); out != "web\n" {
		t.Errorf("stop: %q", out)
	}
	if r := c.run("", "start", "-a", "seven"); r.ExitCode != 7 || !strings.Contains(r.Stdout, "out") {
		t.Errorf("start -a: %s", r)
	}
	c.ok("rm", "-f", "web", "resting", "seven")
	c.same("ps", "-a", "-q")
	if out := c.ok("container", "prune", "-f"); !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("container prune: %q", out)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
