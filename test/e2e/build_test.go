package e2e

import (
	"archive/tar"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
)

// buildContextDir writes a small build context: a Dockerfile FROM the
// imported busybox with a RUN, a COPY of the context and a CMD, a file,
// and a .dockerignore leaving out a secret.
func buildContextDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Dockerfile":    "FROM busybox\nRUN echo built > /f\nCOPY . /ctx/\nCMD [\"cat\", \"/f\"]\n",
		"hello.txt":     "hello from the context\n",
		"secret.txt":    "must not be sent\n",
		".dockerignore": "secret.txt\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildClassicDocker builds a Dockerfile with DOCKER_BUILDKIT=0 docker
// build against berthd and runs the image.
func TestBuildClassicDocker(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()
	dir := buildContextDir(t)
	docker := d.cli(t)
	docker.env = append(docker.env, "DOCKER_BUILDKIT=0")

	out := docker.ok("build", "-t", "x", dir)
	for _, want := range []string{"Step 1/4 : FROM busybox\n", "Step 2/4 : RUN echo built > /f\n", " ---> Running in ",
		"Step 4/4 : CMD [\"cat\", \"/f\"]\n", "Successfully built ", "Successfully tagged x:latest\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker build output lacks %q:\n%s", want, out)
		}
	}
	if got := docker.ok("run", "--rm", "x", "cat", "/f"); got != "built\n" {
		t.Errorf("docker run x cat /f: %q", got)
	}
	if got := docker.ok("run", "--rm", "x"); got != "built\n" {
		t.Errorf("docker run x (CMD): %q", got)
	}
	if got := docker.ok("run", "--rm", "x", "cat", "/ctx/hello.txt"); got != "hello from the context\n" {
		t.Errorf("copied file: %q", got)
	}
	if r := docker.run("", "run", "--rm", "x", "ls", "/ctx/secret.txt"); r.ExitCode == 0 {
		t.Errorf(".dockerignore'd file was sent: %s", r)
	}

	// A second build hits the cache; -q prints only the ID.
	id := strings.TrimSpace(docker.ok("image", "inspect", "--format", "{{.Id}}", "x"))
	if out := docker.ok("build", "-q", dir); strings.TrimSpace(out) != id {
		t.Errorf("cached quiet rebuild printed %q, want %s", out, id)
	}

	// berth build of the same context hits the same cache entries as
	// docker's: its context carries the same files, modes and owners, and
	// it prints the same text (less docker's "Sending build context" line).
	again := docker.ok("build", "-t", "x", dir)
	_, again, _ = strings.Cut(again, "\n")
	if got := c.ok("build", "-t", "x", dir); got != again || !strings.Contains(got, " ---> Using cache\n") {
		t.Errorf("berth build and docker build of the same context differ:\nberth:\n%s\ndocker:\n%s", got, again)
	}

	// A failing RUN: docker exits with the command's code and says so.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\nRUN exit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := docker.run("", "build", bad); r.ExitCode != 7 || !strings.Contains(r.Stderr, "returned a non-zero code: 7") {
		t.Errorf("failing RUN: %s", r)
	}

	// The steps' images are listed with -a only, and go with the image.
	count := func(args ...string) int {
		return len(strings.Fields(docker.ok(append([]string{"images", "-q", "--no-trunc"}, args...)...)))
	}
	if n, all := count(), count("-a"); n != 2 || all <= n {
		t.Errorf("images: %d listed, %d with -a; want busybox and x, and the steps with -a", n, all)
	}
	out = docker.ok("rmi", "x")
	if !strings.HasPrefix(out, "Untagged: x:latest\nDeleted: "+id+"\n") || strings.Count(out, "Deleted: ") < 3 {
		t.Errorf("rmi x deleted not its steps:\n%s", out)
	}
	if n := count("-a"); n != 1 {
		t.Errorf("images -a after rmi x: %d, want busybox alone:\n%s", n, docker.ok("images", "-a"))
	}
	// --no-prune keeps them.
	docker.ok("build", "-q", "-t", "x", dir)
	if out := docker.ok("rmi", "--no-prune", "x"); strings.Count(out, "Deleted: ") != 1 || count("-a") < 3 {
		t.Errorf("rmi --no-prune x:\n%s\nimages -a:\n%s", out, docker.ok("images", "-a"))
	}
}

