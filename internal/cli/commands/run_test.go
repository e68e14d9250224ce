package commands

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/cli"
)

// parseRun parses berth run arguments the way the command does and
// returns the create request.
func parseRun(t *testing.T, args ...string) (*cli.RunOptions, *cli.ContainerConfig, error) {
	t.Helper()
	o := &cli.RunOptions{ContainerOptions: cli.NewContainerOptions()}
	cmd := (&app{}).runCommand(o)
	if err := cmd.ParseFlags(args); err != nil {
		return o, nil, err
	}
	rest := cmd.Flags().Args()
	if len(rest) == 0 {
		t.Fatalf("no image in %v", args)
	}
	finishContainerFlags(cmd, o.ContainerOptions, rest)
	cc, err := o.Parse()
	return o, cc, err
}

func TestRunFlags(t *testing.T) {
	o, cc, err := parseRun(t, "-d", "--rm", "--name", "web", "-p", "8080:80", "-e", "A=1", "-l", "k=v", "-h", "box",
		"--restart", "no", "--init", "--pids-limit", "10", "-m", "32m", "--stop-timeout", "0", "--entrypoint", "",
		"busybox", "sh", "-c", "echo -d is not a flag here")
	if err != nil {
		t.Fatal(err)
	}
	if !o.Detach || !o.SigProxy || o.Name != "web" {
		t.Errorf("run options: %+v", o)
	}
	cfg, hc := cc.Config, cc.HostConfig
	if cfg.Image != "busybox" || strings.Join(cfg.Cmd, "|") != "sh|-c|echo -d is not a flag here" || cfg.Hostname != "box" ||
		cfg.Labels["k"] != "v" || cfg.Env[0] != "A=1" || len(cfg.Entrypoint) != 1 || cfg.Entrypoint[0] != "" ||
		cfg.StopTimeout == nil || *cfg.StopTimeout != 0 {
		t.Errorf("config: %+v", cfg)
	}
	if !hc.AutoRemove || hc.Init == nil || !*hc.Init || hc.PidsLimit == nil || *hc.PidsLimit != 10 || hc.Memory != 32<<20 ||
		len(hc.PortBindings) != 1 || hc.RestartPolicy.Name != "no" {
		t.Errorf("host config: %+v", hc)
	}
	// Without the flags, the optional values stay unset.
	_, cc, err = parseRun(t, "busybox")
	if err != nil || cc.HostConfig.Init != nil || cc.HostConfig.PidsLimit != nil || cc.Config.StopTimeout != nil ||
		cc.Config.Entrypoint != nil || cc.HostConfig.OomKillDisable != nil {
		t.Errorf("defaults: %+v %v", cc.HostConfig, err)
	}
	// -it and -a
	_, cc, err = parseRun(t, "-it", "-a", "stdout", "busybox")
	if err != nil || !cc.Config.Tty || !cc.Config.OpenStdin || cc.Config.AttachStdin || !cc.Config.AttachStdout || cc.Config.AttachStderr {
		t.Errorf("-it -a stdout: %+v %v", cc.Config, err)
	}
	if _, _, err := parseRun(t, "--memory", "lots", "busybox"); err == nil {
		t.Error("--memory lots: no error")
	}
}

