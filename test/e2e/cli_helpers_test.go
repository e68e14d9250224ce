package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
)

// berthBinary returns the berth CLI built beside berthd (or from
// $BERTH_BIN_DIR).
func berthBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(berthdBinary(t)), "berth")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("berth CLI: %v", err)
	}
	return p
}

// berthCLI runs the berth CLI against one daemon with a config directory
// of its own; docker is the docker CLI against the same daemon, speaking
// the daemon's API version so that both see the same JSON.
type berthCLI struct {
	t      *testing.T
	bin    string
	host   string
	env    []string
	docker *CLI
}

func (d *Daemon) berthCLI(t *testing.T) *berthCLI {
	t.Helper()
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BERTH_") && !strings.HasPrefix(e, "DOCKER_") {
			env = append(env, e)
		}
	}
	env = append(env, "BERTH_CONFIG="+filepath.Join(t.TempDir(), "berth-config"))
	docker := d.cli(t)
	api := strings.TrimSpace(docker.ok("version", "--format", "{{.Server.APIVersion}}"))
	docker.env = append(docker.env, "DOCKER_API_VERSION="+api)
	c := &berthCLI{t: t, bin: berthBinary(t), host: d.Host, env: env, docker: docker}
	// Runs before the daemon's own cleanup: a test that failed half-way
	// leaves no container (and so no shim or mount) behind.
	t.Cleanup(func() {
		if ids := strings.Fields(docker.run("", "ps", "-aq").Stdout); len(ids) > 0 {
			docker.run("", append([]string{"rm", "-f"}, ids...)...)
		}
	})
	return c
}

// run runs berth with args (and stdin, if any).
func (c *berthCLI) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"-H", c.host}, args...)...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(r.Stderr, "panic:") || strings.Contains(r.Stderr, "goroutine ") {
		c.t.Errorf("berth %s panicked:\n%s", strings.Join(args, " "), r.Stderr)
	}
	return r
}

// ok runs berth and fails the test unless it exits 0; it returns stdout.
func (c *berthCLI) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.ExitCode != 0 {
		c.t.Fatalf("berth %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// same runs args with berth and with docker and checks that both exit
// with the same code and print the same stdout; it returns berth's result.
func (c *berthCLI) same(args ...string) result {
	c.t.Helper()
	b := c.run("", args...)
	d := c.docker.run("", args...)
	if b.ExitCode != d.ExitCode || b.Stdout != d.Stdout {
		c.t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, d)
	}
	return b
}

// sameLines is same for output whose line order is not defined (docker
// lists the names of one image in map order): lines are compared as a
// set.
func (c *berthCLI) sameLines(args ...string) {
	c.t.Helper()
	b := c.run("", args...)
	d := c.docker.run("", args...)
	norm := func(s string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	if b.ExitCode != d.ExitCode || norm(b.Stdout) != norm(d.Stdout) {
		c.t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, d)
	}
}

// sameJSON runs args with both CLIs and compares their output as JSON
// values (so key order, spacing and the order of lines do not matter).
func (c *berthCLI) sameJSON(args ...string) {
	c.t.Helper()
	decode := func(who, s string) []any {
		var vs []any
		dec := json.NewDecoder(strings.NewReader(s))
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				c.t.Fatalf("%s %s: not JSON: %v\n%s", who, strings.Join(args, " "), err, s)
			}
			vs = append(vs, v)
		}
		sort.Slice(vs, func(i, j int) bool {
			x, _ := json.Marshal(vs[i])
			y, _ := json.Marshal(vs[j])
			return string(x) < string(y)
		})
		return vs
	}
	b := decode("berth", c.ok(args...))
	d := decode("docker", c.docker.ok(args...))
	if !reflect.DeepEqual(b, d) {
		bj, _ := json.MarshalIndent(b, "", " ")
		dj, _ := json.MarshalIndent(d, "", " ")
		c.t.Errorf("%s: JSON differs\nberth:\n%s\ndocker:\n%s", strings.Join(args, " "), bj, dj)
	}
}

// importBusyboxWithBerth makes the busybox image "busybox:latest" with
// berth import, as a user would without a registry.
func (c *berthCLI) importBusybox() string {
	c.t.Helper()
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		c.t.Fatal(err)
	}
	tarball := filepath.Join(c.t.TempDir(), "busybox.tar")
	if err := os.WriteFile(tarball, layer, 0o644); err != nil {
		c.t.Fatal(err)
	}
	id := strings.TrimSpace(c.ok("import", "-c", `CMD ["sh"]`, tarball, "busybox:latest"))
	if !strings.HasPrefix(id, "sha256:") {
		c.t.Fatalf("berth import printed %q", id)
	}
	return id
}

// cliPoll calls cond until it returns true or the deadline passes.
func cliPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
