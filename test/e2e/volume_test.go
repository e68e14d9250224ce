//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// volEnv is a berthd of a volume scenario with busybox imported.
type volEnv struct {
	t *testing.T
	d *Daemon
	c *CLI
}

func newVolEnv(t *testing.T) *volEnv {
	t.Helper()
	d := startDaemon(t)
	e := &volEnv{t: t, d: d, c: d.cli(t)}
	importBusybox(t, e.c)
	return e
}

// detached runs docker run -d with args and removes the container with
// its anonymous volumes when the test ends; it returns the ID.
func (e *volEnv) detached(args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.c.ok(append([]string{"run", "-d"}, args...)...))
	e.t.Cleanup(func() { e.c.run("", "rm", "-fv", id) })
	return id
}

// volumes lists the volume names, sorted.
func (e *volEnv) volumes(args ...string) []string {
	e.t.Helper()
	names := strings.Fields(e.c.ok(append([]string{"volume", "ls", "-q"}, args...)...))
	slices.Sort(names)
	return names
}

// dfBlocks returns the size column (1K blocks) of busybox df -k output.
func dfBlocks(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(lines) != 2 || len(f) < 2 {
		t.Fatalf("df output:\n%s", out)
	}
	return f[1]
}

// TestNamedVolumes drives named volumes: create with labels and a tmpfs
// through the local driver's options, ls with a filter, inspect, copy-up
// of the image's content into a new volume, rm refused while in use,
// docker cp into and out of a volume, docker diff without the volume's
// content, and prune (anonymous volumes only unless --all).
func TestNamedVolumes(t *testing.T) {
	t.Parallel()
	e := newVolEnv(t)
	c := e.c
	c.ok("volume", "create", "--label", "k=v", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=5m", "tv")
	c.ok("volume", "create", "named")
	t.Cleanup(func() { c.run("", "volume", "rm", "-f", "tv", "named", "etc", "loose") })
	if got := e.volumes(); !slices.Equal(got, []string{"named", "tv"}) {
		t.Errorf("volume ls = %v", got)
	}
	if got := e.volumes("--filter", "label=k=v"); !slices.Equal(got, []string{"tv"}) {
		t.Errorf("volume ls --filter label=k=v = %v", got)
	}
	ins := strings.TrimSpace(c.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Mountpoint}} {{json .Labels}} {{json .Options}} {{.Scope}}", "tv"))
	want := "tv local " + filepath.Join(e.d.DataRoot, "volumes", "tv", "_data") + ` {"k":"v"} {"device":"tmpfs","o":"size=5m","type":"tmpfs"} local`
	if ins != want {
		t.Errorf("volume inspect tv:\n got %s\nwant %s", ins, want)
	}
	if got := dfBlocks(t, c.ok("run", "--rm", "-v", "tv:/t", "busybox", "df", "-k", "/t")); got != "5120" {
		t.Errorf("tmpfs volume of size=5m has %s 1K blocks", got)
	}

	// A new volume mounted over the image's /etc gets the image's files,
	// on the host too.
	out := c.ok("run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/passwd")
	if !strings.Contains(out, "root:") {
		t.Errorf("copied-up /etc/passwd: %q", out)
	}
	mp := strings.TrimSpace(c.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "etc"))
	for _, f := range []string{"passwd", "group"} {
		if _, err := os.Stat(filepath.Join(mp, f)); err != nil {
			t.Errorf("volume etc on the host lacks %s: %v", f, err)
		}
	}

	// In use, a volume is not removed.
	id := e.detached("--name", "user", "-v", "named:/v", "busybox", "sleep", "300")
	stderr := c.fail(1, "volume", "rm", "named")
	if want := "remove named: volume is in use - [" + id + "]"; !strings.Contains(stderr, want) {
		t.Errorf("rm of a volume in use: %s\nwant %q", stderr, want)
	}

	// docker cp into and out of the volume; docker diff shows the
	// container's own change and nothing of the volume.
	src := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(src, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("cp", src, "user:/v/in")
	namedMP := strings.TrimSpace(c.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "named"))
	if b, err := os.ReadFile(filepath.Join(namedMP, "in")); err != nil || string(b) != "copied in\n" {
		t.Errorf("cp into the volume: %q, %v", b, err)
	}
	if out := c.ok("exec", "user", "cat", "/v/in"); out != "copied in\n" {
		t.Errorf("the container reads %q", out)
	}
	c.ok("exec", "user", "sh", "-c", "echo out > /v/out; mkdir /v/d; echo x > /rootfile")
	dst := t.TempDir()
	c.ok("cp", "user:/v/out", dst)
	if b, err := os.ReadFile(filepath.Join(dst, "out")); err != nil || string(b) != "out\n" {
		t.Errorf("cp out of the volume: %q, %v", b, err)
	}
	diff := c.ok("diff", "user")
	if !strings.Contains(diff, "A /rootfile\n") || strings.Contains(diff, "/v/") {
		t.Errorf("docker diff:\n%s", diff)
	}

	// Prune removes unused anonymous volumes; --all unused named ones too.
	anon := strings.TrimSpace(c.ok("create", "-v", "/data", "busybox", "true"))
	anonVol := strings.TrimSpace(c.ok("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", anon))
	c.ok("rm", anon)
	c.ok("volume", "create", "loose")
	out = c.ok("volume", "prune", "-f")
	if !strings.Contains(out, anonVol) || strings.Contains(out, "loose") {
		t.Errorf("volume prune:\n%s", out)
	}
	if got := e.volumes(); !slices.Equal(got, []string{"etc", "loose", "named", "tv"}) {
		t.Errorf("volumes after prune = %v", got)
	}
	out = c.ok("volume", "prune", "-af")
	if !strings.Contains(out, "loose") || strings.Contains(out, "named") {
		t.Errorf("volume prune --all:\n%s", out)
	}
	if got := e.volumes(); !slices.Equal(got, []string{"named"}) {
		t.Errorf("volumes after prune --all (named is in use) = %v", got)
	}
}