// TestBuildBerthCLI builds with berth build from a directory, from a
// Dockerfile on stdin and from a tar on stdin, and prunes the cache.
func TestBuildBerthCLI(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()
	dir := buildContextDir(t)

	out := c.ok("build", "-t", "y", "--label", "by=berth", dir)
	for _, want := range []string{"Step 1/5 : FROM busybox\n", " ---> Running in ", "Successfully built ", "Successfully tagged y:latest\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("berth build output lacks %q:\n%s", want, out)
		}
	}
	if got := c.ok("run", "--rm", "y", "cat", "/f"); got != "built\n" {
		t.Errorf("berth run y cat /f: %q", got)
	}
	if got := c.ok("run", "--rm", "y", "cat", "/ctx/hello.txt"); got != "hello from the context\n" {
		t.Errorf("copied file: %q", got)
	}
	if r := c.run("", "run", "--rm", "y", "ls", "/ctx/secret.txt"); r.ExitCode == 0 {
		t.Errorf(".dockerignore'd file was sent: %s", r)
	}
	if got := c.ok("image", "inspect", "--format", "{{index .Config.Labels \"by\"}}", "y"); got != "berth\n" {
		t.Errorf("--label: %q", got)
	}

	// Cached rebuild with -q and --iidfile.
	iid := filepath.Join(t.TempDir(), "iid")
	out = c.ok("build", "-q", "--iidfile", iid, "--label", "by=berth", dir)
	id := strings.TrimSpace(c.ok("image", "inspect", "--format", "{{.Id}}", "y"))
	if strings.TrimSpace(out) != id {
		t.Errorf("berth build -q printed %q, want %s", out, id)
	}
	if b, err := os.ReadFile(iid); err != nil || string(b) != id {
		t.Errorf("--iidfile: %q %v", b, err)
	}

	// A Dockerfile alone on stdin.
	r := c.run("FROM busybox\nCMD [\"echo\", \"from stdin\"]\n", "build", "-t", "z", "-")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "Successfully tagged z:latest") {
		t.Fatalf("build from a Dockerfile on stdin: %s", r)
	}
	if got := c.ok("run", "--rm", "z"); got != "from stdin\n" {
		t.Errorf("berth run z: %q", got)
	}

	// A failing RUN: berth exits with the command's code, as docker.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM busybox\nRUN exit 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("", "build", bad); r.ExitCode != 5 || !strings.Contains(r.Stderr, "returned a non-zero code: 5") {
		t.Errorf("failing RUN: %s", r)
	}
	// A missing Dockerfile: docker's message, before anything is sent.
	if r := c.run("", "build", t.TempDir()); r.ExitCode != 1 || !strings.Contains(r.Stderr, "Cannot locate specified Dockerfile: Dockerfile") {
		t.Errorf("missing Dockerfile: %s", r)
	}

	if out := c.ok("builder", "prune", "-f"); !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("builder prune: %q", out)
	}
	// The tagged images survive the prune and still run.
	if got := c.ok("run", "--rm", "y"); got != "built\n" {
		t.Errorf("y after prune: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(d.DataRoot, "tmp", "build-context-*")); len(left) != 0 {
		t.Errorf("build contexts left behind: %v", left)
	}
}

// TestBuildContextsAndPull sends contexts as a tar on stdin and gzipped
// (--compress), refuses a URL context without fetching anything, and
// builds with --pull FROM an image in a registry on loopback.
func TestBuildContextsAndPull(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	bb, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	base := reg.Host + "/busybox:1"
	if err := testutil.PushImage(base, bb, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	c := d.berthCLI(t)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY data /data\n",
		"data":       "sent as a tar\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// --pull fetches the base from the registry (it is not there yet).
	out := c.ok("build", "--pull", "--compress", "-t", "pulled", dir)
	if !strings.Contains(out, "Successfully tagged pulled:latest") {
		t.Errorf("build --pull --compress:\n%s", out)
	}
	if got := c.ok("run", "--rm", "pulled", "cat", "/data"); got != "sent as a tar\n" {
		t.Errorf("run pulled: %q", got)
	}

	// A tar of the context on stdin, -f naming a Dockerfile inside it.
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for name, body := range map[string]string{"build/Containerfile": "FROM " + base + "\nCOPY data /data\n", "data": "from a tar on stdin\n"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	r := c.run(tarball.String(), "build", "-f", "build/Containerfile", "-t", "fromtar", "-")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "Successfully tagged fromtar:latest") {
		t.Fatalf("build from a tar on stdin: %s", r)
	}
	if got := c.ok("run", "--rm", "fromtar", "cat", "/data"); got != "from a tar on stdin\n" {
		t.Errorf("run fromtar: %q", got)
	}

	// A URL context is refused by the daemon (501), nothing is fetched.
	r = c.run("", "build", "https://build-context.invalid/ctx.tar")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "remote context") {
		t.Errorf("URL context: %s", r)
	}
}

