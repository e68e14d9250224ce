//go:build linux

package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// composeBin is Debian's docker-compose 1.29 (Python, docker-py): a real
// client written for Docker, with its own way of creating, connecting and
// recreating containers.
const composeBin = "/usr/bin/docker-compose"

// composeFile has a web server with a named volume, a published port and
// a health check, and a client that reaches it by its service name. Both
// run under berth's init, which passes compose's SIGTERM on, so that
// stops and recreates need no kill after the timeout.
const composeFile = `version: "3.8"
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo $$GREETING > /www/index.html && echo up > /data/mark && exec httpd -f -p 8080 -h /www"]
    environment:
      GREETING: hello
    ports:
      - "127.0.0.1:{{port}}:8080"
    volumes:
      - data:/data
    dns: [{{dns}}]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 200ms
  client:
    image: busybox
    init: true
    command: ["sh", "-c", "until wget -q -O - http://web:8080/; do sleep 0.1; done; exec sleep 300"]
    dns: [{{dns}}]
    depends_on: [web]
volumes:
  data:
`

// TestCompose drives docker-compose against berthd: up, ps, exec, logs,
// a recreate after a change, scale and down, which must leave nothing.
// compose negotiates the daemon's newest API version, at which (as with
// Docker 25 and later) its recreate fails on the image's missing
// ContainerConfig; its users pin COMPOSE_API_VERSION, and so does the
// second half here.
func TestCompose(t *testing.T) {
	if _, err := os.Stat(composeBin); err != nil {
		t.Fatalf("docker-compose is missing (make deps installs it): %v", err)
	}
	t.Parallel()
	e := newNetEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	dir := filepath.Join(t.TempDir(), "proj")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	write := func(greeting string) {
		t.Helper()
		text := strings.NewReplacer("{{port}}", port, "{{dns}}", e.dns, "hello", greeting).Replace(composeFile)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	compose := func(apiVersion string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, composeBin, append([]string{"-p", "proj", "-f", file}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.d.Host, "COMPOSE_INTERACTIVE_NO_CLI=1")
		if apiVersion != "" {
			cmd.Env = append(cmd.Env, "COMPOSE_API_VERSION="+apiVersion)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(composeBin, "-p", "proj", "-f", file, "down", "-v", "-t", "0")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.d.Host, "COMPOSE_API_VERSION=1.41")
		cmd.Run()
	})
	get := func() string {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	healthy := func(what string) {
		t.Helper()
		cliPoll(t, what, func() bool {
			return strings.TrimSpace(e.c.ok("inspect", "-f", "{{.State.Health.Status}}", "proj_web_1")) == "healthy"
		})
	}

	// At the newest API version: create, connect with aliases, start.
	write("hello")
	compose("", "up", "-d")
	healthy("web healthy after up")
	if got := get(); got != "hello\n" {
		t.Errorf("published port after up: %q", got)
	}
	cliPoll(t, "the client fetching web by its service name", func() bool {
		return strings.Contains(compose("", "logs", "client"), "hello")
	})
	if out := compose("", "exec", "-T", "web", "cat", "/data/mark"); out != "up\n" {
		t.Errorf("exec in web: %q", out)
	}
	if got := e.inspectf("{{.NetworkSettings.Networks.proj_default.Aliases}}", "proj_web_1"); !strings.Contains(got, "web") {
		t.Errorf("web's aliases on proj_default: %s", got)
	}
	compose("", "down")

	// Pinned to API 1.41, as compose v1 users do with Docker 25 and later.
	compose("1.41", "up", "-d")
	healthy("web healthy after the second up")
	old := e.inspectf("{{.ID}}", "proj_web_1")
	write("changed")
	if out := compose("1.41", "up", "-d"); !strings.Contains(out, "Recreating proj_web_1") {
		t.Errorf("up after a change did not recreate web:\n%s", out)
	}
	healthy("recreated web healthy")
	if id := e.inspectf("{{.ID}}", "proj_web_1"); id == old {
		t.Errorf("web was not recreated")
	}
	if got := get(); got != "changed\n" {
		t.Errorf("published port after the recreate: %q", got)
	}
	if out := compose("1.41", "exec", "-T", "web", "cat", "/data/mark"); out != "up\n" {
		t.Errorf("the named volume after the recreate: %q", out)
	}
	compose("1.41", "up", "-d", "--scale", "client=2")
	if out := compose("1.41", "ps", "-q"); len(strings.Fields(out)) != 3 {
		t.Errorf("ps -q after scaling the client to 2:\n%s", out)
	}
	compose("1.41", "down", "-v", "-t", "0")
	for _, args := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q", "--filter", "name=proj"}} {
		if out := strings.TrimSpace(e.c.ok(args...)); out != "" {
			t.Errorf("docker %s after down: %q", strings.Join(args, " "), out)
		}
	}
}