// TestMounts drives the other mounts of docker run: anonymous volumes
// from -v /path and from the image's VOLUME, --volumes-from, rm -v, binds
// read-only with -v and --mount, and tmpfs mounts with their sizes.
func TestMounts(t *testing.T) {
	t.Parallel()
	e := newVolEnv(t)
	c := e.c
	c.ok("import", "--change", "VOLUME /data", "--change", `CMD ["sh"]`, busyboxTar.path, "withvolume:latest")
	e.detached("--name", "src", "-v", "/anon", "withvolume", "sh", "-c", "echo a > /anon/f; echo d > /data/g; exec sleep 300")
	mounts := strings.Fields(c.ok("inspect", "-f", "{{range .Mounts}}{{.Type}},{{.Destination}},{{.RW}},{{.Name}} {{end}}", "src"))
	var anon []string
	for _, m := range mounts {
		f := strings.Split(m, ",")
		if len(f) != 4 || f[0] != "volume" || f[2] != "true" || len(f[3]) != 64 {
			t.Errorf("mount %q is not an anonymous volume", m)
			continue
		}
		anon = append(anon, f[1])
	}
	slices.Sort(anon)
	if !slices.Equal(anon, []string{"/anon", "/data"}) {
		t.Errorf("anonymous volumes of src at %v", anon)
	}
	poll(t, "src wrote its files", func() bool { return c.run("", "exec", "src", "cat", "/data/g").ExitCode == 0 })
	if out := c.ok("run", "--rm", "--volumes-from", "src", "busybox", "cat", "/anon/f", "/data/g"); out != "a\nd\n" {
		t.Errorf("--volumes-from src reads %q", out)
	}
	before := len(strings.Fields(c.ok("volume", "ls", "-q")))
	c.ok("rm", "-fv", "src")
	if after := len(strings.Fields(c.ok("volume", "ls", "-q"))); before-after != 2 {
		t.Errorf("rm -v removed %d volumes, want src's 2", before-after)
	}

	// Binds: read-only with -v :ro and --mount readonly, read-write.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "h"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bind := range [][]string{{"-v", dir + ":/b:ro"}, {"--mount", "type=bind,src=" + dir + ",dst=/b,readonly"}} {
		r := c.run("", append(append([]string{"run", "--rm"}, bind...), "busybox", "sh", "-c", "cat /b/h; touch /b/x")...)
		if r.ExitCode != 1 || r.Stdout != "host\n" || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Errorf("read-only bind %v: %s", bind, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a read-only bind was written")
	}
	c.ok("run", "--rm", "-v", dir+":/b", "busybox", "sh", "-c", "echo ctr > /b/w")
	if b, err := os.ReadFile(filepath.Join(dir, "w")); err != nil || string(b) != "ctr\n" {
		t.Errorf("read-write bind: %q, %v", b, err)
	}

	// tmpfs mounts with their sizes.
	if got := dfBlocks(t, c.ok("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox", "df", "-k", "/t")); got != "1024" {
		t.Errorf("--mount type=tmpfs,tmpfs-size=1m: %s 1K blocks", got)
	}
	if got := dfBlocks(t, c.ok("run", "--rm", "--tmpfs", "/t:size=2m", "busybox", "df", "-k", "/t")); got != "2048" {
		t.Errorf("--tmpfs /t:size=2m: %s 1K blocks", got)
	}
}
