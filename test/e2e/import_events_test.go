package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
)

// TestImport makes an image of a rootfs tarball with docker import and
// checks its config, history and the import event.
func TestImport(t *testing.T) {
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(tarball, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	c := d.cli(t)
	start := time.Now()
	id := strings.TrimSpace(c.ok("import", "--change", `CMD ["/bin/sh"]`, "--change", "ENV A=b", "-m", "from a test", tarball, "imported:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	out := c.ok("image", "inspect", "--format", "{{.Id}} {{json .Config.Cmd}} {{json .Config.Env}} {{json .RepoTags}}", "imported:1")
	if want := id + ` ["/bin/sh"] ["A=b"] ["imported:1"]`; strings.TrimSpace(out) != want {
		t.Errorf("inspect: %q, want %q", out, want)
	}
	if out := c.ok("history", "--format", "{{.Comment}}", "imported:1"); strings.TrimSpace(out) != "from a test" {
		t.Errorf("history comment: %q", out)
	}
	ev := c.ok("events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano), "--format", "{{.Action}} {{.Actor.ID}}")
	if !strings.Contains(ev, "import "+id) {
		t.Errorf("events: %q", ev)
	}
}

// TestEventsFollow runs docker events while images are tagged and
// removed and reads the events as they come. It asks for events since
// before the first tag, so the events published before docker events
// subscribed come from the daemon's history, in order, with those after.
func TestEventsFollow(t *testing.T) {
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(tarball, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	c := d.cli(t)
	id := strings.TrimSpace(c.ok("import", tarball, "base:1"))
	start := time.Now()
	c.ok("tag", id, "follow:1")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, "-H", d.Host, "events", "--since", start.Format(time.RFC3339Nano),
		"--filter", "type=image", "--filter", "image=follow", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	cmd.Env = c.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("docker events ended")
			}
			return l
		case <-ctx.Done():
			t.Fatal("no event within a minute")
		}
		return ""
	}
	if l := next(); l != "tag follow:1" {
		t.Fatalf("first event %q", l)
	}
	c.ok("tag", id, "follow:2")
	c.ok("rmi", "follow:1")
	for _, want := range []string{"tag follow:2", "untag follow:1"} {
		if l := next(); l != want {
			t.Fatalf("event %q, want %q", l, want)
		}
	}
}
