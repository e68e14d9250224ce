package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/moby/api/types/events"
)

func TestResolveHost(t *testing.T) {
	t.Setenv(EnvHost, "")
	for in, want := range map[string]string{"": DefaultHost, "/tmp/s.sock": "unix:///tmp/s.sock",
		"unix:///x.sock": "unix:///x.sock", "tcp://127.0.0.1:2375": "tcp://127.0.0.1:2375"} {
		if got, err := resolveHost(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ssh://host", "unix://", "::bad"} {
		if _, err := resolveHost(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	t.Setenv(EnvHost, "unix:///from/env.sock")
	if got, _ := resolveHost(""); got != "unix:///from/env.sock" {
		t.Errorf("BERTH_HOST ignored: %q", got)
	}
	if got, _ := resolveHost("unix:///flag.sock"); got != "unix:///flag.sock" {
		t.Errorf("flag does not win over BERTH_HOST: %q", got)
	}
}

func TestLogLevel(t *testing.T) {
	for _, ok := range []string{"", "debug", "info", "warn", "error", "fatal"} {
		if _, err := parseLogLevel(ok, false); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if _, err := parseLogLevel("loud", false); err == nil || err.Error() != "unable to parse logging level: loud" {
		t.Errorf("bad level: %v", err)
	}
}

// TestDaemonNotRunning checks the message a command gives when nothing
// listens on the socket: which socket, and how to start berthd.
func TestDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	var out, errOut bytes.Buffer
	c, err := New(io.NopCloser(strings.NewReader("")), &out, &errOut, GlobalOptions{Host: "unix://" + sock}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Ps(ctx, PsOptions{})
	var ce *connError
	if !errors.As(err, &ce) {
		t.Fatalf("ps without a daemon: %v", err)
	}
	for _, want := range []string{"unix://" + sock, "does not exist", "berthd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %s", want, err)
		}
	}
	if ExitCode(err) != 1 {
		t.Errorf("exit code %d", ExitCode(err))
	}
	// version prints the client half before failing.
	if err := c.Version(ctx, VersionOptions{}); err == nil || !strings.Contains(out.String(), "Client: berth") {
		t.Errorf("version without a daemon: %v\n%s", err, out.String())
	}
}

func TestExitCode(t *testing.T) {
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 || ExitCode(&StatusError{StatusCode: 42}) != 42 {
		t.Error("exit codes")
	}
	wrapped := startError(errors.New(`exec: "nope": executable file not found in $PATH`))
	if ExitCode(wrapped) != 127 {
		t.Errorf("not found: %d", ExitCode(wrapped))
	}
	if ExitCode(startError(errors.New(`exec: "/etc": is a directory`))) != 126 ||
		ExitCode(startError(errors.New("permission denied"))) != 126 ||
		ExitCode(startError(errors.New("no space left"))) != 125 {
		t.Error("start error classes")
	}
}

func TestParseFilters(t *testing.T) {
	f, err := ParseFilters([]string{"status=running", "label=a=b", "Name=x"})
	if err != nil || !f["status"]["running"] || !f["label"]["a=b"] || !f["name"]["x"] {
		t.Errorf("filters: %v %v", f, err)
	}
	if _, err := ParseFilters([]string{"novalue"}); err == nil {
		t.Error("filter without =: no error")
	}
}

func TestPrintEvent(t *testing.T) {
	var buf bytes.Buffer
	m := events.Message{Type: "container", Action: "start", TimeNano: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(),
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{"name": "web", "image": "busybox"}}}
	t.Setenv("TZ", "UTC")
	if err := printEvent(&buf, m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), " container start abc (image=busybox, name=web)\n") || !strings.Contains(buf.String(), ".000000006") {
		t.Errorf("event line %q", buf.String())
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"psFormat": "{{.Names}}", "detachKeys": "ctrl-x,x", "auths": {"127.0.0.1:5000": {"auth": "dTpw"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(io.NopCloser(strings.NewReader("")), io.Discard, io.Discard, GlobalOptions{ConfigDir: dir}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if f := c.configFormat("", func(cf *configfile.ConfigFile) string { return cf.PsFormat }); f != "{{.Names}}" {
		t.Errorf("psFormat from config.json: %q", f)
	}
	if f := c.configFormat("json", func(cf *configfile.ConfigFile) string { return cf.PsFormat }); f != "json" {
		t.Errorf("the flag does not win over config.json: %q", f)
	}
	if k := c.detachKeys(""); k != "ctrl-x,x" {
		t.Errorf("detachKeys from config.json: %q", k)
	}
	a, err := c.authConfig("127.0.0.1:5000")
	if err != nil || a.Username != "u" || a.Password != "p" {
		t.Errorf("credentials from config.json: %+v %v", a, err)
	}
	if a, err := c.authConfig("docker.io"); err != nil || a.Username != "" {
		t.Errorf("credentials of another registry: %+v %v", a, err)
	}
	// A broken config.json is an error naming the directory.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "config.json"), []byte("{nope"), 0o600)
	c, _ = New(io.NopCloser(strings.NewReader("")), io.Discard, io.Discard, GlobalOptions{ConfigDir: bad}, "test")
	if _, err := c.ConfigFile(); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("broken config.json: %v", err)
	}
}