// runBerth runs the whole command line (no daemon behind the socket).
func runBerth(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = Run(ctx, append([]string{"-H", sock}, args...), io.NopCloser(strings.NewReader(stdin)), &out, &errOut, "test")
	return out.String(), errOut.String(), code
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ps", "--foo"}, 125, "unknown flag: --foo\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n"},
		{[]string{"run", "--foo", "busybox"}, 125, "unknown flag: --foo"},
		{[]string{"run", "-p", "x:y:z:w", "busybox"}, 125, "berth: invalid"},
		{[]string{"run", "--pull", "sometimes", "busybox"}, 125, "invalid pull option"},
		{[]string{"run", "-d", "-a", "stdout", "busybox"}, 125, "Conflicting options: -a and -d"},
		{[]string{"run", "--restart", "always", "--rm", "busybox"}, 125, "cannot specify both --restart and --rm"},
		{[]string{"run", "NOT-a-ref!", "true"}, 125, "invalid reference format"},
		{[]string{"run", "--detach-keys", "ctrl-", "busybox"}, 125, "invalid detach keys (ctrl-) provided"},
		{[]string{"run", "--mount", "type=bind,bogus=1", "busybox"}, 125, "unknown option"},
		{[]string{"run", "--cpus", "many", "busybox"}, 125, "invalid argument"},
		{[]string{"run"}, 1, "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n"},
		{[]string{"ps", "extra"}, 1, "berth: 'berth ps' accepts no arguments"},
		{[]string{"rename", "a"}, 1, "berth: 'berth rename' requires 2 arguments"},
		{[]string{"nosuch"}, 1, "berth: unknown command: berth nosuch\n\nRun 'berth --help' for more information\n"},
		{[]string{"container", "nosuch"}, 1, "berth: unknown command: berth container nosuch\n\nUsage:  berth container\n"},
		{[]string{"ps", "--format", "{{.ID"}, 1, "template parsing error"},
		{[]string{"images", "--format", "{{nosuch .}}"}, 1, "template parsing error"},
		{[]string{"inspect", "--format", "{{.Id", "x"}, 1, "template parsing error"},
		{[]string{"inspect", "--type", "ghost", "x"}, 1, `"ghost" is not a valid value for --type`},
		{[]string{"tag", "busybox", "Bad:Ref:x"}, 1, "invalid reference format"},
		{[]string{"pull", "UPPER"}, 1, "invalid reference format"},
		{[]string{"ps", "--filter", "novalue"}, 1, "bad format of filter"},
		{[]string{"-l", "loud", "ps"}, 1, "unable to parse logging level: loud"},
		{[]string{"completion", "tcsh"}, 1, "unsupported shell"},
		{[]string{"ps"}, 1, "cannot connect to berthd at unix://"},
		{[]string{"run", "busybox"}, 125, "cannot connect to berthd"},
	} {
		_, stderr, code := runBerth(t, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("berth %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestCompletionAndVersion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, stderr, code := runBerth(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "berth") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, %s", shell, code, len(out), stderr)
		}
	}
	if out, _, code := runBerth(t, "", "--version"); code != 0 || out != "berth version test\n" {
		t.Errorf("--version: %d %q", code, out)
	}
	out, _, code := runBerth(t, "", "run", "--help")
	if code != 0 || !strings.Contains(out, "--detach-keys") || !strings.Contains(out, "-h, --hostname") {
		t.Errorf("run --help: %d\n%s", code, out)
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if err := GenManTree(NewRootCommand("test"), dir, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"berth.1", "berth-run.1", "berth-container-ls.1", "berth-network-create.1", "berth-volume-prune.1"} {
		b, err := readFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !strings.HasPrefix(b, ".TH ") || !strings.Contains(b, ".SH NAME") || !strings.Contains(b, ".SH SYNOPSIS") {
			t.Errorf("%s is not a man page:\n%s", name, b)
		}
	}
	b, _ := readFile(filepath.Join(dir, "berth-run.1"))
	if !strings.Contains(b, `\fB\-\-detach\-keys\fP`) || !strings.Contains(b, `\fB\-d\fP, \fB\-\-detach\fP`) {
		t.Errorf("berth-run.1 lacks its flags:\n%s", b)
	}
}

// TestNameCompletionTable checks that every command the completion table
// names exists and got a completion function.
func TestNameCompletionTable(t *testing.T) {
	root := NewRootCommand("test")
	for key := range completions {
		cmd, _, err := root.Find(strings.Fields(key))
		if err != nil || cmd == root || cmd.ValidArgsFunction == nil {
			t.Errorf("completion for %q: command %v, %v", key, cmd.CommandPath(), err)
		}
	}
	for _, path := range [][]string{{"container", "rm"}, {"container", "stop"}, {"image", "history"}} {
		if cmd, _, _ := root.Find(path); cmd.ValidArgsFunction == nil {
			t.Errorf("%v has no name completion", path)
		}
	}
	for _, path := range [][]string{{"volume", "create"}, {"network", "create"}, {"image", "pull"}, {"container", "ls"}} {
		if cmd, _, _ := root.Find(path); cmd.ValidArgsFunction != nil {
			t.Errorf("%v completes names it does not take", path)
		}
	}
}