// TestBuildDockerConfigFields builds, with the classic builder, an image
// with SHELL, HEALTHCHECK and ONBUILD and a child FROM it, on the daemon
// -target names, so that -target=docker shows the same inspect output and
// trigger progress from dockerd.
func TestBuildDockerConfigFields(t *testing.T) {
	e := startEngine(t)
	docker := e.cli(t)
	docker.env = append(docker.env, "DOCKER_BUILDKIT=0")
	dir := t.TempDir()
	for name, body := range map[string]string{
		"parent/Dockerfile": "FROM busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nHEALTHCHECK --interval=5s --retries=2 CMD true\n" +
			"ONBUILD RUN touch /triggered\nONBUILD COPY t.txt /t.txt\n",
		"child/Dockerfile": "FROM onbuild-parent\nRUN test -f /triggered\n",
		"child/t.txt":      "from the child's context\n",
		"grand/Dockerfile": "FROM onbuild-child\nHEALTHCHECK NONE\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { docker.run("", "rmi", "onbuild-grand", "onbuild-child", "onbuild-parent") })
	docker.ok("build", "-t", "onbuild-parent", filepath.Join(dir, "parent"))
	format := "{{json .Config.Healthcheck}} {{json .Config.Shell}} {{json .Config.OnBuild}}"
	want := `{"Test":["CMD-SHELL","true"],"Interval":5000000000,"Retries":2} ["/bin/sh","-ec"] ["RUN touch /triggered","COPY t.txt /t.txt"]` + "\n"
	if got := docker.ok("image", "inspect", "--format", format, "onbuild-parent"); got != want {
		t.Errorf("parent inspect:\n%s\nwant:\n%s", got, want)
	}
	out := docker.ok("build", "-t", "onbuild-child", filepath.Join(dir, "child"))
	if !strings.Contains(out, "Step 1/2 : FROM onbuild-parent\n# Executing 2 build triggers\n ---> Running in ") {
		t.Errorf("child build output:\n%s", out)
	}
	want = strings.Replace(want, `["RUN touch /triggered","COPY t.txt /t.txt"]`, "null", 1)
	if got := docker.ok("image", "inspect", "--format", format, "onbuild-child"); got != want {
		t.Errorf("child inspect:\n%s\nwant:\n%s", got, want)
	}
	if got := docker.ok("run", "--rm", "onbuild-child", "cat", "/t.txt"); got != "from the child's context\n" {
		t.Errorf("COPY trigger copied %q", got)
	}
	// No trigger runs in the grandchild; HEALTHCHECK NONE keeps the
	// interval and retries of the check it replaces.
	out = docker.ok("build", "-t", "onbuild-grand", filepath.Join(dir, "grand"))
	if strings.Contains(out, "build trigger") || !strings.Contains(out, "Note: overriding previous HEALTHCHECK: [CMD-SHELL true]\n") {
		t.Errorf("grandchild build output:\n%s", out)
	}
	if got := docker.ok("image", "inspect", "--format", "{{json .Config.Healthcheck}}", "onbuild-grand"); got != `{"Test":["NONE"],"Interval":5000000000,"Retries":2}`+"\n" {
		t.Errorf("HEALTHCHECK NONE: %s", got)
	}
}

// TestBuildNetwork checks the network of RUN steps: on the default
// bridge by default (an eth0 address in the bridge's subnet, a
// resolv.conf), only a loopback with RUN --network=none or
// docker build --network none, and no sandbox left after the build.
func TestBuildNetwork(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()
	docker := d.cli(t)
	docker.env = append(docker.env, "DOCKER_BUILDKIT=0")
	subnet, err := netip.ParsePrefix(strings.TrimSpace(docker.ok("network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", "bridge")))
	if err != nil {
		t.Fatalf("default bridge subnet: %v", err)
	}
	dir := t.TempDir()
	df := "FROM busybox\n" +
		"RUN ip -4 -o addr show eth0 > /net-default; test -e /etc/resolv.conf && echo resolv > /resolv-default; true\n" +
		"RUN --network=none sh -c 'ip -o link show eth0 > /net-none 2>&1; true'\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	docker.ok("build", "-t", "netcheck", dir)
	out := docker.ok("run", "--rm", "netcheck", "cat", "/net-default")
	fields := strings.Fields(out)
	var addr netip.Prefix
	for i, f := range fields {
		if f == "inet" && i+1 < len(fields) {
			addr, _ = netip.ParsePrefix(fields[i+1])
		}
	}
	if !addr.IsValid() || !subnet.Contains(addr.Addr()) {
		t.Errorf("RUN on the default network: eth0 %q, want an address in %s", out, subnet)
	}
	if got := docker.ok("run", "--rm", "netcheck", "cat", "/resolv-default"); got != "resolv\n" {
		t.Errorf("RUN on the default network has no /etc/resolv.conf: %q", got)
	}
	if got := docker.ok("run", "--rm", "netcheck", "cat", "/net-none"); strings.Contains(got, "eth0:") {
		t.Errorf("RUN --network=none has an eth0: %q", got)
	}
	if got := docker.ok("network", "inspect", "--format", "{{len .Containers}}", "bridge"); strings.TrimSpace(got) != "0" {
		t.Errorf("after the build the default bridge still has %s endpoints", got)
	}

	// docker build --network none: no eth0 in any RUN.
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN sh -c 'ip -o link show eth0 > /net 2>&1; true'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docker.ok("build", "--network", "none", "-t", "netnone", dir)
	if got := docker.ok("run", "--rm", "netnone", "cat", "/net"); strings.Contains(got, "eth0:") {
		t.Errorf("docker build --network none: RUN has an eth0: %q", got)
	}
}
