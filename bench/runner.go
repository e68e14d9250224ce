//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/runtime"
	"github.com/berth-project/berth/internal/testutil"
)

// runTimeout bounds every runtime command, so that a hung runtime fails the
// bench instead of hanging it.
const runTimeout = 30 * time.Second

// runner is one runtime under comparison.
type runner struct {
	name    string
	path    string
	subject bool // berth: its failures fail the bench
	version string
	// unavailable, when set, is why the runtime is not measured (n/a).
	unavailable string
	// note qualifies how it runs (shown in the header).
	note    string
	root    string            // its --root
	bundles map[string]string // scenario -> bundle
	stderr  *os.File          // its commands' stderr, reused
	exec    executor
}

// executor runs a command to completion and returns its wall time.
type executor interface {
	run(cmd *exec.Cmd) (time.Duration, error)
	close()
}

// directExecutor runs commands from the calling goroutine.
type directExecutor struct{}

func (directExecutor) run(cmd *exec.Cmd) (time.Duration, error) {
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

func (directExecutor) close() {}

func newRunner(name, path string, subject bool) *runner {
	r := &runner{name: name, subject: subject, bundles: map[string]string{}, exec: directExecutor{}}
	p, err := exec.LookPath(path)
	if err != nil {
		r.path = path
		r.unavailable = "not installed (" + path + ")"
		return r
	}
	r.path = p
	return r
}

// init makes the runner's state root and stderr file and reads its version.
func (r *runner) init(b *bench) error {
	if r.unavailable != "" {
		return nil
	}
	dir := filepath.Join(b.dir, r.name)
	r.root = filepath.Join(dir, "root")
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return fmt.Errorf("%s: make state root: %w", r.name, err)
	}
	f, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	r.stderr = f
	out, err := exec.Command(r.path, "--version").CombinedOutput()
	lines := strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " | "))
	r.version = strings.Join(lines, " ")
	if err != nil {
		r.version = fmt.Sprintf("unknown (--version: %v)", err)
	}
	return nil
}

// makeBundle writes the runner's bundle for scenario.
func (r *runner) makeBundle(b *bench, scenario string, mutate func(*specs.Spec)) error {
	dir := filepath.Join(b.dir, r.name, "bundle-"+scenario)
	if err := testutil.WriteBundle(dir, mutate); err != nil {
		return err
	}
	r.bundles[scenario] = dir
	return nil
}

// timed runs the runtime with --root and args, and returns its wall time. It
// fails if the runtime exits non-zero, with its stderr, or runs longer than
// runTimeout; then its process group is killed.
func (r *runner) timed(ctx context.Context, args ...string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	if err := r.stderr.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := r.stderr.Seek(0, 0); err != nil {
		return 0, err
	}
	args = append([]string{"--root", r.root}, args...)
	cmd := exec.CommandContext(ctx, r.path, args...)
	cmd.Stderr = r.stderr // stdin and stdout: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	d, err := r.exec.run(cmd)
	if err != nil {
		msg, _ := os.ReadFile(r.stderr.Name())
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return d, &runError{cmd: r.name + " " + strings.Join(args, " "), err: err, stderr: strings.TrimSpace(string(msg))}
	}
	return d, nil
}

// runError is a failed runtime command with its stderr.
type runError struct {
	cmd    string
	err    error
	stderr string
}

func (e *runError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.cmd, e.err, e.stderr)
}

func (e *runError) Unwrap() error { return e.err }

// deleteAll force-deletes the containers left in the runner's state root.
func (r *runner) deleteAll() error {
	if r.root == "" {
		return nil
	}
	entries, err := os.ReadDir(r.root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%s: list containers: %w", r.name, err)
	}
	var errs []error
	for _, e := range entries {
		// Only container state dirs: a runtime may keep other things
		// there (berth-runtime's seccomp cache, "@seccomp").
		if !e.IsDir() || runtime.ValidateID(e.Name()) != nil {
			continue
		}
		if _, err := r.timed(context.Background(), "delete", "--force", e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *runner) close() {
	r.exec.close()
	if r.stderr != nil {
		r.stderr.Close()
	}
}
