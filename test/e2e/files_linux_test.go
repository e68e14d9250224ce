package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tarNames lists the entry names of a tar stream.
func tarNames(t *testing.T, data string) []string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(data))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		names = append(names, h.Name)
	}
}

// TestContainerFiles checks docker cp both ways (files, directories, tar
// streams, a stopped container, errors), diff, commit and export.
func TestContainerFiles(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	dir := t.TempDir()
	c.ok("run", "-d", "--name", "files", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "files")

	t.Run("cp", func(t *testing.T) {
		c := e.cli(t)
		in := filepath.Join(dir, "in.txt")
		if err := os.WriteFile(in, []byte("from the host\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		c.ok("cp", in, "files:/tmp/")
		if out := c.ok("exec", "files", "stat", "-c", "%a %u %s %n", "/tmp/in.txt"); out != "640 0 14 /tmp/in.txt\n" {
			t.Errorf("copied file in the container: %q", out)
		}
		if err := os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "tree", "sub", "f"), []byte("deep"), 0o644)
		c.ok("cp", filepath.Join(dir, "tree"), "files:/srv")
		if out := c.ok("exec", "files", "cat", "/srv/sub/f"); out != "deep" {
			t.Errorf("copied directory: %q", out)
		}
		// Out of the container: a file, a directory, a tar stream.
		c.ok("exec", "files", "sh", "-c", "mkdir -p /data/d && echo inside > /data/d/x && ln -s x /data/d/link")
		out := filepath.Join(dir, "out")
		c.ok("cp", "files:/data/d", out)
		if b, err := os.ReadFile(filepath.Join(out, "x")); err != nil || string(b) != "inside\n" {
			t.Errorf("cp from the container: %q (%v)", b, err)
		}
		if l, err := os.Readlink(filepath.Join(out, "link")); err != nil || l != "x" {
			t.Errorf("symlink copied as %q (%v)", l, err)
		}
		r := c.run("", "cp", "files:/data/d", "-")
		if r.ExitCode != 0 {
			t.Fatalf("cp to stdout: %s", r)
		}
		names := tarNames(t, r.Stdout)
		slices.Sort(names)
		if want := []string{"d/", "d/link", "d/x"}; !slices.Equal(names, want) {
			t.Errorf("cp ... - entries %q, want %q", names, want)
		}
		// A tar stream into the container.
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "streamed", Mode: 0o600, Size: 3, Typeflag: tar.TypeReg})
		tw.Write([]byte("abc"))
		tw.Close()
		if r := c.run(buf.String(), "cp", "-", "files:/tmp"); r.ExitCode != 0 {
			t.Fatalf("cp - into the container: %s", r)
		}
		if out := c.ok("exec", "files", "cat", "/tmp/streamed"); out != "abc" {
			t.Errorf("streamed file: %q", out)
		}
		c.failWith(e, 1, "Could not find the file /nope in container files", "cp", "files:/nope", filepath.Join(dir, "nope"))
		c.failWith(e, 1, "No such container: nosuch", "cp", "nosuch:/etc", dir)
	})

	t.Run("cp stopped and read-only", func(t *testing.T) {
		c := e.cli(t)
		c.ok("create", "--name", "ro", "--read-only", "busybox", "cat", "/etc/added")
		defer c.ok("rm", "ro")
		in := filepath.Join(dir, "added")
		os.WriteFile(in, []byte("added\n"), 0o644)
		c.failWith(e, 1, "container rootfs is marked read-only", "cp", in, "ro:/etc/added")
		c.ok("create", "--name", "stopped", "busybox", "cat", "/etc/added")
		defer c.ok("rm", "stopped")
		c.ok("cp", in, "stopped:/etc/added")
		if out := c.ok("start", "-a", "stopped"); out != "added\n" {
			t.Errorf("file copied into a created container: %q", out)
		}
	})

	t.Run("diff commit export", func(t *testing.T) {
		c := e.cli(t)
		c.ok("run", "--name", "changed", "busybox", "sh", "-c", "mkdir /newdir && echo x > /etc/newfile && rm /bin/true")
		defer c.ok("rm", "changed")
		// Docker lists the changes in its walk's order, not sorted.
		changes := strings.Split(strings.TrimSpace(c.ok("diff", "changed")), "\n")
		slices.Sort(changes)
		if want := []string{"A /etc/newfile", "A /newdir", "C /bin", "C /etc", "D /bin/true"}; !slices.Equal(changes, want) {
			t.Errorf("docker diff: %q, want %q", changes, want)
		}
		id := strings.TrimSpace(c.ok("commit", "-c", "ENV X=1", "-c", `CMD ["sh", "-c", "cat /etc/newfile; echo $X"]`, "-m", "a message", "-a", "me", "changed", "committed:1"))
		if !strings.HasPrefix(id, "sha256:") {
			t.Errorf("docker commit printed %q", id)
		}
		defer c.ok("rmi", "committed:1")
		if out := c.ok("run", "--rm", "committed:1"); out != "x\n1\n" {
			t.Errorf("run of the committed image: %q", out)
		}
		if got := c.inspect("{{.Comment}}|{{.Author}}|{{json .Config.Env}}|{{len .RootFS.Layers}}", "committed:1"); got != `a message|me|["X=1"]|2` {
			t.Errorf("committed image: %s", got)
		}
		if r := c.run("", "run", "--rm", "committed:1", "true"); r.ExitCode != 127 {
			t.Errorf("/bin/true deleted in the commit still runs: %s", r)
		}
		r := c.run("", "export", "changed")
		if r.ExitCode != 0 {
			t.Fatalf("docker export: exit %d: %s", r.ExitCode, r.Stderr)
		}
		names := tarNames(t, r.Stdout)
		for _, want := range []string{"etc/newfile", "newdir/", "bin/sh"} {
			if !slices.Contains(names, want) {
				t.Errorf("export lacks %s", want)
			}
		}
		if slices.Contains(names, "bin/true") {
			t.Errorf("export has the deleted bin/true")
		}
		c.failWith(e, 1, "No such container: nosuch", "diff", "nosuch")
	})

	t.Run("rename", func(t *testing.T) {
		c := e.cli(t)
		c.ok("create", "--name", "before", "busybox")
		c.ok("rename", "before", "after")
		defer c.ok("rm", "after")
		if got := c.inspect("{{.Name}}", "after"); got != "/after" {
			t.Errorf("name after rename: %s", got)
		}
		c.fail(1, "inspect", "before")
		id := c.id("files")
		c.failWith(e, 1, `Error when allocating new name: Conflict. The container name "/files" is already in use by container "`+id+
			`". You have to remove (or rename) that container to be able to reuse that name.`, "rename", "after", "files")
		c.failWith(e, 1, "Renaming a container with the same name as its current name", "rename", "after", "after")
		c.failWith(e, 1, "Error when allocating new name: Invalid container name (/a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", "rename", "after", "a b")
		c.failWith(e, 1, "No such container: nosuch", "rename", "nosuch", "other")
		// The running container can be renamed and keeps running.
		c.ok("rename", "files", "files2")
		c.ok("rename", "files2", "files")
		if st := c.inspect("{{.State.Status}}", "files"); st != "running" {
			t.Errorf("renamed running container: %s", st)
		}
	})
}
