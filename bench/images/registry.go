//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// registryBinary is Debian's distribution registry (package docker-registry).
const registryBinary = "/usr/bin/docker-registry"

// benchRegistry is a docker-registry serving plain HTTP on a loopback port.
type benchRegistry struct {
	host string // "127.0.0.1:PORT"
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRegistry runs docker-registry with its storage under dir and
// returns once GET /v2/ answers. A port taken between picking and binding
// makes the registry exit; it is then tried again on another.
func startRegistry(dir string) (*benchRegistry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		host := l.Addr().String()
		l.Close()
		r := &benchRegistry{host: host, dir: dir, done: make(chan struct{})}
		if lastErr = r.start(); lastErr == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("registry: %w", lastErr)
}

func (r *benchRegistry) start() error {
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: berth-bench
`, filepath.Join(r.dir, "storage"), r.host)
	configPath := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(r.dir, "registry.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	r.cmd = exec.Command(registryBinary, "serve", configPath)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// Its own process group: a Ctrl-C on the terminal reaches only the
	// bench, which then stops the registry itself.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", registryBinary, err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "registry.log"))
			return fmt.Errorf("registry exited on %s: %s", r.host, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return fmt.Errorf("registry on %s not ready after 30s: %w", r.host, err)
		}
	}
}

// stop kills the registry and waits for it.
func (r *benchRegistry) stop() error {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	err := r.cmd.Process.Kill()
	<-r.done
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}
